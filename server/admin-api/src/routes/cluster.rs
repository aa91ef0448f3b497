//! `/api/v1/cluster/*` (members, local node, drain), `/api/v1/health`, `/api/v1/ready`.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::{dto::*, error::ApiError, ApiJson};

/// Routes that need a token.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(local_node))
        .routes(routes!(members))
        .routes(routes!(drain_status, start_drain))
}

/// Routes for balancers and orchestrators: no token (they reveal only up/ready and why).
pub fn probes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// The node answering this request.
#[utoipa::path(get, path = "/api/v1/cluster/local", tag = "cluster",
    responses((status = 200, description = "This node", body = LocalNode)))]
async fn local_node(State(s): State<AppState>) -> Result<ApiJson<LocalNode>, ApiError> {
    Ok(ApiJson(s.backend.local_node().await?))
}

/// Every member this node knows of, including itself and members recently gone.
#[utoipa::path(get, path = "/api/v1/cluster/members", tag = "cluster",
    responses((status = 200, description = "Members with state, since when and why", body = [Member])))]
async fn members(State(s): State<AppState>) -> Result<ApiJson<Vec<Member>>, ApiError> {
    Ok(ApiJson(s.backend.members().await?))
}

/// This node's drain: phase, trigger, since when, and what the drain does.
#[utoipa::path(get, path = "/api/v1/cluster/drain", tag = "cluster",
    responses((status = 200, description = "The drain state (`serving` when not draining)", body = DrainStatus)))]
async fn drain_status(State(s): State<AppState>) -> Result<ApiJson<DrainStatus>, ApiError> {
    Ok(ApiJson(s.backend.drain_status().await?))
}

/// Drains this node for a rolling deploy, as SIGTERM does: it stops taking new sessions,
/// tells the balancers, hands its sessions over and exits. Answers at once; follow the
/// drain with `GET /api/v1/cluster/drain` until the node stops answering.
#[utoipa::path(post, path = "/api/v1/cluster/drain", tag = "cluster",
    responses((status = 202, description = "Drain started; the node exits when it is done", body = DrainStatus),
        (status = 409, description = "The node is already draining", body = ApiError, content_type = "application/problem+json")))]
async fn start_drain(
    State(s): State<AppState>,
) -> Result<(StatusCode, ApiJson<DrainStatus>), ApiError> {
    let status = s.backend.start_drain().await?;
    Ok((StatusCode::ACCEPTED, ApiJson(status)))
}

/// Liveness (no token): 200 while the process works, even if degraded.
#[utoipa::path(get, path = "/api/v1/health", tag = "probes", security(()),
    responses((status = 200, description = "Alive", body = Health),
        (status = 503, description = "Not working; restart it", body = Health)))]
async fn health(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let health = s.backend.health().await?;
    Ok((StatusCode::OK, ApiJson(health)))
}

/// Readiness (no token): 200 when a balancer may send traffic here, 503 with the reasons otherwise.
#[utoipa::path(get, path = "/api/v1/ready", tag = "probes", security(()),
    responses((status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready yet; `checks` say what it waits for", body = Readiness)))]
async fn ready(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let ready = s.backend.readiness().await?;
    let status = if ready.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, ApiJson(ready)))
}
