//! The auth matrix over every operation of the OpenAPI document: no token 401 (with
//! WWW-Authenticate), unknown token 401, read token 403 on mutations, admin allowed.

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use shoal_admin::{AdminConfig, MemoryBackend};

/// Every (method, concrete uri) of the spec, path parameters filled with existing things.
fn operations() -> Vec<(Method, String)> {
    let doc: serde_json::Value = serde_json::from_str(&shoal_admin::openapi_json()).expect("json");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let uri = path
            .replace("{context}", "app")
            .replace("{id}", "NO-SUCH-SESSION")
            .replace("{name}", "url-filter");
        for method in item.as_object().expect("item").keys() {
            let method: Method = method.to_uppercase().parse().expect("method");
            ops.push((method, uri.clone()));
        }
    }
    assert!(ops.len() >= 30, "only {} operations", ops.len());
    ops
}

fn public(uri: &str) -> bool {
    uri == "/api/v1/health" || uri == "/api/v1/ready"
}

#[tokio::test]
async fn no_token_is_401_with_challenge_except_probes() {
    let (app, _) = app();
    for (method, uri) in operations() {
        let r = call(&app, method.clone(), &uri, None, None).await;
        if public(&uri) {
            assert_eq!(r.status, StatusCode::OK, "{method} {uri}");
            continue;
        }
        r.problem(401);
        let challenge = r
            .headers
            .get(header::WWW_AUTHENTICATE)
            .expect("WWW-Authenticate");
        assert_eq!(challenge, "Bearer realm=\"shoal-admin\"", "{method} {uri}");
    }
}

#[tokio::test]
async fn unknown_token_is_401_invalid_token() {
    let (app, _) = app();
    for (method, uri) in operations().into_iter().filter(|(_, u)| !public(u)) {
        let r = call(
            &app,
            method.clone(),
            &uri,
            Some("test-admin-token-012345678X"),
            None,
        )
        .await;
        r.problem(401);
        let challenge = r.headers.get(header::WWW_AUTHENTICATE).expect("challenge");
        assert!(
            challenge
                .to_str()
                .is_ok_and(|c| c.contains("invalid_token")),
            "{method} {uri}"
        );
    }
}

#[tokio::test]
async fn read_token_reads_but_cannot_change() {
    let (app, _) = app();
    for (method, uri) in operations() {
        if uri == "/api/v1/events" {
            continue; // endless stream; its auth is covered in events.rs
        }
        let r = call(&app, method.clone(), &uri, Some(READ), None).await;
        if method == Method::GET {
            assert!(
                r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN,
                "{method} {uri} refused the read token: {}",
                r.status
            );
        } else {
            let detail = r.problem(403);
            assert!(detail.contains("admin token"), "{detail}");
        }
    }
}

#[tokio::test]
async fn admin_token_passes_auth_everywhere() {
    let (app, _) = app();
    for (method, uri) in operations() {
        if uri == "/api/v1/events" {
            continue;
        }
        let r = call(&app, method.clone(), &uri, Some(ADMIN), None).await;
        assert!(
            r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            r.status
        );
        // POST /cluster/drain comes first (path order): readiness then answers its declared
        // 503 `draining`.
        let draining_probe = uri == "/api/v1/ready" && r.status == StatusCode::SERVICE_UNAVAILABLE;
        assert!(
            r.status.as_u16() < 500 || draining_probe,
            "{method} {uri}: {}",
            r.status
        );
    }
}

#[tokio::test]
async fn spec_ui_and_docs_need_no_token() {
    let (app, _) = app();
    for uri in [
        "/api/openapi.json",
        "/ui/",
        "/ui/app.js",
        "/ui/app.css",
        "/ui/chart.js",
        "/api/docs",
    ] {
        let r = call(&app, Method::GET, uri, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
    }
    let r = call(&app, Method::GET, "/ui/../Cargo.toml", None, None).await;
    assert!(r.status.is_client_error(), "{}", r.status);
}

#[tokio::test]
async fn node_without_tokens_refuses_data_and_says_how_to_fix() {
    let app = shoal_admin::router(
        std::sync::Arc::new(MemoryBackend::new()),
        &AdminConfig::default(),
    );
    let r = call(
        &app,
        Method::GET,
        "/api/v1/cluster/members",
        Some(ADMIN),
        None,
    )
    .await;
    let detail = r.problem(401);
    assert!(detail.contains("SHOAL_ADMIN_TOKEN"), "{detail}");
    let r = call(&app, Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn config_rejects_short_or_shared_tokens_and_unknown_keys() {
    let short = AdminConfig {
        admin_token: Some("short".into()),
        ..AdminConfig::default()
    };
    assert!(short
        .validate()
        .is_err_and(|e| e.to_string().contains("admin_token")));
    let same = AdminConfig {
        admin_token: Some(ADMIN.into()),
        read_token: Some(ADMIN.into()),
        ..AdminConfig::default()
    };
    assert!(same.validate().is_err());
    assert!(config().validate().is_ok());
    let parsed: Result<AdminConfig, _> =
        serde_json::from_str(r#"{"bind":"127.0.0.1:1","admin_tokn":"x"}"#);
    assert!(parsed.is_err_and(|e| e.to_string().contains("admin_tokn")));
    let default: AdminConfig = serde_json::from_str("{}").expect("all keys optional");
    assert_eq!(default.bind.to_string(), "127.0.0.1:19081");
}
