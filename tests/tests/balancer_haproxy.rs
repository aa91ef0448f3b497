//! deploy/haproxy/haproxy.cfg in front of three real nodes: kill -9 one under load, and a
//! rolling restart with drain (HAProxy's health check sees `x-shoal-draining`).
use shoal_tests::free_port;
use shoal_tests::front::{get, Front};
use shoal_tests::front_kill::{kill_node1_under_load, nodes, nodes_with, roll_under_load, NAMES};
use shoal_tests::sessions::{session_config, HttpNode};
use std::time::{Duration, Instant};

/// One test at a time: the rolling restart brings nodes back on their fixed HTTP ports, and
/// a parallel test's `free_port()` could take one while it is free.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn kill9_behind_haproxy_loses_no_session() {
    let _serial = serial();
    let (mut nodes, _) = nodes();
    let addrs: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
    let front = Front::haproxy(&addrs);
    kill_node1_under_load(&front, &mut nodes);
}

/// Each node drains and comes back on the same HTTP port (HAProxy's list is static); HAProxy
/// stops sending to it when its check sees the drain mark, and resends a request refused
/// by a closed listener to a live node. Nothing acknowledged may be lost.
#[test]
fn rolling_restart_behind_haproxy_loses_nothing() {
    let _serial = serial();
    for manager in ["delta", "backup"] {
        let (nodes, ports) = nodes_with(manager);
        let addrs: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
        let front = Front::haproxy(&addrs);
        let cfg = session_config(manager, "sync", 1800);
        let http_port = |i: usize| addrs[i].rsplit(':').next().unwrap_or_default().to_string();
        let (join_race, total, sessions) = roll_under_load(
            &front.addr,
            nodes,
            0,
            |i| {
                let port = http_port(i);
                HttpNode::spawn_with(NAMES[i], ports[i], &ports, &cfg, &["--http-port", &port])
            },
            |n| wait_routed(&front.addr, n.name()),
        );
        println!(
            "rolling restart behind HAProxy ({manager}): {sessions} sessions, {total} requests, \
             no acknowledged update lost, {join_race} answered 503 'not acknowledged, retry'"
        );
    }
}

/// The drain mark alone takes a node out of HAProxy: node2 drains with a 4 s grace (its
/// listener stays open and it answers), yet HAProxy stops sending it new sessions within
/// about one check interval, because the check fails on `X-Shoal-Draining`.
#[test]
fn haproxy_check_sees_the_drain_mark() {
    let _serial = serial();
    let cfg = session_config("delta", "sync", 1800);
    let ports: Vec<u16> = NAMES.iter().map(|_| free_port()).collect();
    let mut nodes: Vec<HttpNode> = NAMES
        .iter()
        .zip(&ports)
        .map(|(name, port)| {
            let grace: &[&str] = if *name == "node2" {
                &["--drain-grace-ms", "4000"]
            } else {
                &[]
            };
            HttpNode::spawn_with(name, *port, &ports, &cfg, grace)
        })
        .collect();
    for n in &mut nodes {
        n.wait_members(&NAMES);
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
    let front = Front::haproxy(&addrs);
    wait_routed(&front.addr, "node2");
    nodes[1].proc.command("quit");
    let draining = nodes[1]
        .proc
        .wait_event("draining", |_| true, Duration::from_secs(5));
    // Out of rotation = 12 new sessions in a row (4 rounds of roundrobin) avoid node2.
    let deadline = draining.at + Duration::from_millis(2500);
    let mut streak = 0;
    while streak < 12 {
        let r = get(&front.addr, "/app/counter", None).expect("HAProxy answers");
        assert_eq!(r.status, 200, "{r:?}");
        streak = if r.backend.as_deref() == Some("node2") {
            0
        } else {
            streak + 1
        };
        assert!(
            Instant::now() < deadline,
            "HAProxy still sends new sessions to draining node2 2.5 s into its 4 s grace"
        );
    }
    let direct = get(&addrs[1], "/app/stats", None).expect("node2 still answers directly");
    assert_eq!(direct.status, 200, "node2 is still in its grace period");
    println!(
        "HAProxy took draining node2 out after {:?}",
        draining.at.elapsed()
    );
}

/// Waits until HAProxy sends a new session to `route` again (its check marked it up).
fn wait_routed(front: &str, route: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(front, "/app/stats", None);
        if r.as_ref().ok().and_then(|r| r.backend.as_deref()) == Some(route) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never routed to {route} again: last answer {r:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
