//! The admin API of real nodes: three in-process nodes with channel, HTTP and admin
//! listeners; every check goes over HTTP with bearer tokens.
mod common;

use common::{admin_url, call, cluster, get, http_url, session_cookie, states, ADMIN, READ};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use shoal_node::RunningNode;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_the_admin_api() {
    let nodes = cluster().await;
    let c = shoal_testkit::http_client();

    // Members: three alive, seen from each node.
    for n in &nodes {
        let (s, m) = get(&c, &admin_url(n, "/api/v1/cluster/members"), READ).await;
        assert_eq!(s, StatusCode::OK, "{m}");
        let st = states(&m);
        assert_eq!(st.len(), 3, "{m}");
        assert!(st.iter().all(|(_, s)| s == "alive"), "{m}");
    }

    sessions_across_nodes(&c, &nodes).await;
    // The interceptor stack with live counters (sessions were replicated through it).
    let (_, ch) = get(&c, &admin_url(&nodes[0], "/api/v1/channel"), READ).await;
    let layer = &ch["interceptors"][0];
    assert_eq!(layer["name"], "Throughput", "{ch}");
    assert!(
        layer["counters"]["tx_messages"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{ch}"
    );
    let (_, peers) = get(&c, &admin_url(&nodes[0], "/api/v1/channel/peers"), READ).await;
    assert_eq!(peers.as_array().map(Vec::len), Some(2), "{peers}");
    assert!(
        peers[0]["bytes_sent"].as_u64().is_some_and(|n| n > 0),
        "{peers}"
    );

    plugins_across_nodes(&c, &nodes).await;
    auth_matrix(&c, &nodes[0]).await;
    metrics_parse(&c, &nodes[1]).await;

    // node3 leaves: the others list it as gone, with the reason.
    let mut nodes = nodes;
    let third = nodes.pop().expect("node3");
    third.shutdown().await;
    for n in &nodes {
        let url = admin_url(n, "/api/v1/cluster/members");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, m) = get(&c, &url, READ).await;
            let gone = m
                .as_array()
                .expect("array")
                .iter()
                .find(|x| x["name"] == "node3" && x["state"] == "gone")
                .cloned();
            if let Some(g) = gone {
                assert!(g["reason"].as_str().is_some_and(|r| !r.is_empty()), "{g}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node3 not gone on {}: {m}",
                n.channel.local().name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (_, events) = get(&c, &admin_url(&nodes[0], "/api/v1/events/recent"), READ).await;
    assert!(
        events
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["kind"] == "member-gone" && e["subject"] == "node3"),
        "{events}"
    );
    for n in nodes {
        n.shutdown().await;
    }
}

/// Sessions made on node1 are listed and expired through node2's admin API.
async fn sessions_across_nodes(c: &Client, nodes: &[RunningNode]) {
    let mut cookies = Vec::new();
    for _ in 0..3 {
        let r = c
            .get(http_url(&nodes[0], "/app/counter"))
            .send()
            .await
            .expect("counter");
        let status = r.status();
        let cookie = session_cookie(&r);
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            r.text().await.unwrap_or_default()
        );
        cookies.push(cookie);
    }
    let list = admin_url(&nodes[1], "/api/v1/contexts/app/sessions");
    let (s, page) = get(c, &list, READ).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 3, "{page}");
    let first = &page["items"][0];
    assert_eq!(first["primary"], "node1", "{page}");

    // One session with its attribute, then expire it through node2.
    let cookie = &cookies[0];
    let full = cookie.split_once('=').expect("cookie value").1;
    let id = full.split('.').next().expect("id");
    let (s, detail) = get(
        c,
        &admin_url(&nodes[1], &format!("/api/v1/contexts/app/sessions/{id}")),
        READ,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    assert!(
        detail["attributes"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{detail}"
    );
    let (s, body) = call(
        c,
        reqwest::Method::DELETE,
        &admin_url(&nodes[1], &format!("/api/v1/contexts/app/sessions/{id}")),
        ADMIN,
    )
    .await;
    assert!(s.is_success(), "{s} {body}");
    let r = c
        .get(http_url(&nodes[0], "/app/get?key=counter"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.expect("body").contains("no-session"));
    let (_, page) = get(c, &list, READ).await;
    assert_eq!(page["total"], 2, "{page}");

    // Statistics count from the last reset.
    let stats = admin_url(&nodes[0], "/api/v1/contexts/app/stats");
    let (_, st) = get(c, &stats, READ).await;
    assert_eq!(st["sessions_created"], 3, "{st}");
    let (s, _) = call(c, reqwest::Method::POST, &format!("{stats}/reset"), ADMIN).await;
    assert!(s.is_success());
    let (_, after) = get(c, &stats, READ).await;
    assert_eq!(after["sessions_created"], 0, "{after}");
    assert_eq!(after["sessions_active"], 2, "{after}");
    assert!(
        after["since_ms"].as_u64() > st["since_ms"].as_u64(),
        "{after}"
    );

    let (s, counts) = get(c, &admin_url(&nodes[2], "/api/v1/sessions/counts"), READ).await;
    assert_eq!(s, StatusCode::OK);
    let node1 = counts
        .as_array()
        .expect("array")
        .iter()
        .find(|x| x["node"] == "node1")
        .cloned()
        .expect("node1 row");
    assert_eq!(node1["primary"], 2, "{counts}");
}

/// A plugin loaded via node1 is listed on node3; disabled via node2, it is disabled on node1.
async fn plugins_across_nodes(c: &Client, nodes: &[RunningNode]) {
    let path = shoal_plugin_host::examples::component_path("url-filter")
        .unwrap_or_else(|why| panic!("the url-filter example plugin: {why}"));
    let bytes = std::fs::read(&path).expect("component bytes");
    let r = c
        .post(admin_url(
            &nodes[0],
            "/api/v1/plugins?name=static-filter&world=url-filter&attach=app",
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("load");
    let status = r.status();
    let loaded: Value = r.json().await.expect("plugin json");
    assert!(status.is_success(), "{status} {loaded}");
    assert_eq!(
        loaded["nodes"].as_array().map(Vec::len),
        Some(3),
        "{loaded}"
    );

    let (_, list) = get(c, &admin_url(&nodes[2], "/api/v1/plugins"), READ).await;
    let p = list
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["name"] == "static-filter")
        .cloned();
    assert_eq!(p.expect("listed on node3")["state"], "enabled", "{list}");

    // node1's event stream (SSE) reports the change made through node2.
    let mut events = c
        .get(admin_url(&nodes[0], "/api/v1/events"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("SSE stream");
    assert_eq!(events.status(), StatusCode::OK);
    let (s, body) = call(
        c,
        reqwest::Method::POST,
        &admin_url(&nodes[1], "/api/v1/plugins/static-filter/disable"),
        ADMIN,
    )
    .await;
    assert!(s.is_success(), "{s} {body}");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains("static-filter disabled") {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no plugin event on node1's stream ({other:?}); got: {seen}"),
        }
    }
    assert!(seen.contains("event: plugin"), "{seen}");
    let (_, p) = get(
        c,
        &admin_url(&nodes[0], "/api/v1/plugins/static-filter"),
        READ,
    )
    .await;
    assert_eq!(p["state"], "disabled", "{p}");
    let (_, ctx) = get(c, &admin_url(&nodes[0], "/api/v1/contexts/app"), READ).await;
    let stage = ctx["pipeline"]
        .as_array()
        .expect("pipeline")
        .iter()
        .find(|s| s["name"] == "static-filter")
        .cloned();
    assert_eq!(
        stage.expect("stage in the pipeline")["enabled"],
        false,
        "{ctx}"
    );
}

async fn auth_matrix(c: &Client, n: &RunningNode) {
    let r = c
        .get(admin_url(n, "/api/v1/cluster/members"))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        c,
        reqwest::Method::DELETE,
        &admin_url(n, "/api/v1/contexts/app/sessions"),
        READ,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        c,
        reqwest::Method::POST,
        &admin_url(n, "/api/v1/contexts/app/stats/reset"),
        READ,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = c
        .get(admin_url(n, "/api/v1/ready"))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "ready needs no token and the node is ready"
    );
}

/// Every line is a comment or `name{labels} value`; the expected families are there.
async fn metrics_parse(c: &Client, n: &RunningNode) {
    let r = c
        .get(admin_url(n, "/metrics"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.expect("text");
    for line in text.lines().filter(|l| !l.is_empty()) {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "value of {line}");
        let name = series.split('{').next().unwrap_or("");
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':'),
            "metric name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "labels of {line}"
            );
        }
    }
    for family in [
        "shoal_members",
        "shoal_sessions_active",
        "shoal_channel_bytes_sent_total",
        "shoal_manager_messages_sent_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    assert!(
        text.contains("shoal_sessions_created_total{context=\"app\"}"),
        "{text}"
    );
}
