//! shoal-balancer: a sticky-by-route HTTP/1.1 reverse proxy in front of shoal nodes.
//!
//! # Module map
//!
//! A client connection is accepted by `worker`, served by `lean` (or, for what the lean
//! path does not carry, by `fallback`), and both paths send each request through `retry`,
//! which picks backends with `pick` from `backend` and applies the never-send-twice rule.
//! Data flows down this list; no module imports one that imports it back.
//!
//! - `lib.rs` (this file): [`Balancer`], the handle, and [`serve`].
//! - `worker`: accept loops on dedicated threads, one single-threaded runtime each; every
//!   connection starts on the lean path.
//! - `lean/`: the lean HTTP/1.1 path: `mod.rs` (a client connection, client and backend
//!   side), `upstream.rs` (a kept-alive backend connection), `head/` (request and response
//!   heads without header maps), `chunked.rs`, `deadline.rs`.
//! - `fallback/`: the hyper path, for the rest of a connection the lean path hands over
//!   (`mod.rs`), with the bytes already read replayed first (`rewind.rs`); also the status
//!   endpoint's hyper answer.
//! - `retry`: the one loop both paths run to try backends, and the rule that keeps a
//!   request from being applied twice.
//! - `pick`: reads the route from `JSESSIONID=<id>.<route>` (cookie, `X-Shoal-Session`
//!   header or `;jsessionid=` path parameter) and chooses a backend: the sticky one while it
//!   is up, else the least-outstanding live, non-draining one.
//! - `health`: active probes; passive detection (connection errors) is in `retry`.
//! - `state`: what connections, probes and handles share (config, backends, hyper client,
//!   counters).
//! - `backend`: per-backend atomics and the swappable list behind [`Balancer::set_backends`].
//! - `body` (hyper bodies and plain answers), `headers` ([`BACKEND_HEADER`], hop-by-hop
//!   names), [`config`] ([`BalancerConfig`], [`Backend`], validated in one place),
//!   [`stats`] (what [`Balancer::stats`] and the status endpoint report), `error`
//!   ([`BalancerError`]): leaves.
//!
//! Draining: a backend marked draining keeps serving the requests of its own sessions (so a
//! node can hand them over at its own pace) but gets no new sessions; when it goes away its
//! sessions fail over like those of a crashed node.

pub mod config;
mod error;
pub mod stats;

mod backend;
mod body;
mod fallback;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod headers;
mod health;
mod lean;
mod pick;
mod retry;
mod state;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use config::{Backend, BalancerConfig};
pub use error::BalancerError;
pub use headers::BACKEND_HEADER;
pub use stats::{BackendStats, BackendStatus, BalancerStats};

use state::Inner;

/// How long open client connections may take to finish their requests after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running balancer's handle: cheap to clone, shared by the server and by whoever feeds it
/// backends (static config, cluster membership, a drain command).
#[derive(Clone)]
pub struct Balancer {
    inner: Arc<Inner>,
}

impl Balancer {
    /// Validates `config` and builds the balancer; nothing listens until [`Balancer::serve`].
    pub fn new(config: BalancerConfig) -> Result<Self, BalancerError> {
        config.validate()?;
        Ok(Balancer {
            inner: Arc::new(Inner::new(config)?),
        })
    }

    /// Accepts connections on `listener` and proxies them until `shutdown` completes, then
    /// lets open requests finish (up to 10 s). Health checks run for as long as this does;
    /// call it once per balancer (a second concurrent call would probe twice as often).
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), BalancerError> {
        let listener = listener
            .into_std()
            .map_err(|e| BalancerError::InvalidSetting {
                key: "listen",
                reason: format!("listener cannot be handed to the accept threads: {e}"),
            })?;
        let threads = match self.inner.config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let workers = worker::Workers::start(&self.inner, listener, threads, SHUTDOWN_GRACE)?;
        let health = tokio::spawn(health::run(self.inner.clone()));
        shutdown.await;
        workers.stop().await;
        health.abort();
        Ok(())
    }

    /// Replaces the backend list (static reload or a membership change). Backends whose
    /// route and address are unchanged keep their state and counters; new ones start up.
    pub fn set_backends(&self, backends: Vec<Backend>) -> Result<(), BalancerError> {
        let targets = self.inner.config.targets(&backends)?;
        self.inner.registry.replace(targets);
        Ok(())
    }

    /// Adds one backend, or moves the backend with that route to a new address (a
    /// membership "member added" event). A new backend starts up, not draining.
    pub fn add_backend(&self, backend: Backend) -> Result<(), BalancerError> {
        let mut targets = self.inner.config.targets(std::slice::from_ref(&backend))?;
        if let Some(target) = targets.pop() {
            self.inner.registry.upsert(target);
        }
        Ok(())
    }

    /// Forgets the backend with `route` (a "member disappeared" event); its sessions fail
    /// over to the others. Returns false if no backend has that route.
    pub fn remove_backend(&self, route: &str) -> bool {
        self.inner.registry.remove(route)
    }

    /// Stops sending new sessions to `route`; its existing sessions stay with it while it
    /// is up. Returns false if no backend has that route.
    pub fn mark_draining(&self, route: &str) -> bool {
        self.set_draining(route, true)
    }

    /// Undoes [`Balancer::mark_draining`] (a drain was cancelled). False if `route` is unknown.
    pub fn mark_active(&self, route: &str) -> bool {
        self.set_draining(route, false)
    }

    fn set_draining(&self, route: &str, draining: bool) -> bool {
        let found = self.inner.registry.find(route);
        if let Some(b) = &found {
            b.set_draining(draining);
        }
        found.is_some()
    }

    /// Counters and per-backend state right now.
    pub fn stats(&self) -> BalancerStats {
        self.inner.stats()
    }

    /// The validated configuration this balancer runs with (backends as first configured).
    pub fn config(&self) -> &BalancerConfig {
        &self.inner.config
    }
}

/// Builds a [`Balancer`] from `config` and serves `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: BalancerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BalancerError> {
    Balancer::new(config)?.serve(listener, shutdown).await
}
