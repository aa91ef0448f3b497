//! `/api/v1/deployments/*`: farm deployment of artifacts to every node, everywhere or
//! nowhere. The upload is streamed to the node's staging file (never held whole in memory).

use std::collections::BTreeMap;

use axum::{body::Body, extract::State, http::StatusCode};
use futures::TryStreamExt;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::{dto::*, error::ApiError, ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deployments))
        .routes(routes!(get_deployment, deploy, undeploy))
        .routes(routes!(rollback))
        .routes(routes!(list_rollouts))
}

/// Rollouts coordinated by this node (deploys, undeploys and rollbacks started through it),
/// each with every node's progress: those running and the last one of each name. Poll it
/// while a deploy runs to follow each node (`receiving` with bytes, `staged`, `active`,
/// `failed` with the reason).
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "deployments",
    responses((status = 200, description = "Rollouts, most recent first", body = [Rollout])))]
async fn list_rollouts(State(s): State<AppState>) -> Result<ApiJson<Vec<Rollout>>, ApiError> {
    Ok(ApiJson(s.backend.rollouts().await?))
}

/// Deployed artifacts with their state on each node.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments",
    responses((status = 200, description = "Deployments", body = [Deployment])))]
async fn list_deployments(State(s): State<AppState>) -> Result<ApiJson<Vec<Deployment>>, ApiError> {
    Ok(ApiJson(s.backend.deployments().await?))
}

/// One deployment, with the state of every node (`staging`, `staged`, `active`, `pending`,
/// `failed` with the reason; version and digest each node runs).
#[utoipa::path(get, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "Artifact name")),
    responses((status = 200, description = "The deployment", body = Deployment),
        (status = 404, description = "Not deployed", body = ApiError, content_type = "application/problem+json")))]
async fn get_deployment(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<Deployment>, ApiError> {
    Ok(ApiJson(s.backend.deployment(&name).await?))
}

/// Deploys (or redeploys) an artifact on every node, everywhere or nowhere: each node
/// receives it over the cluster channel, checks size and sha256, test-loads a plugin and
/// asks its deploy hooks; only when every node has staged it do they all activate. Answers
/// when the rollout has ended. Further query parameters `meta.<key>=<value>` become the
/// artifact's metadata (`meta.contexts=/app,/shop` and `meta.config.<key>=<value>` for a
/// plugin); the signature covers them.
#[utoipa::path(put, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$", description = "Artifact name, e.g. `shop.wasm`"), DeployQuery),
    request_body(content = Upload, content_type = "application/octet-stream", description = "The artifact, streamed"),
    responses((status = 201, description = "Active on every node (per-node state inside)", body = Deployment),
        (status = 400, description = "Bad name or query", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The name is being changed by another deploy: `reason` is `deploy-in-progress` and `competing` names that rollout (id, node, version); of two deploys started at once, the smaller rollout id wins", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Artifact larger than `[farm] max_upload_bytes`", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Refused or failed on a node (the message names the node and the reason); nothing was activated", body = ApiError, content_type = "application/problem+json"),
        (status = 503, description = "The node is still converging, or sees too few members", body = ApiError, content_type = "application/problem+json")))]
async fn deploy(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    body: Body,
) -> Result<(StatusCode, ApiJson<Deployment>), ApiError> {
    crate::rules::check_artifact_name(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let request = deploy_request(name, pairs)?;
    let stream = body.into_data_stream().map_err(|e| e.to_string());
    let deployment = s.backend.deploy(request, Box::pin(stream)).await?;
    Ok((StatusCode::CREATED, ApiJson(deployment)))
}

/// The query as a [`DeployRequest`]: `version`, `kind`, `signature`, `meta.<key>`.
// ApiError is the problem+json body itself (what every handler returns); these two are
// not on a hot path.
#[allow(clippy::result_large_err)]
fn deploy_request(name: String, pairs: Vec<(String, String)>) -> Result<DeployRequest, ApiError> {
    let mut r = DeployRequest {
        name,
        ..DeployRequest::default()
    };
    let mut metadata = BTreeMap::new();
    for (k, v) in pairs {
        match k.as_str() {
            "version" => r.version = Some(v),
            "signature" => r.signature = Some(v),
            "kind" => {
                r.kind = match v.as_str() {
                    "plugin" => ArtifactKind::Plugin,
                    "file" => ArtifactKind::File,
                    "application" => ArtifactKind::Application,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "kind `{other}` is unknown: use plugin, file or application"
                        )))
                    }
                }
            }
            _ => match k.strip_prefix("meta.") {
                Some(key) if !key.is_empty() => {
                    metadata.insert(key.to_string(), v);
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                    "query parameter `{k}` is unknown: use version, kind, signature or meta.<key>"
                )))
                }
            },
        }
    }
    r.metadata = metadata;
    Ok(r)
}

/// Undeploys an artifact from every node (everywhere or nowhere).
#[utoipa::path(delete, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "Artifact name")),
    responses((status = 204, description = "Undeployed everywhere"),
        (status = 404, description = "Not deployed", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The name is being changed by another request (`reason: deploy-in-progress`, `competing` names it)", body = ApiError, content_type = "application/problem+json")))]
async fn undeploy(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.undeploy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes the previous version current again on every node (everywhere or nowhere). The
/// previous version is kept until the next deploy of the name.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/rollback", tag = "deployments",
    params(("name" = String, Path, description = "Artifact name")),
    responses((status = 200, description = "Rolled back (per-node state inside)", body = Deployment),
        (status = 404, description = "Not deployed", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "No previous version (`reason: no-previous-version`), or another request is changing the name (`reason: deploy-in-progress`)", body = ApiError, content_type = "application/problem+json")))]
async fn rollback(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<Deployment>, ApiError> {
    Ok(ApiJson(s.backend.rollback(&name).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_becomes_a_request() {
        let pairs = vec![
            ("version".to_string(), "2".to_string()),
            ("kind".to_string(), "file".to_string()),
            ("meta.contexts".to_string(), "/app".to_string()),
        ];
        let r = deploy_request("x".into(), pairs).expect("valid");
        assert_eq!(r.version.as_deref(), Some("2"));
        assert_eq!(r.kind, ArtifactKind::File);
        assert_eq!(r.metadata.get("contexts").map(String::as_str), Some("/app"));
        assert!(deploy_request("x".into(), vec![("kind".into(), "war".into())]).is_err());
        assert!(deploy_request("x".into(), vec![("other".into(), "1".into())]).is_err());
    }
}
