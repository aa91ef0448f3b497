//! `/api/v1/deployments/*`: farm deployment of artifacts to every node.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, State},
    http::StatusCode,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{body_bytes, AppState};
use crate::{dto::*, error::ApiError, ApiJson, ApiPath};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deployments))
        .routes(routes!(get_deployment, deploy, undeploy))
}

/// Deployed artifacts with their state on each node.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments",
    responses((status = 200, description = "Deployments", body = [Deployment])))]
async fn list_deployments(State(s): State<AppState>) -> Result<ApiJson<Vec<Deployment>>, ApiError> {
    Ok(ApiJson(s.backend.deployments().await?))
}

/// One deployment.
#[utoipa::path(get, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "Artifact name")),
    responses((status = 200, description = "The deployment", body = Deployment)))]
async fn get_deployment(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<Deployment>, ApiError> {
    Ok(ApiJson(s.backend.deployment(&name).await?))
}

/// Deploys (or redeploys) an artifact to every node; deploy hooks may veto it.
#[utoipa::path(put, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "Artifact name, e.g. `shop.wasm`")),
    request_body(content = Upload, content_type = "application/octet-stream", description = "The artifact (not empty)"),
    responses((status = 201, description = "Deployed (per-node state inside)", body = Deployment),
        (status = 413, description = "Artifact larger than the upload limit", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Artifact refused", body = ApiError, content_type = "application/problem+json")))]
async fn deploy(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, ApiJson<Deployment>), ApiError> {
    let artifact = body_bytes(body)?;
    crate::rules::check_artifact_name(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let deployment = s.backend.deploy(&name, artifact.to_vec()).await?;
    Ok((StatusCode::CREATED, ApiJson(deployment)))
}

/// Undeploys an artifact from every node.
#[utoipa::path(delete, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "Artifact name")),
    responses((status = 204, description = "Undeployed")))]
async fn undeploy(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.undeploy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
