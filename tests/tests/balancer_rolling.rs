//! Rolling restart of three nodes behind `shoal balancer --join` (backends learned from the
//! membership): each node drains (`quit` = the SIGTERM path), exits, and comes back on the
//! same name and channel port with a new HTTP port, one after the other, under load.
//! No session and no acknowledged update may be lost; the only failed requests allowed are
//! the session layer's explicit 503 'not acknowledged, retry' of its state-transfer race.
use shoal_tests::front::{check_rolling_restart, get, Front, Load};
use shoal_tests::front_kill::{nodes_with, NAMES};
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
    let load = Load::start(&front.addr, 9, Duration::from_millis(10));
    assert!(load.wait_successes(&[0; 9], 10, Duration::from_secs(15)));
    let mut nodes: Vec<Option<HttpNode>> = nodes.into_iter().map(Some).collect();
    for i in 0..3 {
        let mut old = nodes[i].take().expect("node");
        let t = Instant::now();
        old.proc.command("quit"); // the SIGTERM path: drain, then exit
        let ev = old
            .proc
            .wait_event("draining", |_| true, Duration::from_secs(5));
        assert_eq!(
            ev.json["balancers"], 1,
            "the balancer was not told: {}",
            ev.json
        );
        old.proc
            .wait_event("drained", |_| true, Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_secs(5);
        while old.proc.is_running() {
            assert!(
                Instant::now() < deadline,
                "{} did not exit after draining",
                NAMES[i]
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let drained = t.elapsed();
        let mut new = HttpNode::spawn(NAMES[i], ports[i], &ports, &cfg);
        new.proc.wait_event(
            "sessions_ready",
            |v| v["ready"] == true,
            Duration::from_secs(15),
        );
        wait_backend(&front.addr, NAMES[i], &new.http);
        println!("{} drained in {drained:?}, back at {}", NAMES[i], new.http);
        nodes[i] = Some(new);
        let base = load.successes();
        assert!(
            load.wait_successes(&base, 10, Duration::from_secs(15)),
            "load stalled after restarting {}",
            NAMES[i]
        );
    }
    let logs = load.stop();
    let (join_race, total) = check_rolling_restart(&front.addr, &logs);
    println!(
        "rolling restart ({manager}): {} sessions, {total} requests, no acknowledged update lost, \
         {join_race} answered 503 'not acknowledged, retry'",
        logs.len()
    );
}
