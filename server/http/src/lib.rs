//! shoal-http: the HTTP front of a shoal node.
//!
//! A node serves one or more *contexts* (path prefixes, Tomcat's web applications). Each
//! context has a session manager ([`shoal_session::SessionService`]) and a pipeline of
//! valves ending in an application, built in [`pipeline`]. Module map:
//! - [`config`]: the `[http]` section (`HttpConfig`, `ContextConfig`).
//! - [`valve`]: the `Valve` trait (extension point) and the built-in valves
//!   (SessionValve, JvmRouteBinderValve, ReplicationValve).
//! - [`handle`]: `SessionHandle`, a request's lazy view of its session.
//! - [`app`]: the bench app (the Tomcat peer harness contract).
//! - [`error`]: `HttpError` and its one-line responses.
//!
//! Entry points: [`HttpNode::start`] then [`HttpNode::router`] or [`serve`], which takes an
//! already-bound listener so tests run nodes in-process on port 0.
pub mod app;
pub mod config;
pub mod error;
pub mod handle;
pub mod pipeline;
pub mod valve;

pub use config::{ConfigError, ContextConfig, HttpConfig, DEFAULT_URL_FILTER};
pub use error::HttpError;
pub use handle::SessionHandle;
pub use valve::{Next, UrlFilter, Valve, ValveLayer};

use axum::Router;
use shoal_session::{ClusterLink, SessionRegistry};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// One node's HTTP side: its contexts and their session managers.
pub struct HttpNode {
    config: HttpConfig,
    registry: Arc<SessionRegistry>,
    /// Plugin valves per context path, run innermost (see [`valve`]).
    extra_valves: BTreeMap<String, Vec<Arc<dyn Valve>>>,
    /// URL filters (plugins) per context path, asked by the ReplicationValve.
    url_filters: BTreeMap<String, Arc<dyn UrlFilter>>,
}

impl HttpNode {
    /// Validates `config` and starts the session managers over `link` (state transfers
    /// begin now). Must run inside a tokio runtime.
    pub fn start(config: HttpConfig, link: Arc<dyn ClusterLink>) -> Result<Arc<Self>, ConfigError> {
        Self::start_with_valves(config, link, BTreeMap::new())
    }

    /// Like [`HttpNode::start`], with extra valves (e.g. Wasm plugins) per context path.
    pub fn start_with_valves(
        config: HttpConfig,
        link: Arc<dyn ClusterLink>,
        extra_valves: BTreeMap<String, Vec<Arc<dyn Valve>>>,
    ) -> Result<Arc<Self>, ConfigError> {
        Self::start_with_plugins(config, link, extra_valves, BTreeMap::new())
    }

    /// Like [`HttpNode::start_with_valves`], with a URL filter per context path too.
    pub fn start_with_plugins(
        config: HttpConfig,
        link: Arc<dyn ClusterLink>,
        extra_valves: BTreeMap<String, Vec<Arc<dyn Valve>>>,
        url_filters: BTreeMap<String, Arc<dyn UrlFilter>>,
    ) -> Result<Arc<Self>, ConfigError> {
        config.validate()?;
        let contexts: Vec<_> = config
            .contexts
            .iter()
            .map(|c| (c.path.clone(), c.session.clone()))
            .collect();
        let registry = SessionRegistry::start(link, &contexts);
        Ok(Arc::new(HttpNode {
            config,
            registry,
            extra_valves,
            url_filters,
        }))
    }

    pub fn registry(&self) -> &Arc<SessionRegistry> {
        &self.registry
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// All contexts, each behind its pipeline.
    pub fn router(&self) -> Result<Router, ConfigError> {
        let mut router = Router::new();
        for ctx in &self.config.contexts {
            let Some(service) = self.registry.service(&ctx.path) else {
                continue;
            };
            let extra = self
                .extra_valves
                .get(&ctx.path)
                .cloned()
                .unwrap_or_default();
            let filter = self.url_filters.get(&ctx.path).cloned();
            router = router.merge(pipeline::build(&self.config, ctx, service, extra, filter)?);
        }
        Ok(router)
    }

    /// Stops replicating (shutdown, or a simulated crash in tests).
    pub fn stop(&self) {
        self.registry.stop();
    }
}

/// Serves `node` on `listener` until `shutdown` resolves, then lets open connections
/// finish their current request (at most 5 s).
///
/// HTTP/1 response headers are written in Title-Case (`Set-Cookie`), as Tomcat does: header
/// names are case-insensitive, but some clients (wrk's Lua `headers["Set-Cookie"]`, used by
/// the benchmark harness) look them up case-sensitively.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Arc<HttpNode>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let router = node
        .router()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().title_case_headers(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("http connection ended: {e}");
            }
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}
