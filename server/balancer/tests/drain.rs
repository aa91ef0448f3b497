//! Draining and runtime backend changes (what cluster membership will drive).

mod common;

use common::*;
use shoal_balancer::BackendStatus;
use shoal_testkit::poll;

#[tokio::test]
async fn draining_node_keeps_its_sessions_but_gets_no_new_ones() {
    let (_store, mut nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    let mut node2_cookie = None;
    while node2_cookie.is_none() {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("new session");
        if a.backend.as_deref() == Some("node2") {
            node2_cookie = a.cookie.clone();
        }
    }
    let cookie = node2_cookie.expect("node2 session");

    assert!(lb.handle.mark_draining("node2"));
    assert!(!lb.handle.mark_draining("node9"), "unknown route reported");
    let node2 = |lb: &RunningBalancer| {
        lb.handle
            .stats()
            .backends
            .into_iter()
            .find(|b| b.route == "node2")
    };
    assert_eq!(node2(&lb).map(|b| b.status), Some(BackendStatus::Draining));
    for _ in 0..30 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("new session");
        assert_ne!(
            a.backend.as_deref(),
            Some("node2"),
            "draining node got a new session"
        );
        let a = http
            .get(lb.addr, "/app/counter", Some(&cookie))
            .await
            .expect("sticky");
        assert_eq!(
            a.backend.as_deref(),
            Some("node2"),
            "draining node lost its session early"
        );
    }

    // Once the drained node is gone its sessions move, with their data, to a live node.
    let before = http
        .get(lb.addr, "/app/counter", Some(&cookie))
        .await
        .expect("last on node2");
    let n: u64 = before
        .field("counter")
        .and_then(|c| c.parse().ok())
        .expect("counter");
    nodes.remove(1).kill_and_wait().await;
    let a = http
        .get(lb.addr, "/app/counter", Some(&cookie))
        .await
        .expect("after drain");
    assert_ne!(a.backend.as_deref(), Some("node2"));
    assert_eq!(a.field("counter"), Some((n + 1).to_string().as_str()));
    let moved = a
        .cookie
        .clone()
        .expect("JvmRouteBinderValve rewrote the cookie");
    assert!(moved.ends_with(
        a.backend
            .as_deref()
            .map(|r| format!(".{r}"))
            .unwrap_or_default()
            .as_str()
    ));
}

#[tokio::test]
async fn mark_active_undoes_a_drain() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let http = HttpClient::new();
    assert!(lb.handle.mark_draining("node1"));
    assert!(lb.handle.mark_active("node1"));
    let mut saw_node1 = false;
    for _ in 0..3 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("new session");
        saw_node1 |= a.backend.as_deref() == Some("node1");
    }
    assert!(saw_node1, "node1 takes new sessions again");
}

#[tokio::test]
async fn set_backends_adds_and_removes_nodes_and_keeps_counters() {
    let (store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes[..2])).await;
    let http = HttpClient::new();
    for _ in 0..4 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("request");
        assert_ne!(a.backend.as_deref(), Some("node3"));
    }
    // node3 joins, node1 leaves.
    let extra = FakeNode::start("node4", &store).await;
    lb.handle
        .set_backends(vec![
            nodes[1].backend(),
            nodes[2].backend(),
            extra.backend(),
        ])
        .expect("valid backends");
    let stats = lb.handle.stats();
    let routes: Vec<&str> = stats.backends.iter().map(|b| b.route.as_str()).collect();
    assert_eq!(routes, ["node2", "node3", "node4"]);
    assert_eq!(
        stats.backends[0].requests, 2,
        "node2 kept its counters across the change"
    );
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let a = http
            .get(lb.addr, "/app/counter", None)
            .await
            .expect("request");
        seen.insert(a.backend.expect("backend"));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(!seen.contains("node1"));
    let err = lb
        .handle
        .set_backends(vec![shoal_balancer::Backend::new("x", "bad")])
        .expect_err("bad addr");
    assert!(err.to_string().contains("backend #0"), "{err}");
    assert_eq!(
        lb.handle.stats().backends.len(),
        3,
        "a rejected list changes nothing"
    );
}

#[tokio::test]
async fn add_and_remove_single_backends_like_membership_events() {
    let (store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes[..1])).await;
    lb.handle
        .add_backend(nodes[1].backend())
        .expect("add node2");
    lb.handle
        .add_backend(nodes[1].backend())
        .expect("adding twice is a no-op");
    let routes = |lb: &RunningBalancer| -> Vec<String> {
        lb.handle
            .stats()
            .backends
            .into_iter()
            .map(|b| b.route)
            .collect()
    };
    assert_eq!(routes(&lb), ["node1", "node2"]);
    // node2 restarts elsewhere: same route, new address.
    let moved = FakeNode::start("node2", &store).await;
    lb.handle.add_backend(moved.backend()).expect("move node2");
    let stats = lb.handle.stats();
    assert_eq!(stats.backends[1].addr, moved.addr.to_string());
    let http = HttpClient::new();
    let a = http
        .get(lb.addr, "/app/echo", Some("JSESSIONID=A.node2"))
        .await
        .expect("sticky");
    assert_eq!(a.backend.as_deref(), Some("node2"));
    assert_eq!(moved.hits(), 1, "the moved node2 answered");
    assert!(lb.handle.remove_backend("node2"));
    assert!(!lb.handle.remove_backend("node2"));
    assert_eq!(routes(&lb), ["node1"]);
    let a = http
        .get(lb.addr, "/app/echo", Some("JSESSIONID=A.node2"))
        .await
        .expect("failover");
    assert_eq!(a.backend.as_deref(), Some("node1"));
    assert!(lb
        .handle
        .add_backend(shoal_balancer::Backend::new("", "127.0.0.1:1"))
        .is_err());
}

/// A rolling restart driven the way a drain will drive it: for each node in turn, drain,
/// stop, start again on its port, wait for the health probe to bring it back, undrain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_fails_no_request() {
    let (store, mut nodes) = three_nodes().await;
    let config = shoal_balancer::BalancerConfig {
        health_interval: std::time::Duration::from_millis(100),
        ..config_for(&nodes)
    };
    let lb = start_balancer(config).await;
    let load = load::start_load(lb.addr, std::time::Duration::from_secs(4)).await;
    let started = std::time::Instant::now();
    let status = |route: &str| {
        lb.handle
            .stats()
            .backends
            .into_iter()
            .find(|b| b.route == route)
            .map(|b| b.status)
    };
    for i in 0..3 {
        let route = format!("node{}", i + 1);
        assert!(lb.handle.mark_draining(&route));
        // Pacing, not waiting for a condition: the clients keep hitting the draining node.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let addr = nodes.remove(i).kill_and_wait().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        nodes.insert(i, FakeNode::restart(addr, &route, &store).await);
        let back = poll(std::time::Duration::from_secs(3), || {
            status(&route) == Some(BackendStatus::Draining)
        })
        .await;
        assert!(back, "{route} did not come back after restart");
        assert!(lb.handle.mark_active(&route));
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "restarts outlasted the load"
    );
    let report = load.report(None, started).await;
    println!("rolling restart: {report}");
    assert_eq!(report.failed_elsewhere, 0, "{report}");
    assert_eq!(report.mismatches, 0, "{report}");
    assert_eq!(report.not_recovered, 0, "{report}");
}
