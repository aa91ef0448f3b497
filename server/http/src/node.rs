//! `HttpNode`: one node's HTTP side (its contexts, their session managers and pipelines),
//! started through [`HttpNodeBuilder`].
use crate::app::App;
use crate::bench::BenchApp;
use crate::config::{ConfigError, HttpConfig};
use crate::pipeline;
use crate::valve::{UrlFilter, Valve};
use axum::Router;
use shoal_session::{ClusterLink, SessionRegistry};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct HttpNode {
    config: HttpConfig,
    registry: Arc<SessionRegistry>,
    /// Plugin valves per context path, run innermost (see [`crate::Valve`]).
    extra_valves: BTreeMap<String, Vec<Arc<dyn Valve>>>,
    /// URL filters (plugins) per context path, asked by the ReplicationValve.
    url_filters: BTreeMap<String, Arc<dyn UrlFilter>>,
    /// Applications chosen per context path; the others serve the bench app.
    apps: BTreeMap<String, Arc<dyn App>>,
}

/// What an [`HttpNode`] starts with besides its configuration; every part is optional.
///
/// ```ignore
/// let node = HttpNode::builder(config, link)
///     .valves(plugin_valves)      // per context path, run innermost
///     .url_filters(plugin_filters) // per context path, asked by the ReplicationValve
///     .app("/shop", shop_app)      // instead of the bench app
///     .start()?;
/// ```
#[must_use = "nothing starts until `start` is called"]
pub struct HttpNodeBuilder {
    config: HttpConfig,
    link: Arc<dyn ClusterLink>,
    extra_valves: BTreeMap<String, Vec<Arc<dyn Valve>>>,
    url_filters: BTreeMap<String, Arc<dyn UrlFilter>>,
    apps: BTreeMap<String, Arc<dyn App>>,
    stores: BTreeMap<String, Arc<dyn shoal_store::Store>>,
}

impl HttpNode {
    /// A node serving `config`'s contexts, replicating sessions over `link`.
    pub fn builder(config: HttpConfig, link: Arc<dyn ClusterLink>) -> HttpNodeBuilder {
        HttpNodeBuilder {
            config,
            link,
            extra_valves: BTreeMap::new(),
            url_filters: BTreeMap::new(),
            apps: BTreeMap::new(),
            stores: BTreeMap::new(),
        }
    }

    pub fn registry(&self) -> &Arc<SessionRegistry> {
        &self.registry
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// All contexts, each behind its pipeline.
    pub fn router(&self) -> Result<Router, ConfigError> {
        let bench: Arc<dyn App> = Arc::new(BenchApp);
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
            let app = self.apps.get(&ctx.path).unwrap_or(&bench);
            router = router.merge(pipeline::build(
                &self.config,
                ctx,
                service,
                extra,
                filter,
                app.as_ref(),
            )?);
        }
        Ok(router)
    }

    /// Stops replicating (shutdown, or a simulated crash in tests).
    pub fn stop(&self) {
        self.registry.stop();
    }
}

impl HttpNodeBuilder {
    /// Extra valves (e.g. Wasm plugins) per context path, run after the built-in valves in
    /// the given order.
    pub fn valves(mut self, valves: BTreeMap<String, Vec<Arc<dyn Valve>>>) -> Self {
        self.extra_valves = valves;
        self
    }

    /// A URL filter (e.g. Wasm plugins) per context path, asked by the ReplicationValve
    /// after the context's regex.
    pub fn url_filters(mut self, filters: BTreeMap<String, Arc<dyn UrlFilter>>) -> Self {
        self.url_filters = filters;
        self
    }

    /// Serves `app` at the end of context `path`'s pipeline instead of the bench app.
    pub fn app(mut self, path: impl Into<String>, app: Arc<dyn App>) -> Self {
        self.apps.insert(path.into(), app);
        self
    }

    /// The store of persistent context `path`, instead of the one its `[store]` settings
    /// describe (tests pass shoal-store's memory twin).
    pub fn store(mut self, path: impl Into<String>, store: Arc<dyn shoal_store::Store>) -> Self {
        self.stores.insert(path.into(), store);
        self
    }

    /// Validates the configuration and starts the session managers (state transfers begin
    /// now). Must run inside a tokio runtime.
    pub fn start(self) -> Result<Arc<HttpNode>, ConfigError> {
        self.config.validate()?;
        let contexts: Vec<_> = self
            .config
            .contexts
            .iter()
            .map(|c| (c.path.clone(), c.session.clone()))
            .collect();
        let registry = SessionRegistry::start_with_stores(self.link, &contexts, &self.stores)
            .map_err(ConfigError::Invalid)?;
        Ok(Arc::new(HttpNode {
            config: self.config,
            registry,
            extra_valves: self.extra_valves,
            url_filters: self.url_filters,
            apps: self.apps,
        }))
    }
}
