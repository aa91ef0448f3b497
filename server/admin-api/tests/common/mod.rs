//! Shared helpers: the app over a fresh MemoryBackend, and a one-call request helper.
#![allow(dead_code)]

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use http_body_util::BodyExt;
use shoal_admin::{AdminConfig, MemoryBackend};
use tower::ServiceExt;

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const READ: &str = "test-read-token-0123456789";

pub fn config() -> AdminConfig {
    AdminConfig {
        admin_token: Some(ADMIN.into()),
        read_token: Some(READ.into()),
        ..AdminConfig::default()
    }
}

pub fn app() -> (Router, Arc<MemoryBackend>) {
    let backend = Arc::new(MemoryBackend::new());
    (shoal_admin::router(backend.clone(), &config()), backend)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with `status` and returns its detail.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/problem+json");
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(
            p["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:shoal:problem:")),
            "{p}"
        );
        assert!(p["title"].is_string(), "{p}");
        let detail = p["detail"].as_str().unwrap_or_default().to_owned();
        assert!(detail.len() > 10, "detail should say what to fix: {p}");
        detail
    }
}

/// Sends one request; `body` is sent as JSON unless `content_type` says otherwise.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some((content_type, bytes)) => req
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes)),
        None => req.body(Body::empty()),
    }
    .expect("request builds");
    let res = app
        .clone()
        .oneshot(req)
        .await
        .expect("router is infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("body collects")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(app: &Router, uri: &str) -> Reply {
    call(app, Method::GET, uri, Some(ADMIN), None).await
}

pub async fn admin(app: &Router, method: Method, uri: &str) -> Reply {
    call(app, method, uri, Some(ADMIN), None).await
}

pub async fn admin_json(app: &Router, method: Method, uri: &str, body: serde_json::Value) -> Reply {
    let bytes = serde_json::to_vec(&body).expect("json");
    call(
        app,
        method,
        uri,
        Some(ADMIN),
        Some(("application/json", bytes)),
    )
    .await
}

/// Smallest byte string the fake backend accepts as a component: `\0asm` + component layer.
pub fn component() -> Vec<u8> {
    let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
    c.extend_from_slice(&[0u8; 32]);
    c
}
