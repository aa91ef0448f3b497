//! shoal-testkit: the helpers every crate's tests used to write again (dev-only, never a
//! dependency of a library).
//!
//! Module map:
//! - `wait`: poll a condition until it holds or a deadline passes, async
//!   ([`eventually`], [`poll`]) and blocking ([`eventually_blocking`], [`poll_blocking`]);
//!   the `eventually` forms fail the test with a message naming what was awaited.
//! - `ports`: ports for listeners a test process binds itself ([`free_port`],
//!   [`free_run`], [`free_ports`]), taken below the kernel's ephemeral range.
//! - `http`: one GET on a fresh connection with an optional cookie, async ([`get`]) and
//!   blocking ([`get_blocking`]), its [`Reply`] as sent on the wire, and the session cookie
//!   of a `Set-Cookie` value ([`session_cookie`]).
//! - `client`: the tests' reqwest client ([`http_client`]), with the ring provider installed.
//! - `tls`: a throw-away CA issuing `localhost` certificates ([`TestCa`]) and one HTTPS
//!   GET reporting the certificate the server presented ([`https_get`]).
//!
//! No shoal crate is a dependency, so every crate's tests can use this one without a cycle.
#![warn(unreachable_pub)]

mod client;
mod http;
mod ports;
mod tls;
mod wait;

pub use client::{http_client, http_client_builder};
pub use http::{get, get_blocking, session_cookie, Reply};
pub use ports::{free_port, free_ports, free_run};
pub use tls::{https_get, Issued, TestCa, TlsReply};
pub use wait::{eventually, eventually_blocking, poll, poll_blocking, POLL_EVERY};
