//! Each context's pipeline, built in this one place. Outermost valve first: a request
//! goes down the list to the application and the response comes back up.
use crate::app::App;
use crate::config::{ConfigError, ContextConfig, HttpConfig};
use crate::static_files::StaticFiles;
use crate::valve::{
    JvmRouteBinderValve, ReplicationValve, SessionValve, UrlFilter, Valve, ValveLayer,
};
use axum::Router;
use http::HeaderName;
use shoal_session::SessionService;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;

/// The pipeline of one context: built-in valves, then `extra` valves (plugins) in order,
/// then `app`; `url_filter` is asked by the ReplicationValve after the context's regex.
/// `static_files` are served before the pipeline (GET/HEAD of an indexed file, with its ETag).
/// Returns a router serving paths under `ctx.path`.
pub(crate) fn build(
    http: &HttpConfig,
    ctx: &ContextConfig,
    service: Arc<SessionService>,
    extra: Vec<Arc<dyn Valve>>,
    url_filter: Option<Arc<dyn UrlFilter>>,
    app: &dyn App,
    static_files: Option<&StaticFiles>,
) -> Result<Router, ConfigError> {
    let header = HeaderName::from_bytes(http.session_header.as_bytes()).map_err(|e| {
        ConfigError::Invalid(format!("session_header `{}`: {e}", http.session_header))
    })?;
    let route = service.route();
    let app = app.router(service.clone());
    let mut builtin: Vec<Arc<dyn Valve>> = Vec::new();
    if ctx.jvm_route_binder {
        builtin.push(Arc::new(JvmRouteBinderValve { route }));
    }
    let pipeline = ServiceBuilder::new()
        // Binds the request to its session (cookie or header), waits for a joining node's
        // state transfer, sets the cookie on the way out.
        .layer(ValveLayer::new(SessionValve {
            service,
            cookie_name: http.cookie_name.clone(),
            header,
            path: ctx.path.clone(),
            ready_wait: Duration::from_millis(http.ready_wait_ms),
        }))
        // Rewrites sessions routed to another node to this node's route (after failover).
        .layer(ValveLayer::chain(builtin))
        // Commits and replicates the session when the application is done.
        .layer(ValveLayer::new(ReplicationValve {
            filter: ctx.filter()?,
            extra: url_filter,
        }))
        // Plugin valves, innermost, in configured order.
        .layer(ValveLayer::chain(extra))
        .service(app);
    Ok(match static_files {
        // Static files first, without the session; the rest goes down the pipeline.
        Some(files) => Router::new().nest_service(
            &ctx.path,
            files.in_front_of(Router::new().fallback_service(pipeline)),
        ),
        None => Router::new().nest_service(&ctx.path, pipeline),
    })
}
