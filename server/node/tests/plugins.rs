//! Every plugin extension point exercised by a real component (the examples in
//! `plugins/examples`) through running nodes: the Wasm bench app, a URL filter, an auth
//! valve, a channel interceptor, misbehaving valves under load, bad loads, hot reload.
mod common;
mod plugins_support;

use common::wait_for;
use plugins_support::{contexts, example, messages, metric, nodes, shutdown, Browser};
use shoal_node::plugins::{ControlOp, PolicyName};
use std::time::Duration;

fn app() -> shoal_node::plugins::PluginEntry {
    let mut e = example("app", "bench-app", &[]);
    e.contexts = vec!["/app".into()];
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wasm_bench_app_serves_the_contract_and_its_sessions_replicate() {
    let n = nodes(
        contexts(&["/app"], 1800),
        vec![vec![app()], vec![app()]],
        true,
    )
    .await;
    let mut b = Browser::new();
    let (s, body) = b.get(&n[0], "/app/get?key=counter").await;
    assert_eq!(
        (s, body.starts_with("error=no-session")),
        (404, true),
        "{body}"
    );
    assert!(b.cookie.is_none(), "get must not create a session");
    for i in 1..=3 {
        let (s, body) = b.get(&n[0], "/app/counter").await;
        assert_eq!(s, 200, "{body}");
        assert!(body.starts_with(&format!("counter={i} ")), "{body}");
        assert!(body.trim_end().ends_with("node=node1"), "{body:?}");
    }
    let (s, body) = b.get(&n[0], "/app/set?key=k&size=10").await;
    assert_eq!(s, 200, "{body}");
    // Synchronous replication: the other node has the session as soon as node1 answered.
    let (s, body) = b.get(&n[1], "/app/get?key=counter").await;
    assert!(
        s == 200 && body.starts_with("key=counter value=3 "),
        "{s} {body}"
    );
    let (s, body) = b.get(&n[1], "/app/get?key=k").await;
    assert!(
        s == 200 && body.contains("size=10") && body.contains("intact=true"),
        "{body}"
    );
    let (s, body) = b.get(&n[1], "/app/counter").await;
    assert!(
        s == 200 && body.starts_with("counter=4 ") && body.trim_end().ends_with("node=node2"),
        "{body}"
    );
    let (s, body) = b.get(&n[1], "/app/stats").await;
    assert!(
        s == 200 && body.contains("activeSessions=1 ") && body.contains("members=1"),
        "{body}"
    );
    let (s, body) = b.get(&n[1], "/app/invalidate").await;
    assert_eq!((s, body.trim_end()), (200, "invalidated=true node=node2"));
    let (s, body) = b.get(&n[0], "/app/get?key=counter").await;
    assert_eq!(
        (s, body.starts_with("error=no-session")),
        (404, true),
        "{body}"
    );
    // The Wasm app answered, not the native one behind it.
    assert!(metric(&n[0], "app", "requests") >= 5);
    assert!(metric(&n[1], "app", "requests") >= 4);
    shutdown(n).await;
}

/// A session used only through filtered URLs sends no ACCESSED, although the same use
/// through an unfiltered URL does (`max_inactive_secs` 4: ACCESSED due after 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn url_filter_plugin_prevents_replication() {
    let filter = || example("static", "url-filter", &[("globs", "/app/static/*")]);
    let n = nodes(
        contexts(&["/app"], 4),
        vec![vec![app(), filter()], vec![app(), filter()]],
        true,
    )
    .await;
    let mut b = Browser::new();
    let (s, _) = b.get(&n[0], "/app/counter").await;
    assert_eq!(s, 200);
    let accessed = |i: usize| messages(&n[i], "/app", "session_accessed", i == 0);
    let started = tokio::time::Instant::now();
    let mut filtered = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let (s, body) = b.get(&n[0], "/app/static/page.html").await;
        assert_eq!(s, 404, "{body}"); // the bench app's unknown path, session looked up
        filtered += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accessed(0), 0, "a filtered request sent ACCESSED");
    let stats = n[0].http.registry().service("/app").expect("ctx").stats();
    assert!(stats.filtered_requests >= filtered, "{stats:?}");
    // The same session through an unfiltered URL: due for ACCESSED at once.
    let (s, body) = b.get(&n[0], "/app/get?key=none").await;
    assert_eq!(s, 404, "{body}");
    assert!(accessed(0) >= 1, "an unfiltered request sent no ACCESSED");
    wait_for(Duration::from_secs(5), || accessed(1) >= 1)
        .await
        .expect("node2 receives ACCESSED");
    // Disabled at runtime: static URLs replicate again (the registry is asked per request).
    for node in &n {
        let op = ControlOp::SetEnabled {
            name: "static".into(),
            enabled: false,
        };
        node.plugins.apply_local(&op).expect("disable");
    }
    let before = stats.filtered_requests;
    b.get(&n[0], "/app/static/page.html").await;
    let after = n[0].http.registry().service("/app").expect("ctx").stats();
    assert_eq!(
        after.filtered_requests,
        before + 1 - 1 + (filtered - filtered),
        "{after:?}"
    );
    shutdown(n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_valve_short_circuits_without_token() {
    let mut auth = example("auth", "auth-valve", &[("token", "s3cret")]);
    auth.contexts = vec!["/app".into()];
    let n = nodes(contexts(&["/app"], 1800), vec![vec![auth, app()]], true).await;
    let mut b = Browser::new();
    let (s, body, h) = b.get_full(&n[0], "/app/counter", &[]).await;
    assert_eq!(s, 401, "{body}");
    assert!(h.get("www-authenticate").is_some(), "{h:?}");
    assert!(b.cookie.is_none(), "a rejected request created a session");
    let (s, _, _) = b
        .get_full(&n[0], "/app/counter", &[("authorization", "Bearer wrong")])
        .await;
    assert_eq!(s, 401);
    let (s, body, h) = b
        .get_full(&n[0], "/app/counter", &[("authorization", "Bearer s3cret")])
        .await;
    assert!(s == 200 && body.starts_with("counter=1 "), "{s} {body}");
    assert_eq!(
        h.get("x-shoal-auth").and_then(|v| v.to_str().ok()),
        Some("passed")
    );
    assert_eq!(metric(&n[0], "auth", "rejected"), 2);
    assert_eq!(metric(&n[0], "auth", "passed"), 1);
    shutdown(n).await;
}

/// Both nodes run the checksum interceptor: sessions replicate through it (each message
/// sealed on send, verified and stripped on receipt).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checksum_interceptor_rewrites_messages_between_nodes() {
    let crc = || example("crc", "checksum-interceptor", &[]);
    let n = nodes(
        contexts(&["/app"], 1800),
        vec![vec![crc(), app()], vec![crc(), app()]],
        true,
    )
    .await;
    let verified_before = metric(&n[1], "crc", "verified");
    let mut b = Browser::new();
    b.get(&n[0], "/app/counter").await;
    let (s, body) = b.get(&n[1], "/app/counter").await;
    assert!(s == 200 && body.starts_with("counter=2 "), "{s} {body}");
    assert!(metric(&n[1], "crc", "verified") > verified_before);
    assert!(metric(&n[0], "crc", "sent") >= 1);
    assert_eq!(
        metric(&n[0], "crc", "dropped") + metric(&n[1], "crc", "dropped"),
        0
    );
    shutdown(n).await;
}

/// node1 runs the interceptor, node2 does not: what node2 sends has no checksum, so node1
/// drops it (and counts it); the session created on node2 never reaches node1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checksum_interceptor_drops_messages_from_a_node_without_it() {
    let crc = example("crc", "checksum-interceptor", &[]);
    let n = nodes(
        contexts(&["/app"], 1800),
        vec![vec![crc, app()], vec![app()]],
        false,
    )
    .await;
    let mut b = Browser::new();
    let dropped = metric(&n[0], "crc", "dropped");
    let created = messages(&n[0], "/app", "session_created", false);
    // Asynchronous for node2's point of view: node1 never acknowledges, so the request
    // may answer 503 (replication failed) or 200; either way node1 must drop it.
    let _ = b.get(&n[1], "/app/counter").await;
    wait_for(Duration::from_secs(10), || {
        metric(&n[0], "crc", "dropped") > dropped
    })
    .await
    .expect("node1 counts the unsealed message as dropped");
    assert_eq!(messages(&n[0], "/app", "session_created", false), created);
    shutdown(n).await;
}
