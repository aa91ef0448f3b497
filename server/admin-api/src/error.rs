//! [`ApiError`]: every error of the API, answered as `application/problem+json` (RFC 9457).
//!
//! Extractor rejections (bad JSON, unknown fields, wrong types, bad query or path) are turned
//! into problems too, through the [`ApiJson`], [`ApiQuery`] and [`ApiPath`] wrappers, so a
//! client mistake is always a 4xx that says what to fix, never a 5xx or a plain-text body.

use axum::{
    extract::{
        rejection::{JsonRejection, PathRejection, QueryRejection},
        FromRequest, FromRequestParts,
    },
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::backend::BackendError;

/// Media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// URI reference identifying the problem type, e.g. `urn:shoal:problem:not-found`.
    #[serde(rename = "type")]
    #[schema(example = "urn:shoal:problem:not-found")]
    pub kind: String,
    /// Short summary of the problem type.
    #[schema(example = "Not Found")]
    pub title: String,
    /// HTTP status code.
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong and what to do about it.
    #[schema(example = "no context named `shop2` (known: app, shop)")]
    pub detail: String,
    /// The request path that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Machine-readable reason of a 409 on a deployment (beside the text in `detail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::dto::ConflictReason>,
    /// The rollout holding the name, with `reason: deploy-in-progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub competing: Option<crate::dto::CompetingDeploy>,
    /// Extra header for 401 (`WWW-Authenticate`); not part of the body.
    #[serde(skip)]
    #[schema(ignore)]
    pub(crate) www_authenticate: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:shoal:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            reason: None,
            competing: None,
            www_authenticate: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
    }

    /// Sets `instance` (the request path) on the problem.
    pub fn at(mut self, path: &str) -> Self {
        self.instance = Some(path.to_owned());
        self
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let detail = e.to_string();
        match e {
            BackendError::NotFound { .. } => Self::not_found(detail),
            BackendError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", detail),
            BackendError::DeployConflict(c) => {
                let mut e = Self::new(StatusCode::CONFLICT, "conflict", detail);
                e.reason = Some(c.reason);
                e.competing = c.competing;
                e
            }
            BackendError::Invalid(_) => Self::unprocessable(detail),
            BackendError::TooLarge(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail)
            }
            BackendError::Unavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
            }
            BackendError::Internal(_) => {
                tracing::error!(error = %detail, "admin backend failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("{detail} (this is a bug in shoal; the node log has details)"),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let challenge = self.www_authenticate;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(value) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let detail = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON with `Content-Type: application/json`".to_owned()
            }
            _ => format!(
                "{}; fix the JSON body to match the schema in /api/openapi.json",
                r.body_text()
            ),
        };
        let slug = if status == StatusCode::UNPROCESSABLE_ENTITY {
            "invalid"
        } else {
            "bad-request"
        };
        Self::new(status, slug, detail)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(format!(
            "{}; see the parameters in /api/openapi.json",
            r.body_text()
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

/// `axum::Json` whose rejection is an [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejection is an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::{CompetingDeploy, ConflictReason, DeployConflict};

    #[test]
    fn a_deploy_conflict_is_a_409_with_a_typed_reason_beside_the_text() {
        let e = ApiError::from(BackendError::DeployConflict(DeployConflict {
            reason: ConflictReason::DeployInProgress,
            competing: Some(CompetingDeploy {
                deploy: "n1/7.3".into(),
                node: "n1".into(),
                version: Some("2".into()),
            }),
            detail: "deployment \"app\" is being changed".into(),
        }));
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["status"], 409);
        assert_eq!(v["type"], "urn:shoal:problem:conflict");
        assert_eq!(v["reason"], "deploy-in-progress");
        assert_eq!(v["competing"]["node"], "n1");
        assert_eq!(v["competing"]["version"], "2");
        assert_eq!(v["detail"], "deployment \"app\" is being changed");
        // Other problems carry neither member.
        let v = serde_json::to_value(ApiError::not_found("x")).expect("json");
        assert!(
            v.get("reason").is_none() && v.get("competing").is_none(),
            "{v}"
        );
    }
}
