//! shoal-http: the HTTP front of a shoal node.
//!
//! A node serves one or more *contexts* (path prefixes, Tomcat's web applications). Each
//! context has a session manager ([`shoal_session::SessionService`]) and a pipeline of
//! valves ending in an application. A request flows:
//!
//! ```text
//! listener ─ serve ─ HttpNode::router ─ context path ─ pipeline:
//!     SessionValve → JvmRouteBinderValve → ReplicationValve → plugin valves → App
//! ```
//!
//! and its response comes back up the same valves (the ReplicationValve commits and
//! replicates the session on the way out, the SessionValve sets the cookie).
//!
//! Module map:
//! - `config`: the `[http]` section (`HttpConfig`, `ContextConfig`) and its checks.
//! - `node`: `HttpNode` and its builder: validates the config, starts the session managers,
//!   assembles one pipeline per context; installs and removes contexts at run time.
//! - `contexts`: the table of served contexts, looked up per request and swapped
//!   atomically (requests in flight finish on the pipeline they started on).
//! - `server`: `serve`, the accept loop over an already-bound listener, with graceful
//!   shutdown.
//! - `pipeline`: each context's chain of valves and its application, built in one function.
//! - `valve`: the `Valve` trait (extension point), `Next`, `UrlFilter`, and the built-in
//!   valves (`valve/session.rs`, `valve/jvm_route.rs`, `valve/replication.rs`).
//! - `handle`: `SessionHandle`, a request's lazy view of its session.
//! - `app`: the `App` trait, what a context serves at the end of its pipeline.
//! - `bench`: `BenchApp`, the default app (the Tomcat peer harness contract).
//! - `static_files`: `StaticFiles`, files served under a context before its pipeline
//!   (a fixed index with sha256 ETags, 304 on `If-None-Match`).
//! - `error`: `HttpError` and its one-line responses.
//!
//! Entry points: [`HttpNode::builder`] … [`HttpNodeBuilder::start`], then
//! [`HttpNode::router`] or [`serve`], which takes an already-bound listener so tests run
//! nodes in-process on port 0.
#![warn(unreachable_pub)]

mod app;
mod bench;
mod config;
mod contexts;
mod error;
mod handle;
mod node;
mod pipeline;
mod server;
mod static_files;
mod valve;

pub use app::App;
pub use bench::BenchApp;
pub use config::{ConfigError, ContextConfig, HttpConfig, DEFAULT_URL_FILTER};
pub use error::HttpError;
pub use handle::SessionHandle;
pub use node::{ContextParts, HttpNode, HttpNodeBuilder, Installed};
pub use server::serve;
pub use static_files::StaticFiles;
pub use valve::{Next, Request, Response, UrlFilter, Valve};
