//! Server-sent events, recent events, metrics, and `serve` on a real socket.

mod common;

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use common::*;
use http_body_util::BodyExt;
use shoal_admin::{MemberState, MemoryBackend};
use tower::ServiceExt;

/// Reads SSE frames until `needle` shows up or 5 s pass.
async fn read_until(body: &mut Body, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(needle) {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await;
        match frame {
            Ok(Some(Ok(f))) => {
                if let Some(data) = f.data_ref() {
                    seen.push_str(&String::from_utf8_lossy(data));
                }
            }
            other => panic!(
                "no `{needle}` within 5 s ({:?}); seen: {seen}",
                other.map(|o| o.is_some())
            ),
        }
    }
    seen
}

#[tokio::test]
async fn sse_streams_membership_and_plugin_events() {
    let (app, backend) = app();
    let req = Request::get("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {READ}"))
        .body(Body::empty())
        .expect("req");
    let res = app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();

    backend
        .set_member_state("node2", MemberState::Gone, "killed")
        .expect("node2");
    let seen = read_until(&mut body, "killed").await;
    assert!(seen.contains("event: member-gone"), "{seen}");
    assert!(seen.contains("id: 1"), "{seen}");

    assert_eq!(
        admin(&app, Method::POST, "/api/v1/plugins/checksum/disable")
            .await
            .status,
        StatusCode::OK
    );
    let seen = read_until(&mut body, "checksum disabled").await;
    assert!(seen.contains("event: plugin"), "{seen}");
}

#[tokio::test]
async fn sse_replays_after_last_event_id_and_needs_a_token() {
    let (app, backend) = app();
    for state in [MemberState::Suspect, MemberState::Alive, MemberState::Gone] {
        backend
            .set_member_state("node3", state, "flap")
            .expect("node3");
    }
    let req = Request::get("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {READ}"))
        .header("last-event-id", "1")
        .body(Body::empty())
        .expect("req");
    let mut body = app
        .clone()
        .oneshot(req)
        .await
        .expect("infallible")
        .into_body();
    let seen = read_until(&mut body, "id: 3").await;
    assert!(
        seen.contains("id: 2") && !seen.contains("id: 1\n"),
        "{seen}"
    );

    call(&app, Method::GET, "/api/v1/events", None, None)
        .await
        .problem(401);
    let recent = get(&app, "/api/v1/events/recent?limit=2").await.json();
    assert_eq!(
        recent.as_array().map(|r| r
            .iter()
            .map(|e| e["seq"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>()),
        Some(vec![2, 3])
    );
    get(&app, "/api/v1/events/recent?limit=0")
        .await
        .problem(400);
}

#[tokio::test]
async fn metrics_are_prometheus_text_for_the_read_token() {
    let (app, _) = app();
    let r = call(&app, Method::GET, "/metrics", Some(READ), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("# TYPE shoal_members gauge")
            && text.contains("shoal_members{state=\"alive\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("shoal_sessions_active{context=\"app\"} 48"),
        "{text}"
    );
}

#[tokio::test]
async fn serve_answers_on_a_socket_and_shuts_down_despite_open_sse() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shoal_admin::serve(
        listener,
        Arc::new(MemoryBackend::new()),
        config(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let client = shoal_testkit::http_client();
    let base = format!("http://{addr}");
    let members: serde_json::Value = client
        .get(format!("{base}/api/v1/cluster/members"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(members.as_array().map(Vec::len), Some(3));
    let sse = client
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);

    let _ = stop_tx.send(());
    let finished = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "serve did not stop with an SSE client connected: {finished:?}"
    );
    drop(sse);
}
