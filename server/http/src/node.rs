//! `HttpNode`: one node's HTTP side (its contexts, their session managers and pipelines),
//! started through [`HttpNodeBuilder`]. Contexts can be installed, replaced and removed
//! while the node serves ([`HttpNode::install_context`], [`HttpNode::remove_context`]).
use crate::app::App;
use crate::bench::BenchApp;
use crate::config::{ConfigError, ContextConfig, HttpConfig};
use crate::contexts::{Contexts, Served};
use crate::pipeline;
use crate::static_files::StaticFiles;
use crate::valve::{UrlFilter, Valve};
use axum::Router;
use shoal_session::{ClusterLink, SessionRegistry};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct HttpNode {
    config: HttpConfig,
    registry: Arc<SessionRegistry>,
    /// Every served context (the configured ones and those installed since).
    contexts: Contexts,
    /// One install or removal at a time, so the session manager and the pipeline of a
    /// context always change together.
    changes: Mutex<()>,
}

/// What a context installed at run time is made of besides its [`ContextConfig`]; every
/// part is optional (no app = the bench app).
#[derive(Default, Clone)]
pub struct ContextParts {
    /// The application at the end of the pipeline.
    pub app: Option<Arc<dyn App>>,
    /// Plugin valves, run innermost in this order.
    pub valves: Vec<Arc<dyn Valve>>,
    /// Asked by the ReplicationValve after the context's regex.
    pub url_filter: Option<Arc<dyn UrlFilter>>,
    /// Static files served under the context path (GET and HEAD of an indexed file, with
    /// its ETag; everything else goes to the pipeline). Files are served without touching
    /// the session.
    pub static_files: Option<StaticFiles>,
    /// The store of a persistent context or of a replicated one with a write-behind store,
    /// instead of the one its `[store]` settings describe (tests pass the memory twin).
    pub store: Option<Arc<dyn shoal_store::Store>>,
}

/// What [`HttpNode::install_context`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    /// The context did not exist: new session manager, state transfer started.
    Created,
    /// The context existed with the same session settings: its manager and sessions are
    /// kept, the pipeline (application, valves, filter, static files) is swapped.
    Replaced,
    /// The context existed with other session settings: it got a new manager (this node's
    /// sessions of the context are fetched back from the other nodes by state transfer).
    ReplacedManager,
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

    /// Every context, each behind its pipeline. The router looks the context up per
    /// request, so contexts installed or removed later are served without a new router.
    pub fn router(&self) -> Result<Router, ConfigError> {
        Ok(Router::new().fallback_service(self.contexts.clone()))
    }

    /// The settings of every context served now (configured and installed).
    pub fn contexts(&self) -> Vec<ContextConfig> {
        self.contexts.configs()
    }

    /// Creates context `ctx.path` or replaces it, atomically: requests in flight finish on
    /// the old pipeline, the next ones run on the new. A new context gets a session manager
    /// whose state transfer starts now (sessions other nodes already hold for it arrive
    /// before it serves: the SessionValve waits for the transfer as on a joining node). A
    /// replaced context with the same session settings keeps its manager, so no session
    /// is lost by a redeploy. Must run inside a tokio runtime.
    pub fn install_context(
        &self,
        ctx: ContextConfig,
        parts: ContextParts,
    ) -> Result<Installed, ConfigError> {
        ctx.validate()?;
        if parts.app.is_none() && ctx.app != "bench" {
            return Err(ConfigError::UnknownApp {
                path: ctx.path.clone(),
                app: ctx.app.clone(),
            });
        }
        let _one = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let existed = self.contexts.get(&ctx.path).is_some();
        let (service, new_manager) = self
            .registry
            .add_context(&ctx.path, &ctx.session, parts.store.clone())
            .map_err(ConfigError::Invalid)?;
        let bench: Arc<dyn App> = Arc::new(BenchApp);
        let app = parts.app.unwrap_or(bench);
        let router = pipeline::build(
            &self.config,
            &ctx,
            service,
            parts.valves,
            parts.url_filter,
            app.as_ref(),
            parts.static_files.as_ref(),
        );
        let router = match router {
            Ok(r) => r,
            Err(e) => {
                if !existed {
                    self.registry.remove_context(&ctx.path);
                }
                return Err(e);
            }
        };
        let path = ctx.path.clone();
        self.contexts.insert(Served {
            config: ctx,
            router,
        });
        let installed = match (existed, new_manager) {
            (false, _) => Installed::Created,
            (true, false) => Installed::Replaced,
            (true, true) => Installed::ReplacedManager,
        };
        tracing::info!(context = %path, app = %app.name(), ?installed, "context installed");
        Ok(installed)
    }

    /// Removes context `path`: the next requests under it get 404, requests in flight
    /// finish, and its session manager stops (a store behind it is flushed within
    /// `store_deadline`). False when the node has no such context.
    pub async fn remove_context(&self, path: &str, store_deadline: Duration) -> bool {
        let service = {
            let _one = self.changes.lock().unwrap_or_else(|p| p.into_inner());
            if self.contexts.remove(path).is_none() {
                return false;
            }
            self.registry.remove_context(path)
        };
        if let Some(s) = service {
            if !SessionRegistry::stop_service_stores(&s, store_deadline).await {
                tracing::warn!(context = %path, "context removed before its store was flushed");
            }
        }
        tracing::info!(context = %path, "context removed");
        true
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
        let served = Contexts::default();
        let bench: Arc<dyn App> = Arc::new(BenchApp);
        for ctx in &self.config.contexts {
            let Some(service) = registry.service(&ctx.path) else {
                continue;
            };
            let extra = self
                .extra_valves
                .get(&ctx.path)
                .cloned()
                .unwrap_or_default();
            let filter = self.url_filters.get(&ctx.path).cloned();
            let app = self.apps.get(&ctx.path).unwrap_or(&bench);
            let router = pipeline::build(
                &self.config,
                ctx,
                service,
                extra,
                filter,
                app.as_ref(),
                None,
            )?;
            served.insert(Served {
                config: ctx.clone(),
                router,
            });
        }
        Ok(Arc::new(HttpNode {
            config: self.config,
            registry,
            contexts: served,
            changes: Mutex::new(()),
        }))
    }
}
