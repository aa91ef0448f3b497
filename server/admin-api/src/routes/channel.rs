//! `/api/v1/channel/*`: interceptor stack, send options, per-peer traffic.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::{dto::*, error::ApiError, ApiJson};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(channel))
        .routes(routes!(reorder_interceptors))
        .routes(routes!(peers))
}

/// Interceptors in order (send top-down) with config and counters, and the send options.
#[utoipa::path(get, path = "/api/v1/channel", tag = "channel",
    responses((status = 200, description = "The channel", body = ChannelInfo)))]
async fn channel(State(s): State<AppState>) -> Result<ApiJson<ChannelInfo>, ApiError> {
    Ok(ApiJson(s.backend.channel().await?))
}

/// Reorders the interceptor stack on every node (every current interceptor exactly once).
#[utoipa::path(put, path = "/api/v1/channel/interceptors", tag = "channel",
    request_body = ReorderRequest,
    responses((status = 200, description = "The channel with its new order", body = ChannelInfo),
        (status = 409, description = "`order` does not name the current interceptors exactly once", body = ApiError, content_type = "application/problem+json")))]
async fn reorder_interceptors(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<ReorderRequest>,
) -> Result<ApiJson<ChannelInfo>, ApiError> {
    Ok(ApiJson(s.backend.reorder_interceptors(body.order).await?))
}

/// Cumulative traffic per peer; sample twice to get rates.
#[utoipa::path(get, path = "/api/v1/channel/peers", tag = "channel",
    responses((status = 200, description = "One entry per peer", body = [PeerTraffic])))]
async fn peers(State(s): State<AppState>) -> Result<ApiJson<Vec<PeerTraffic>>, ApiError> {
    Ok(ApiJson(s.backend.peer_traffic().await?))
}
