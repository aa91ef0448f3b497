//! Client mistakes are 4xx `application/problem+json` that say what to fix, never 5xx.

mod common;

use axum::http::Method;
use common::*;

const REORDER: &str = "/api/v1/contexts/app/pipeline";

async fn put_raw(app: &axum::Router, content_type: &str, body: &str) -> Reply {
    call(
        app,
        Method::PUT,
        REORDER,
        Some(ADMIN),
        Some((content_type, body.as_bytes().to_vec())),
    )
    .await
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (app, _) = app();
    let detail = put_raw(&app, "application/json", "{\"order\": [")
        .await
        .problem(400);
    assert!(detail.contains("JSON"), "{detail}");
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_are_422() {
    let (app, _) = app();
    let detail = put_raw(&app, "application/json", r#"{"order": "app"}"#)
        .await
        .problem(422);
    assert!(detail.contains("order"), "{detail}");
    let detail = put_raw(&app, "application/json", r#"{"order": [], "force": true}"#)
        .await
        .problem(422);
    assert!(
        detail.contains("force"),
        "names the unknown field: {detail}"
    );
    put_raw(&app, "application/json", "{}").await.problem(422);
}

#[tokio::test]
async fn missing_content_type_is_415() {
    let (app, _) = app();
    let detail = put_raw(&app, "text/plain", r#"{"order": []}"#)
        .await
        .problem(415);
    assert!(detail.contains("application/json"), "{detail}");
}

#[tokio::test]
async fn unknown_route_and_method_are_problems() {
    let (app, _) = app();
    let detail = get(&app, "/api/v1/nothing-here").await.problem(404);
    assert!(detail.contains("/api/openapi.json"), "{detail}");
    admin(&app, Method::PATCH, "/api/v1/plugins")
        .await
        .problem(405);
    get(&app, "/ui/missing.js").await.problem(404);
}
