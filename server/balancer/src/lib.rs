//! shoal-balancer: a sticky-by-route HTTP/1.1 reverse proxy in front of shoal nodes.
//!
//! - [`config`]: [`BalancerConfig`] and [`Backend`], serde structs validated in one place.
//! - `pick`: reads the route from `JSESSIONID=<id>.<route>` (cookie, `X-Shoal-Session`
//!   header or `;jsessionid=` path parameter) and chooses a backend: the sticky one while it
//!   is up, else the least-outstanding live, non-draining one.
//! - `proxy`: forwards a request and decides whether a failed one may be resent elsewhere.
//! - `health`: active probes; passive detection (connection errors) lives in `proxy`.
//! - `backend`: per-backend atomics and the swappable list behind [`Balancer::set_backends`].
//! - [`stats`]: what [`Balancer::stats`] and the status endpoint report.
//!
//! Draining: a backend marked draining keeps serving the requests of its own sessions (so a
//! node can hand them over at its own pace) but gets no new sessions; when it goes away its
//! sessions fail over like those of a crashed node.

pub mod config;
mod error;
pub mod stats;

mod backend;
mod chunked;
mod deadline;
mod head;
mod health;
mod lean;
mod pick;
mod proxy;
mod rewind;
mod worker;

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpListener;

pub use config::{Backend, BalancerConfig};
pub use error::BalancerError;
pub use proxy::BACKEND_HEADER;
pub use stats::{BackendStats, BackendStatus, BalancerStats};

use backend::Registry;
use proxy::Body;

/// How long open client connections may take to finish their requests after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running balancer's handle: cheap to clone, shared by the server and by whoever feeds it
/// backends (static config, cluster membership, a drain command).
#[derive(Clone)]
pub struct Balancer {
    inner: Arc<Inner>,
}

/// State shared by every connection, the health checker and the handles.
pub(crate) struct Inner {
    config: BalancerConfig,
    registry: Registry,
    /// Pooled keep-alive connections to the backends, used by traffic and probes.
    client: Client<HttpConnector, Body>,
    /// Rotates the starting point of new-session picks.
    rr: AtomicUsize,
    requests: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
}

impl Balancer {
    /// Validates `config` and builds the balancer; nothing listens until [`Balancer::serve`].
    pub fn new(config: BalancerConfig) -> Result<Self, BalancerError> {
        config.validate()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            // Below the usual node keep-alive timeouts (Tomcat: 20 s), so the balancer, not
            // the node, closes idle connections and requests rarely race a closing one.
            .pool_idle_timeout(Duration::from_secs(10))
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        let registry = Registry::default();
        registry.replace(config.targets(&config.backends)?);
        let inner = Inner {
            config,
            registry,
            client,
            rr: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        };
        Ok(Balancer {
            inner: Arc::new(inner),
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
        stats_of(&self.inner)
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

pub(crate) fn stats_of(inner: &Inner) -> BalancerStats {
    BalancerStats {
        requests: inner.requests.load(Ordering::Relaxed),
        retries: inner.retries.load(Ordering::Relaxed),
        errors: inner.errors.load(Ordering::Relaxed),
        backends: inner
            .registry
            .snapshot()
            .iter()
            .map(|b| b.stats())
            .collect(),
    }
}

/// The status endpoint: GET/HEAD only, JSON of [`BalancerStats`].
pub(crate) fn status_response(inner: &Inner, method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = proxy::plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "the status endpoint answers GET only",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match serde_json::to_vec_pretty(&stats_of(inner)) {
        Ok(json) => {
            let mut r = Response::new(proxy::full(json.into()));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => proxy::plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("status not serializable: {e}"),
        ),
    }
}
