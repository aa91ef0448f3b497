//! Rolling restart of three nodes behind `shoal balancer --join` (backends learned from the
//! membership): each node drains (`quit` = the SIGTERM path), exits, and comes back on the
//! same name and channel port with a new HTTP port, one after the other, under load.
//! No session and no acknowledged update may be lost; the only failed requests allowed are
//! the session layer's explicit 503 'not acknowledged, retry' of its state-transfer race.
use shoal_tests::front::{get, Front};
use shoal_tests::front_kill::{nodes_with, roll_under_load, NAMES};
use shoal_tests::sessions::{session_config, HttpNode, SECRET};
use std::time::{Duration, Instant};

/// Polls the balancer status until `route` is a backend at `addr` (up).
fn wait_backend(front: &str, route: &str, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = get(front, "/balancer/status", None)
            .map(|r| r.body)
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
        let found = v["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| b["route"] == route && b["addr"] == addr && b["status"] != "down");
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "balancer never listed {route} at {addr}: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rolling_restart_with_drain_loses_nothing() {
    rolling_restart("delta");
}

/// BackupManager: a draining node's primary sessions are promoted on their backups.
#[test]
fn rolling_restart_backup_manager_loses_nothing() {
    rolling_restart("backup");
}

fn rolling_restart(manager: &str) {
    let (nodes, ports) = nodes_with(manager);
    let front = Front::balancer(&[], &ports, SECRET);
    for n in &nodes {
        wait_backend(&front.addr, n.name(), &n.http);
    }
    let cfg = session_config(manager, "sync", 1800);
    // Balancers that joined the membership are told of the drain directly (the event counts
    // them); the node comes back on a new HTTP port, which the balancer learns.
    let (join_race, total, sessions) = roll_under_load(
        &front.addr,
        nodes,
        1,
        |i| HttpNode::spawn(NAMES[i], ports[i], &ports, &cfg),
        |n| wait_backend(&front.addr, n.name(), &n.http),
    );
    println!(
        "rolling restart ({manager}): {sessions} sessions, {total} requests, no acknowledged \
         update lost, {join_race} answered 503 'not acknowledged, retry'"
    );
}
