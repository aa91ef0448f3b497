//! What every connection, the health checker and the [`crate::Balancer`] handles share:
//! the configuration, the backends, the hyper client pool and the counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::backend::Registry;
use crate::body::Body;
use crate::config::BalancerConfig;
use crate::error::BalancerError;
use crate::stats::BalancerStats;

/// State shared by every connection, the health checker and the handles.
pub(crate) struct Inner {
    pub config: BalancerConfig,
    pub registry: Registry,
    /// Pooled keep-alive connections to the backends, used by the hyper path and probes
    /// (HTTPS for `https` URIs, i.e. when `backend_ca` is set).
    pub client: Client<HttpsConnector<HttpConnector>, Body>,
    /// The lean path's TLS to the backends, when `backend_ca` is set.
    pub tls: Option<shoal_tls::tokio_rustls::TlsConnector>,
    /// Rotates the starting point of new-session picks.
    pub rr: AtomicUsize,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub errors: AtomicU64,
}

impl Inner {
    /// Builds the shared state from a validated `config`.
    pub(crate) fn new(config: BalancerConfig) -> Result<Inner, BalancerError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        // The URI's scheme chooses: plain backends never touch the TLS config.
        connector.enforce_http(false);
        let tls_config = match &config.backend_ca {
            Some(ca) => shoal_tls::client_config(ca, "balancer backend_ca"),
            None => shoal_tls::client_config_without_roots(),
        }
        .map_err(|e| BalancerError::InvalidSetting {
            key: "backend_ca",
            reason: e.to_string(),
        })?;
        let tls = config
            .backend_ca
            .is_some()
            .then(|| shoal_tls::tokio_rustls::TlsConnector::from(Arc::new(tls_config.clone())));
        // hyper-rustls sets ALPN itself (from `enable_http1`) and refuses a config that has it.
        let mut hyper_tls = tls_config;
        hyper_tls.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(hyper_tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            // Below the usual node keep-alive timeouts (Tomcat: 20 s), so the balancer, not
            // the node, closes idle connections and requests rarely race a closing one.
            .pool_idle_timeout(Duration::from_secs(10))
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        let registry = Registry::default();
        registry.replace(config.targets(&config.backends)?);
        Ok(Inner {
            config,
            registry,
            client,
            tls,
            rr: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// Counters and per-backend state right now.
    pub(crate) fn stats(&self) -> BalancerStats {
        BalancerStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            backends: self.registry.snapshot().iter().map(|b| b.stats()).collect(),
        }
    }
}
