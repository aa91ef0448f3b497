//! shoal's REST admin API and its web UI. `shoal ctl` (the terminal client) is the
//! `shoal-ctl` crate, so a node links no HTTP client.
//!
//! Module map (data flows from an HTTP request down to the backend and back as DTOs):
//! - `auth.rs`: bearer tokens, roles read-only and admin (request → allowed or 401/403).
//! - `routes/`: one `router()` per resource under `/api/v1`, assembled with utoipa-axum so
//!   the OpenAPI 3.1 document (`/api/openapi.json`) comes from the handlers themselves;
//!   handlers parse and validate the request, call the backend, return its DTOs.
//! - `backend.rs`: [`AdminBackend`], everything the API asks of a node, one object-safe
//!   trait; the node (shoal-node's `NodeBackend`) implements it.
//! - [`dto`]: the wire types (serde + utoipa), the boundary to the node's crates.
//! - [`rules`]: the rules every backend applies the same way (session filter, order and
//!   paging; the event ring; artifact names; reorder checks), called by backends.
//! - `error.rs`: [`ApiError`], every error as `application/problem+json` (RFC 9457); the
//!   backend's [`BackendError`] becomes one.
//! - `config.rs`: [`AdminConfig`], the `[admin]` section (bind address, tokens).
//! - `ui.rs`: `admin-ui/` embedded and served at `/ui/`, the API docs page at `/api/docs`.
//! - `testing/` (feature `testing` only): [`MemoryBackend`], the in-memory twin for tests and
//!   the dev server, and `testing::suite`, the conformance suite every backend passes.
//!
//! Mount it in a binary with [`serve`] (an already-bound listener, so tests use port 0) or
//! take the bare [`router`].

mod auth;
mod backend;
mod config;
pub mod dto;
mod error;
mod routes;
pub mod rules;
#[cfg(feature = "testing")]
pub mod testing;
mod ui;

use std::{future::Future, sync::Arc};

use axum::{
    extract::DefaultBodyLimit,
    http::{header, StatusCode},
    middleware,
    response::IntoResponse,
    routing::get,
    Router,
};
use tokio::sync::watch;

pub use auth::Role;
pub use backend::{AdminBackend, ArtifactBody, BackendError, BackendResult, BoxFuture};
pub use config::{AdminConfig, ConfigError, ADMIN_TOKEN_ENV, DEFAULT_BIND, MIN_TOKEN_LEN};
pub use dto::{Event, EventKind, MemberState};
pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, PROBLEM_JSON};
pub use routes::{MAX_PAGE, MAX_UPLOAD_BYTES};
#[cfg(feature = "testing")]
pub use testing::MemoryBackend;

/// The OpenAPI 3.1 document, exactly as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::api().doc
}

/// The OpenAPI document as pretty JSON (what the snapshot test compares).
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The whole admin application for `backend`, with `config`'s tokens.
///
/// Endless SSE streams of this router end only when their clients leave; use [`serve`] to
/// have them closed on shutdown.
pub fn router(backend: Arc<dyn AdminBackend>, config: &AdminConfig) -> Router {
    build(backend, config, watch::channel(false).1)
}

fn build(
    backend: Arc<dyn AdminBackend>,
    config: &AdminConfig,
    stopping: watch::Receiver<bool>,
) -> Router {
    let tokens = Arc::new(auth::Tokens::from_config(config));
    let api = routes::api();
    let spec = Arc::new(api.doc.to_pretty_json().unwrap_or_default());
    let state = routes::AppState { backend, stopping };
    let protected = api
        .protected
        .route_layer(middleware::from_fn_with_state(tokens, auth::require_token));
    Router::new()
        .merge(protected)
        .merge(api.probes)
        .route(
            "/api/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        spec.to_string(),
                    )
                }
            }),
        )
        .merge(ui::router())
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::not_found(format!(
                "no route for {}; the API is listed at /api/openapi.json",
                uri.path()
            ))
            .at(uri.path())
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this path does not support that method; see /api/openapi.json",
            )
            .into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown` completes, then closes SSE streams
/// and waits for in-flight requests.
pub async fn serve(
    listener: impl Into<shoal_tls::Listener>,
    backend: Arc<dyn AdminBackend>,
    config: AdminConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if config.admin_token.is_none() && config.read_token.is_none() {
        tracing::warn!(
            "admin API has no token: every data endpoint answers 401; set [admin] admin_token or SHOAL_ADMIN_TOKEN"
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = build(backend, &config, stop_rx);
    let listener = listener.into();
    tracing::info!(addr = ?listener.local_addr().ok(), tls = listener.is_tls(), "admin API listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await
}
