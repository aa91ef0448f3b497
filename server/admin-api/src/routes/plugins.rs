//! `/api/v1/plugins/*`: Wasm plugins. Every mutation applies on every node (see
//! [`crate::AdminBackend`]).

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, State},
    http::StatusCode,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{body_bytes, AppState};
use crate::{dto::*, error::ApiError, ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins, load_plugin))
        .routes(routes!(get_plugin, unload_plugin))
        .routes(routes!(configure_plugin))
        .routes(routes!(enable_plugin))
        .routes(routes!(disable_plugin))
        .routes(routes!(reload_plugin))
}

/// Every loaded plugin with version, digest, world, state, limits and failure counts.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins",
    responses((status = 200, description = "Plugins", body = [Plugin])))]
async fn list_plugins(State(s): State<AppState>) -> Result<ApiJson<Vec<Plugin>>, ApiError> {
    Ok(ApiJson(s.backend.plugins().await?))
}

/// Loads a component (the request body) on every node, or replaces one (`replace=true`:
/// new component, and every other field given). A valve goes first among the context's
/// plugins unless `before` / `after` say otherwise; `warnings` says when it cannot run there.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins",
    params(LoadPluginQuery),
    request_body(content = Upload, content_type = "application/octet-stream",
        description = "The Wasm component (`shoal plugin build` output); `application/wasm` is accepted too"),
    responses((status = 201, description = "Loaded", body = Plugin),
        (status = 400, description = "Bad name, or both before and after", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "The context, or the stage named by before/after, does not exist", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "Name in use; pass replace=true to hot-reload a new version", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Component larger than the upload limit", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Not a Wasm component, or bad config", body = ApiError, content_type = "application/problem+json")))]
async fn load_plugin(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<LoadPluginQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, ApiJson<Plugin>), ApiError> {
    let component = body_bytes(body)?;
    let valid_name = !q.name.is_empty()
        && q.name.len() <= 64
        && q.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid_name {
        return Err(ApiError::bad_request(format!(
            "name `{}` is not usable: use 1..=64 letters, digits, `.`, `_` or `-`",
            q.name
        )));
    }
    let config = match &q.config {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => Some(v),
            Ok(_) => {
                return Err(ApiError::unprocessable(
                    "config must be a JSON object, e.g. {\"key\":\"value\"}",
                ))
            }
            Err(e) => {
                return Err(ApiError::unprocessable(format!(
                    "config is not valid JSON ({e}); pass a URL-encoded JSON object"
                )))
            }
        },
    };
    // An empty stage name names no stage: as if not given.
    let stage = |s: Option<String>| s.filter(|s| !s.is_empty());
    let position = match (stage(q.before), stage(q.after)) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "give either before or after, not both",
            ))
        }
        (Some(b), None) => Some(Position::Before(b)),
        (None, Some(a)) => Some(Position::After(a)),
        (None, None) => None,
    };
    let request = LoadPlugin {
        name: q.name,
        world: q.world,
        attach: q.attach,
        position,
        label: q.label,
        policy: q.policy,
        limits: LimitsRequest {
            memory_mib: q.memory_mib,
            call_timeout_ms: q.call_timeout_ms,
            max_instances: q.max_instances,
        },
        config,
        replace: q.replace.unwrap_or(false),
        component: component.to_vec(),
    };
    let plugin = s.backend.load_plugin(request).await?;
    Ok((StatusCode::CREATED, ApiJson(plugin)))
}

/// One plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, example = "url-filter", description = "Plugin name")),
    responses((status = 200, description = "The plugin", body = Plugin)))]
async fn get_plugin(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<Plugin>, ApiError> {
    Ok(ApiJson(s.backend.plugin(&name).await?))
}

/// Unloads a plugin on every node (in-flight calls finish first).
#[utoipa::path(delete, path = "/api/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, example = "url-filter", description = "Plugin name")),
    responses((status = 204, description = "Unloaded")))]
async fn unload_plugin(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.unload_plugin(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a plugin's configuration on every node.
#[utoipa::path(put, path = "/api/v1/plugins/{name}/config", tag = "plugins",
    params(("name" = String, Path, example = "url-filter", description = "Plugin name")),
    request_body(content = Object, description = "The new configuration (a JSON object)"),
    responses((status = 200, description = "Reconfigured", body = Plugin)))]
async fn configure_plugin(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(config): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<ApiJson<Plugin>, ApiError> {
    let config = serde_json::Value::Object(config);
    Ok(ApiJson(s.backend.configure_plugin(&name, config).await?))
}

/// Enables a plugin on every node.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/enable", tag = "plugins",
    params(("name" = String, Path, example = "url-filter", description = "Plugin name")),
    responses((status = 200, description = "Enabled", body = Plugin)))]
async fn enable_plugin(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<Plugin>, ApiError> {
    Ok(ApiJson(s.backend.set_plugin_enabled(&name, true).await?))
}

/// Disables a plugin on every node (its stage is skipped, as if absent).
#[utoipa::path(post, path = "/api/v1/plugins/{name}/disable", tag = "plugins",
    params(("name" = String, Path, example = "url-filter", description = "Plugin name")),
    responses((status = 200, description = "Disabled", body = Plugin)))]
async fn disable_plugin(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<Plugin>, ApiError> {
    Ok(ApiJson(s.backend.set_plugin_enabled(&name, false).await?))
}

/// New instances from the same component on every node; clears a `failed` state.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/reload", tag = "plugins",
    params(("name" = String, Path, example = "url-filter", description = "Plugin name")),
    responses((status = 200, description = "Reloaded", body = Plugin)))]
async fn reload_plugin(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<Plugin>, ApiError> {
    Ok(ApiJson(s.backend.reload_plugin(&name).await?))
}
