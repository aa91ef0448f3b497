//! Killing, hanging and recovering backends.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use shoal_balancer::{BackendStatus, BalancerConfig};
use shoal_testkit::poll;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_sessions_continue_elsewhere_within_one_second() {
    let (_store, mut nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let report = load::kill_under_load(lb.addr, &mut nodes, "node2").await;
    println!("built-in balancer failover: {report}");
    report.assert_ok();
    let stats = lb.handle.stats();
    let node2 = stats
        .backends
        .iter()
        .find(|b| b.route == "node2")
        .expect("node2 listed");
    assert_eq!(node2.status, BackendStatus::Down);
}

#[tokio::test]
async fn post_in_flight_on_a_dying_node_gets_502_and_is_not_resent() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    let addr = lb.addr;
    let post = tokio::spawn(async move {
        let cookie = [("cookie", "JSESSIONID=ABC.node1")];
        http.send(Method::POST, addr, "/app/hang", &cookie, "order=1")
            .await
    });
    assert!(
        poll(Duration::from_secs(5), || nodes[0]
            .state
            .posts
            .load(Ordering::SeqCst)
            == 1)
        .await
    );
    nodes[0].kill();
    let a = post.await.expect("task").expect("the balancer answers");
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    assert!(
        a.body.contains("not resent") && a.body.contains("node1"),
        "{}",
        a.body
    );
    assert_eq!(nodes[1].state.posts.load(Ordering::SeqCst), 0);
    assert_eq!(nodes[2].state.posts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn get_in_flight_on_a_dying_node_is_resent() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    let addr = lb.addr;
    // /app/hang never answers on a live node either, so send it with a path that the
    // other nodes answer: the fake nodes only hang on node1 because only node1 is killed.
    let get = tokio::spawn(async move {
        http.get(addr, "/app/hang", Some("JSESSIONID=ABC.node1"))
            .await
    });
    assert!(poll(Duration::from_secs(5), || nodes[0].hits() == 1).await);
    nodes[0].kill();
    // The resent GET hangs on the next node too; what matters is that it was resent.
    assert!(
        poll(Duration::from_secs(5), || nodes[1].hits() + nodes[2].hits()
            == 1)
        .await
    );
    get.abort();
}

#[tokio::test]
async fn request_to_a_refused_node_is_redispatched_unless_disabled() {
    let (_store, mut nodes) = three_nodes().await;
    let dead = nodes.remove(0).kill_and_wait().await;
    let mut backends = vec![shoal_balancer::Backend::new("node1", dead.to_string())];
    backends.extend(nodes.iter().map(FakeNode::backend));
    let config = BalancerConfig {
        backends,
        ..BalancerConfig::default()
    };
    let lb = start_balancer(config.clone()).await;
    let http = HttpClient::new();
    let cookie = [("cookie", "JSESSIONID=ABC.node1")];
    // Nothing reached node1, so even a POST may go elsewhere.
    let a = http
        .send(Method::POST, lb.addr, "/app/echo", &cookie, "x")
        .await
        .expect("answer");
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_ne!(a.backend.as_deref(), Some("node1"));

    let strict = start_balancer(BalancerConfig {
        redispatch: false,
        ..config
    })
    .await;
    let a = http
        .send(Method::POST, strict.addr, "/app/echo", &cookie, "x")
        .await
        .expect("answer");
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.body);
    assert_eq!(
        nodes
            .iter()
            .map(|n| n.state.posts.load(Ordering::SeqCst))
            .sum::<u64>(),
        1
    );
}

#[tokio::test]
async fn health_checks_take_a_sick_node_out_and_bring_a_recovered_one_back() {
    let (store, mut nodes) = three_nodes().await;
    let config = BalancerConfig {
        health_interval: Duration::from_millis(100),
        ..config_for(&nodes)
    };
    let lb = start_balancer(config).await;
    let status = |route: &str| {
        lb.handle
            .stats()
            .backends
            .into_iter()
            .find(|b| b.route == route)
            .map(|b| b.status)
    };
    // Probes are marked, so a valve plugin on the health path can tell them from users.
    assert!(
        poll(Duration::from_secs(3), || nodes[0]
            .state
            .marked_probes
            .load(Ordering::SeqCst)
            > 0)
        .await,
        "no health probe carried x-shoal-probe: health"
    );
    // Failing probes alone (no traffic) take node3 out after fail_threshold rounds...
    nodes[2].state.healthy.store(false, Ordering::SeqCst);
    assert!(
        poll(Duration::from_secs(3), || status("node3")
            == Some(BackendStatus::Down))
        .await
    );
    let http = HttpClient::new();
    for _ in 0..6 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("new session");
        assert_ne!(a.backend.as_deref(), Some("node3"));
    }
    nodes[2].state.healthy.store(true, Ordering::SeqCst);
    assert!(
        poll(Duration::from_secs(3), || status("node3")
            == Some(BackendStatus::Up))
        .await
    );

    // ...and a killed node restarted on its port comes back through the probes.
    let addr = nodes.remove(0).kill_and_wait().await;
    let a = http
        .get(lb.addr, "/app/echo", Some("JSESSIONID=A.node1"))
        .await
        .expect("failover");
    assert_ne!(a.backend.as_deref(), Some("node1"));
    assert_eq!(status("node1"), Some(BackendStatus::Down));
    let _node1 = FakeNode::restart(addr, "node1", &store).await;
    assert!(
        poll(Duration::from_secs(3), || status("node1")
            == Some(BackendStatus::Up))
        .await
    );
    let a = http
        .get(lb.addr, "/app/echo", Some("JSESSIONID=A.node1"))
        .await
        .expect("back");
    assert_eq!(a.backend.as_deref(), Some("node1"));
}

#[tokio::test]
async fn slow_backend_gets_504_after_response_timeout_and_no_resend() {
    let (_store, nodes) = three_nodes().await;
    let config = BalancerConfig {
        response_timeout: Duration::from_millis(200),
        ..config_for(&nodes)
    };
    let lb = start_balancer(config).await;
    let http = HttpClient::new();
    let a = http
        .get(lb.addr, "/app/hang", Some("JSESSIONID=A.node2"))
        .await
        .expect("answer");
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT, "{}", a.body);
    assert!(a.body.contains("node2"), "{}", a.body);
    assert_eq!(
        nodes[0].hits() + nodes[2].hits(),
        0,
        "a timed-out request may be running: not resent"
    );
    let stats = lb.handle.stats();
    assert!(
        stats.backends.iter().all(|b| b.status == BackendStatus::Up),
        "a slow node is not a dead one"
    );
}
