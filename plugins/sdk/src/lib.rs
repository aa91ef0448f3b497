//! Write shoal plugins in Rust, against the current WIT package `shoal:plugin@0.2.0`
//! (`wit/`). Plugins built with an older SDK (0.1.0) keep loading: the host links every
//! supported version side by side (plugins/README.md, "Versions").
//!
//! A plugin is a type implementing one world's trait, exported with that world's macro:
//!
//! ```ignore
//! use shoal_plugin_sdk::valve::{Outcome, Request, Session, Valve, NextStep};
//! struct Hello;
//! impl Valve for Hello {
//!     fn wants_body() -> bool { false }
//!     fn handle(req: Request, _session: &Session) -> Outcome {
//!         Outcome::Next(NextStep::default())
//!     }
//! }
//! shoal_plugin_sdk::export_valve!(Hello);
//! ```
//!
//! Enable exactly one world feature (`valve`, `url-filter`, `channel-interceptor`,
//! `deploy-hook`): every world's bindings embed a description of that world, and a
//! component must describe exactly the world it implements. The functions of [`host`] (log,
//! clocks, randomness, metrics, configuration, cluster facts) work in every world.
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown -p NAME`, then turn
//! the module into a component (the server's build does both; see `plugins/README.md`).

// Generated bindings take one argument per flattened field; NextStep cannot derive Default.
#![allow(clippy::too_many_arguments, clippy::derivable_impls)]

/// The bindings runtime; the generated code refers to it through this path.
#[doc(hidden)]
pub use wit_bindgen;

// The generated bindings name this crate by its public path, also from inside it.
extern crate self as shoal_plugin_sdk;

#[cfg(any(
    all(feature = "valve", feature = "url-filter"),
    all(feature = "valve", feature = "channel-interceptor"),
    all(feature = "valve", feature = "deploy-hook"),
    all(feature = "url-filter", feature = "channel-interceptor"),
    all(feature = "url-filter", feature = "deploy-hook"),
    all(feature = "channel-interceptor", feature = "deploy-hook"),
))]
compile_error!(
    "shoal-plugin-sdk: enable exactly one world feature per plugin, and build plugins one \
     at a time (`cargo build -p NAME`): cargo merges the features of crates built together"
);

#[cfg(feature = "valve")]
pub mod valve;

#[cfg(feature = "url-filter")]
pub mod url_filter;

#[cfg(feature = "channel-interceptor")]
pub mod interceptor;

#[cfg(feature = "deploy-hook")]
pub mod deploy;

#[cfg(any(
    feature = "valve",
    feature = "url-filter",
    feature = "channel-interceptor",
    feature = "deploy-hook"
))]
pub mod host;

pub mod util;
