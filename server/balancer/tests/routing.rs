//! Stickiness, spreading of new sessions, headers and the status endpoint.

mod common;

use std::collections::HashMap;

use common::*;
use hyper::{Method, StatusCode};
use shoal_balancer::{
    Backend, BackendStatus, Balancer, BalancerConfig, BalancerError, BalancerStats,
};
use shoal_testkit::poll;

#[tokio::test]
async fn sticky_cookie_keeps_every_request_on_its_node() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();

    // Open sessions until one lands on node2, then hammer it.
    let mut cookie = None;
    for _ in 0..6 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("new session");
        if a.backend.as_deref() == Some("node2") {
            cookie = a.cookie.clone();
            break;
        }
    }
    let cookie = cookie.expect("round-robin reached node2 within 6 new sessions");
    for i in 2..=101u64 {
        let a = http
            .get(lb.addr, "/app/counter", Some(&cookie))
            .await
            .expect("sticky request");
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(
            a.backend.as_deref(),
            Some("node2"),
            "request {i} left its node: {a:?}"
        );
        assert_eq!(a.field("counter"), Some(i.to_string().as_str()));
        assert_eq!(a.set_cookie, None, "no rewrite while the node is alive");
    }
}

#[tokio::test]
async fn session_header_and_path_parameter_are_sticky_too() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    for _ in 0..10 {
        let a = http
            .send(
                Method::GET,
                lb.addr,
                "/app/echo",
                &[("x-shoal-session", "ABC.node3")],
                "",
            )
            .await
            .expect("header request");
        assert_eq!(a.backend.as_deref(), Some("node3"));
        let a = http
            .get(lb.addr, "/app/echo;jsessionid=ABC.node1", None)
            .await
            .expect("path request");
        assert_eq!(a.backend.as_deref(), Some("node1"));
    }
}

#[tokio::test]
async fn new_sessions_spread_over_all_nodes() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for _ in 0..30 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("new session");
        let route = a.backend.clone().expect("backend header");
        let cookie = a.cookie.clone().expect("a new session sets a cookie");
        assert!(
            cookie.ends_with(&format!(".{route}")),
            "{cookie} issued by {route}"
        );
        *per_node.entry(route).or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    // Sequential requests have no outstanding load, so round-robin decides: 10 each.
    assert!(per_node.values().all(|&n| n == 10), "{per_node:?}");
}

#[tokio::test]
async fn forwarded_for_is_added_and_unknown_route_spreads() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    let a = http
        .send(
            Method::GET,
            lb.addr,
            "/app/echo",
            &[("x-forwarded-for", "10.0.0.9")],
            "",
        )
        .await
        .expect("echo");
    assert_eq!(a.field("xff"), Some("10.0.0.9,"), "body: {}", a.body);
    assert!(
        a.body.contains("xff=10.0.0.9, 127.0.0.1"),
        "body: {}",
        a.body
    );
    let a = http
        .get(lb.addr, "/app/echo", Some("JSESSIONID=X.nodeX"))
        .await
        .expect("unknown route");
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.backend.is_some());
}

#[tokio::test]
async fn status_endpoint_reports_backends_as_json() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    for _ in 0..3 {
        http.get(lb.addr, "/app/counter", None)
            .await
            .expect("request");
    }
    let a = http
        .get(lb.addr, "/balancer/status", None)
        .await
        .expect("status");
    assert_eq!(a.status, StatusCode::OK);
    let stats: BalancerStats = serde_json::from_str(&a.body).expect("status is BalancerStats JSON");
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.backends.len(), 3);
    assert!(stats
        .backends
        .iter()
        .all(|b| b.status == BackendStatus::Up && b.requests == 1));
    assert_eq!(stats, lb.handle.stats());
    let post = http
        .send(Method::POST, lb.addr, "/balancer/status", &[], "")
        .await
        .expect("post");
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn no_backend_gives_503_with_advice() {
    let lb = start_balancer(BalancerConfig::default()).await;
    let a = HttpClient::new()
        .get(lb.addr, "/app/counter", None)
        .await
        .expect("answer");
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("no backend is available"), "{}", a.body);
}

#[test]
fn bad_config_names_the_entry() {
    let bad = |backends: Vec<Backend>| {
        let config = BalancerConfig {
            backends,
            ..BalancerConfig::default()
        };
        Balancer::new(config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = bad(vec![
        Backend::new("node1", "127.0.0.1:1"),
        Backend::new("node2", "nope:port"),
    ]);
    assert!(
        e.contains("backend #1") && e.contains("node2") && e.contains("nope:port"),
        "{e}"
    );
    let e = bad(vec![Backend::new("node1", "127.0.0.1")]);
    assert!(e.contains("explicit port"), "{e}");
    let e = bad(vec![Backend::new("node.1", "127.0.0.1:1")]);
    assert!(e.contains("route must"), "{e}");
    let e = bad(vec![
        Backend::new("n", "127.0.0.1:1"),
        Backend::new("n", "127.0.0.1:2"),
    ]);
    assert!(e.contains("configured twice"), "{e}");
    let e = bad(vec![Backend::new("n", "https://127.0.0.1:1")]);
    assert!(e.contains("https") && e.contains("backend_ca"), "{e}");
}

#[test]
fn config_parses_from_toml_and_rejects_unknown_keys() {
    let text = r#"
        listen = "127.0.0.1:18080"
        health_interval_ms = 250
        [[backends]]
        route = "node1"
        addr = "http://127.0.0.1:18081"
        [[backends]]
        route = "node2"
        addr = "127.0.0.1:18082"
        health_path = "/health"
    "#;
    let config: BalancerConfig = toml::from_str(text).expect("valid toml");
    assert_eq!(config.health_interval.as_millis(), 250);
    assert_eq!(config.cookie_name, "JSESSIONID");
    assert_eq!(config.backends[1].health_path.as_deref(), Some("/health"));
    config.validate().expect("valid config");
    let err = toml::from_str::<BalancerConfig>("helth_interval_ms = 1").expect_err("typo rejected");
    assert!(err.to_string().contains("helth_interval_ms"), "{err}");
    let zero = BalancerConfig {
        fail_threshold: 0,
        ..BalancerConfig::default()
    };
    assert!(matches!(
        zero.validate(),
        Err(BalancerError::InvalidSetting {
            key: "fail_threshold",
            ..
        })
    ));
}

#[test]
fn example_config_file_is_the_default_plus_three_nodes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/balancer.example.toml");
    let config = BalancerConfig::load(std::path::Path::new(path)).expect("example loads");
    let routes: Vec<&str> = config.backends.iter().map(|b| b.route.as_str()).collect();
    assert_eq!(routes, ["node1", "node2", "node3"]);
    let defaults = BalancerConfig {
        backends: config.backends.clone(),
        ..BalancerConfig::default()
    };
    assert_eq!(config, defaults, "the example documents the defaults");
}

#[tokio::test]
async fn new_sessions_avoid_the_node_with_requests_outstanding() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    let mut hanging = Vec::new();
    for _ in 0..3 {
        let (http, addr) = (http.clone(), lb.addr);
        hanging.push(tokio::spawn(async move {
            http.get(addr, "/app/hang", Some("JSESSIONID=A.node1"))
                .await
        }));
    }
    assert!(poll(std::time::Duration::from_secs(5), || nodes[0].hits() == 3).await);
    for _ in 0..10 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("new session");
        assert_ne!(
            a.backend.as_deref(),
            Some("node1"),
            "least-outstanding ignored"
        );
    }
    hanging.iter().for_each(|h| h.abort());
}

#[tokio::test]
async fn large_bodies_stream_through() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let body = "x".repeat(300 * 1024);
    let a = HttpClient::new()
        .send(Method::POST, lb.addr, "/app/echo", &[], &body)
        .await
        .expect("post");
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.field("body"), Some("307200"), "{}", a.body);
}

#[test]
fn config_file_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lb.toml");
    std::fs::write(&path, "fail_threshold = \"two\"\n").expect("write");
    let err = BalancerConfig::load(&path)
        .expect_err("bad type")
        .to_string();
    assert!(
        err.contains("lb.toml") && err.contains("fail_threshold"),
        "{err}"
    );
    let err = BalancerConfig::load(&dir.path().join("missing.toml"))
        .expect_err("missing")
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_stops_listening() {
    let (_store, nodes) = three_nodes().await;
    let balancer = Balancer::new(config_for(&nodes)).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        balancer
            .serve(listener, async move { drop(stopped.await) })
            .await
    });
    let http = HttpClient::new();
    let slow = {
        let http = http.clone();
        tokio::spawn(async move { http.get(addr, "/app/slow", None).await })
    };
    assert!(
        poll(std::time::Duration::from_secs(5), || nodes
            .iter()
            .map(|n| n.hits())
            .sum::<u64>()
            == 1)
        .await
    );
    drop(stop);
    let a = slow
        .await
        .expect("task")
        .expect("in-flight request answered");
    assert_eq!(a.field("slow"), Some("done"));
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "serve returned Ok after shutdown: {result:?}"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}
