//! The HTTP surface: one `router()` per resource, assembled with [`OpenApiRouter`] so that the
//! OpenAPI document is generated from the same handlers that serve the requests.

mod channel;
mod cluster;
mod contexts;
mod deployments;
mod events;
mod plugins;
mod spec;

use std::sync::Arc;

use axum::{body::Bytes, extract::rejection::BytesRejection, http::StatusCode, Router};
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{backend::AdminBackend, error::ApiError};

pub use contexts::MAX_PAGE;
pub use spec::ApiDoc;

/// Largest plugin component or deployment artifact accepted in one request.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub(crate) backend: Arc<dyn AdminBackend>,
    /// Flips to true when the listener shuts down, so that endless SSE streams end and
    /// graceful shutdown does not wait for clients that never leave.
    pub(crate) stopping: watch::Receiver<bool>,
}

/// Data routes (need a token) and probe routes (no token), plus the finished document.
pub(crate) struct Api {
    pub protected: Router<AppState>,
    pub probes: Router<AppState>,
    pub doc: utoipa::openapi::OpenApi,
}

pub(crate) fn api() -> Api {
    let (protected, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(cluster::router())
        .merge(contexts::router())
        .merge(channel::router())
        .merge(plugins::router())
        .merge(deployments::router())
        .merge(events::router())
        .split_for_parts();
    let (probes, probes_doc) = cluster::probes().split_for_parts();
    doc.merge(probes_doc);
    spec::finish(&mut doc);
    Api {
        protected,
        probes,
        doc,
    }
}

/// Maps a body-read failure (too large, connection cut) to a problem.
// ApiError is the problem+json body itself (what every handler returns); these two are
// not on a hot path.
#[allow(clippy::result_large_err)]
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "too-large",
                format!("the upload exceeds {MAX_UPLOAD_BYTES} bytes; shrink the artifact (strip debug info with `wasm-tools strip`)"),
            )
        } else {
            ApiError::new(status, "bad-request", r.body_text())
        }
    })
}
