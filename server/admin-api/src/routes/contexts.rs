//! `/api/v1/contexts/*`: contexts, pipelines, sessions, manager statistics.

use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::{dto::*, error::ApiError, ApiJson, ApiPath, ApiQuery};

/// Largest page of sessions.
pub const MAX_PAGE: u32 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contexts))
        .routes(routes!(get_context))
        .routes(routes!(reorder_pipeline))
        .routes(routes!(list_sessions, expire_all))
        .routes(routes!(get_session, expire_session))
        .routes(routes!(session_counts))
        .routes(routes!(manager_stats))
        .routes(routes!(reset_stats))
}

/// Every context with its manager, replication mode and pipeline.
#[utoipa::path(get, path = "/api/v1/contexts", tag = "contexts",
    responses((status = 200, description = "Contexts", body = [Context])))]
async fn list_contexts(State(s): State<AppState>) -> Result<ApiJson<Vec<Context>>, ApiError> {
    Ok(ApiJson(s.backend.contexts().await?))
}

/// One context.
#[utoipa::path(get, path = "/api/v1/contexts/{context}", tag = "contexts",
    params(("context" = String, Path, example = "app", description = "Context name (`app` for `/app`)")),
    responses((status = 200, description = "The context", body = Context)))]
async fn get_context(
    State(s): State<AppState>,
    ApiPath(context): ApiPath<String>,
) -> Result<ApiJson<Context>, ApiError> {
    Ok(ApiJson(s.backend.context(&context).await?))
}

/// Reorders a context's pipeline on every node (every current stage named exactly once).
#[utoipa::path(put, path = "/api/v1/contexts/{context}/pipeline", tag = "contexts",
    params(("context" = String, Path, example = "app", description = "Context name")),
    request_body = ReorderRequest,
    responses((status = 200, description = "The context with its new pipeline", body = Context),
        (status = 409, description = "`order` does not name the current stages exactly once", body = ApiError, content_type = "application/problem+json")))]
async fn reorder_pipeline(
    State(s): State<AppState>,
    ApiPath(context): ApiPath<String>,
    ApiJson(body): ApiJson<ReorderRequest>,
) -> Result<ApiJson<Context>, ApiError> {
    Ok(ApiJson(
        s.backend.reorder_pipeline(&context, body.order).await?,
    ))
}

/// Sessions of a context, filtered and paged.
#[utoipa::path(get, path = "/api/v1/contexts/{context}/sessions", tag = "sessions",
    params(("context" = String, Path, example = "app", description = "Context name"), SessionQuery),
    responses((status = 200, description = "A page of sessions", body = SessionPage)))]
async fn list_sessions(
    State(s): State<AppState>,
    ApiPath(context): ApiPath<String>,
    ApiQuery(query): ApiQuery<SessionQuery>,
) -> Result<ApiJson<SessionPage>, ApiError> {
    if let Some(limit) = query.limit {
        if limit == 0 || limit > MAX_PAGE {
            return Err(ApiError::bad_request(format!(
                "limit={limit} is out of range: use 1..={MAX_PAGE} and page with offset"
            )));
        }
    }
    // The spec says int64: refuse what a client generated from it could not represent.
    for (name, value) in [
        ("offset", query.offset),
        ("min_idle_secs", query.min_idle_secs),
    ] {
        if value.is_some_and(|v| v > i64::MAX as u64) {
            return Err(ApiError::bad_request(format!(
                "{name} is larger than {}: use a smaller value",
                i64::MAX
            )));
        }
    }
    Ok(ApiJson(s.backend.sessions(&context, query).await?))
}

/// Expires every session of a context, on every node.
#[utoipa::path(delete, path = "/api/v1/contexts/{context}/sessions", tag = "sessions",
    params(("context" = String, Path, example = "app", description = "Context name")),
    responses((status = 200, description = "How many sessions were expired", body = ExpiredCount)))]
async fn expire_all(
    State(s): State<AppState>,
    ApiPath(context): ApiPath<String>,
) -> Result<ApiJson<ExpiredCount>, ApiError> {
    Ok(ApiJson(ExpiredCount {
        expired: s.backend.expire_all(&context).await?,
    }))
}

/// One session with its attributes (text, JSON and hex, with sizes).
#[utoipa::path(get, path = "/api/v1/contexts/{context}/sessions/{id}", tag = "sessions",
    params(("context" = String, Path, example = "app", description = "Context name"),
        ("id" = String, Path, description = "Session id, without the `.route` suffix")),
    responses((status = 200, description = "The session", body = SessionDetail)))]
async fn get_session(
    State(s): State<AppState>,
    ApiPath((context, id)): ApiPath<(String, String)>,
) -> Result<ApiJson<SessionDetail>, ApiError> {
    Ok(ApiJson(s.backend.session(&context, &id).await?))
}

/// Expires (invalidates) one session on every node.
#[utoipa::path(delete, path = "/api/v1/contexts/{context}/sessions/{id}", tag = "sessions",
    params(("context" = String, Path, example = "app", description = "Context name"),
        ("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Expired")))]
async fn expire_session(
    State(s): State<AppState>,
    ApiPath((context, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.backend.expire_session(&context, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sessions held per node and context (primary and backup copies).
#[utoipa::path(get, path = "/api/v1/sessions/counts", tag = "sessions",
    responses((status = 200, description = "Counts per node", body = [NodeSessionCount])))]
async fn session_counts(
    State(s): State<AppState>,
) -> Result<ApiJson<Vec<NodeSessionCount>>, ApiError> {
    Ok(ApiJson(s.backend.session_counts().await?))
}

/// Statistics of the context's session manager and valves.
#[utoipa::path(get, path = "/api/v1/contexts/{context}/stats", tag = "contexts",
    params(("context" = String, Path, example = "app", description = "Context name")),
    responses((status = 200, description = "Counters since the last reset", body = ManagerStats)))]
async fn manager_stats(
    State(s): State<AppState>,
    ApiPath(context): ApiPath<String>,
) -> Result<ApiJson<ManagerStats>, ApiError> {
    Ok(ApiJson(s.backend.manager_stats(&context).await?))
}

/// Resets the manager and valve counters of a context (gauges such as active sessions stay).
#[utoipa::path(post, path = "/api/v1/contexts/{context}/stats/reset", tag = "contexts",
    params(("context" = String, Path, example = "app", description = "Context name")),
    responses((status = 204, description = "Reset")))]
async fn reset_stats(
    State(s): State<AppState>,
    ApiPath(context): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.reset_stats(&context).await?;
    Ok(StatusCode::NO_CONTENT)
}
