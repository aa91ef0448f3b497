//! The kill -9 scenario shared by the balancer and HAProxy tests: three sync DeltaManager nodes
//! behind a front, a bounded load of clients (one session each), node1 killed mid-load.
use crate::free_port;
use crate::front::{
    backend_before, check_rolling_restart, continuity, failures, first_success_after, get,
    last_counter, Front, Load,
};
use crate::sessions::{http_cluster, session_config, HttpNode};
use std::time::{Duration, Instant};

pub const NAMES: [&str; 3] = ["node1", "node2", "node3"];

/// Starts the three nodes (sync DeltaManager); returns them with their channel ports.
pub fn nodes() -> (Vec<HttpNode>, Vec<u16>) {
    nodes_with("delta")
}

/// Starts the three nodes with `manager` (delta|backup), sync replication.
pub fn nodes_with(manager: &str) -> (Vec<HttpNode>, Vec<u16>) {
    let cfg = session_config(manager, "sync", 1800);
    let ports: Vec<u16> = NAMES.iter().map(|_| free_port()).collect();
    (http_cluster(&NAMES, &ports, &cfg), ports)
}

/// Runs the load, kills node1, and checks: the killed node's sessions continue elsewhere with
/// the right counter, failover gap ≤ 1 s, no failure for the live nodes' sessions, no counter
/// lost (at most one +2 jump per killed-node session: a request applied before the kill whose
/// answer was lost). Returns the worst gap.
pub fn kill_node1_under_load(front: &Front, nodes: &mut [HttpNode]) -> Duration {
    let load = Load::start(&front.addr, 12, Duration::from_millis(10));
    assert!(
        load.wait_successes(&[0; 12], 10, Duration::from_secs(15)),
        "the load did not get going through {}",
        front.addr
    );
    let kill_at = nodes[0].proc.kill9();
    let base = load.successes();
    let continued = load.wait_successes(&base, 20, Duration::from_secs(15));
    let logs = load.stop();
    assert!(continued, "some clients stalled after the kill: {:?}", base);

    let mut on_victim = 0;
    let mut unacked = 0;
    let mut worst = Duration::ZERO;
    for log in &logs {
        let victim = backend_before(log, kill_at).as_deref() == Some("node1");
        if let Err(e) = continuity(log, i64::from(victim)) {
            panic!("session {:?}: {e}", log.cookie);
        }
        if victim {
            on_victim += 1;
            let gap = first_success_after(log, kill_at).expect("killed node's session continued");
            worst = worst.max(gap);
            assert!(
                gap <= Duration::from_secs(1),
                "failover gap {gap:?} > 1 s for {:?}; failures {:?}",
                log.cookie,
                failures(log)
            );
        } else {
            // Sync replication to node1 failing as it dies is reported to the client as a
            // 503 "not acknowledged, retry" (shoal-session's choice); anything else is a bug.
            let f = failures(log);
            assert!(
                f.iter()
                    .all(|e| e.contains("replication-failed") && e.contains("node1")),
                "a live node's session failed: {f:?}"
            );
            unacked += f.len();
        }
        // The right data: the session, read again through the front, holds the last counter.
        let cookie = log.cookie.as_deref().expect("session cookie");
        let r = get(&front.addr, "/app/get?key=counter", Some(cookie)).expect("read back");
        assert_eq!(
            r.field("value").and_then(|v| v.parse::<i64>().ok()),
            last_counter(log),
            "read back {cookie}: {}",
            r.body
        );
        assert_ne!(
            r.backend.as_deref(),
            Some("node1"),
            "answered by the dead node"
        );
    }
    assert!(on_victim >= 1, "no session was on node1 before the kill");
    println!(
        "kill -9 node1 behind {}: {} sessions, {on_victim} on node1, worst failover gap {worst:?}, \
         {unacked} live-node requests answered 503 (replication to node1 failed as it died)",
        front.addr,
        logs.len()
    );
    worst
}

/// A rolling restart under load through `front`: each node in turn drains (`quit`, the
/// SIGTERM path), exits, and `respawn(i)` starts it again; `wait_front` returns once the
/// front routes to the new process. `balancers` is how many balancers the drain event must
/// say it told (0 for a front that only probes, like HAProxy). Then every client is checked
/// by [`check_rolling_restart`]. Returns (explicit 503 retries, requests, sessions).
pub fn roll_under_load(
    front: &str,
    nodes: Vec<HttpNode>,
    balancers: u64,
    respawn: impl Fn(usize) -> HttpNode,
    wait_front: impl Fn(&HttpNode),
) -> (usize, usize, usize) {
    let load = Load::start(front, 9, Duration::from_millis(10));
    assert!(
        load.wait_successes(&[0; 9], 10, Duration::from_secs(15)),
        "the load did not get going through {front}"
    );
    let mut nodes: Vec<Option<HttpNode>> = nodes.into_iter().map(Some).collect();
    for i in 0..nodes.len() {
        let mut old = nodes[i].take().expect("node");
        let t = Instant::now();
        old.proc.command("quit"); // the SIGTERM path: drain, then exit
        let ev = old
            .proc
            .wait_event("draining", |_| true, Duration::from_secs(5));
        assert_eq!(
            ev.json["balancers"], balancers,
            "{}: wrong number of balancers told: {}",
            NAMES[i], ev.json
        );
        old.proc
            .wait_event("drained", |_| true, Duration::from_secs(10));
        old.proc.wait_exit(Duration::from_secs(5));
        let drained = t.elapsed();
        // A drained node leaves; its peers must not take it for a crash.
        for peer in nodes.iter_mut().flatten() {
            let ev = peer.proc.wait_event(
                "member_disappeared",
                |v| v["name"] == NAMES[i],
                Duration::from_secs(5),
            );
            assert_eq!(
                ev.json["reason"], "left",
                "{} saw drained {} disappear: {}",
                peer.proc.spec.name, NAMES[i], ev.json
            );
        }
        let mut new = respawn(i);
        new.proc.wait_event(
            "sessions_ready",
            |v| v["ready"] == true,
            Duration::from_secs(15),
        );
        wait_front(&new);
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
    let (join_race, total) = check_rolling_restart(front, &logs);
    (join_race, total, logs.len())
}
