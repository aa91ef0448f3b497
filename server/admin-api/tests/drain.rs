//! `POST /api/v1/cluster/drain` over the in-memory backend: admin token required, 202 with
//! the drain status, 409 on a second call, and the drain visible where operators and
//! balancers look (readiness 503 `draining`, health `draining`, `GET /cluster/drain`).

mod common;

use axum::http::{Method, StatusCode};
use common::*;

const DRAIN: &str = "/api/v1/cluster/drain";

#[tokio::test]
async fn drain_needs_the_admin_token() {
    let (app, backend) = app();
    call(&app, Method::POST, DRAIN, None, None)
        .await
        .problem(401);
    let r = call(&app, Method::POST, DRAIN, Some(READ), None).await;
    let detail = r.problem(403);
    assert!(detail.contains("admin token"), "{detail}");
    assert!(
        !backend.is_draining(),
        "a refused call must not start a drain"
    );
    // The read token may follow a drain.
    let r = call(&app, Method::GET, DRAIN, Some(READ), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["phase"], "serving");
}

#[tokio::test]
async fn drain_answers_202_then_409() {
    let (app, backend) = app();
    let before = get(&app, DRAIN).await.json();
    assert_eq!(before["draining"], false);
    assert_eq!(before["node"], "node1");
    assert!(before["trigger"].is_null(), "{before}");

    let r = admin(&app, Method::POST, DRAIN).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let started = r.json();
    assert_eq!(started["draining"], true);
    assert_eq!(started["trigger"], "api");
    assert!(
        started["since_ms"].as_u64().is_some_and(|t| t > 0),
        "{started}"
    );
    let steps = started["steps"].as_array().expect("steps");
    assert!(
        steps
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.contains("balancer"))),
        "the answer says the balancers are told: {started}"
    );
    assert!(backend.is_draining());

    let detail = admin(&app, Method::POST, DRAIN).await.problem(409);
    assert!(
        detail.contains("already") || detail.contains("since"),
        "{detail}"
    );
    assert_eq!(
        get(&app, DRAIN).await.json()["since_ms"],
        started["since_ms"]
    );
}

#[tokio::test]
async fn a_draining_node_is_not_ready_but_alive_and_keeps_answering() {
    let (app, backend) = app();
    let ready = call(&app, Method::GET, "/api/v1/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");

    assert_eq!(
        admin(&app, Method::POST, DRAIN).await.status,
        StatusCode::ACCEPTED
    );
    let ready = call(&app, Method::GET, "/api/v1/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json();
    assert_eq!(body["status"], "draining");
    assert_eq!(body["ready"], false);
    assert!(
        body["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["name"] == "drain" && c["ok"] == false),
        "{body}"
    );
    let health = call(&app, Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(
        health.status,
        StatusCode::OK,
        "liveness stays up while draining"
    );
    assert_eq!(health.json()["status"], "draining");
    // The in-memory cluster only records the drain: the rest still answers.
    assert_eq!(
        get(&app, "/api/v1/cluster/members").await.status,
        StatusCode::OK
    );
    let events = get(&app, "/api/v1/events/recent").await.json();
    assert!(
        events
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "drain"),
        "{events}"
    );
    backend.cancel_drain();
    assert_eq!(get(&app, DRAIN).await.json()["phase"], "serving");
}
