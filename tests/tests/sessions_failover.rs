//! Failover across real processes, the measurements (b0) and (b) of the Tomcat harness as
//! assertions: sessions created on node1 read correctly on node2 and node3; after SIGKILL of
//! node1, 1000 of 1000 sessions are correct on node2 in sync mode (delta and backup); in async
//! mode every session is correct on node3 while all nodes are up (Tomcat: 8% wrong).
use shoal_tests::free_ports;
use shoal_tests::sessions::{http_cluster, session_config, with_route, Check, Http};
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["node1", "node2", "node3"];
const SESSIONS: usize = 1000;
/// Requests per session, so each counter ends at 3 (the harness' INCREMENTS).
const INCREMENTS: i64 = 3;
const CONC: usize = 16;

fn assert_all_ok(what: &str, c: &Check) {
    let first: Vec<_> = c.bad.iter().take(5).collect();
    assert_eq!(
        (c.ok, c.total),
        (SESSIONS, SESSIONS),
        "{what}: {c:?} (first failures: {first:?})"
    );
}

/// Sync mode: few sessions read on node2 and node3, then 1000 survive kill -9 of node1.
fn sync_failover(manager: &str) {
    let cfg = session_config(manager, "sync", 1800);
    let ports = free_ports(3);
    let mut nodes = http_cluster(&NAMES, &ports, &cfg);
    let http = Http::new();

    // A handful of sessions, read on the other two nodes (the route rewrite included).
    let few = http.create_sessions(&nodes[0].http, 20, INCREMENTS, CONC);
    for n in &nodes[1..] {
        let c = http.check_counters(&n.http, &few, INCREMENTS, CONC);
        assert_eq!(c.ok, few.len(), "{manager}: read on {}: {c:?}", n.name());
        assert_eq!(
            c.rewritten,
            few.len(),
            "{manager}: route rewritten on {}",
            n.name()
        );
    }

    let cookies = http.create_sessions(&nodes[0].http, SESSIONS, INCREMENTS, CONC);
    let killed = nodes[0].proc.kill9();
    let c = http.check_counters(&nodes[1].http, &cookies, INCREMENTS, CONC);
    eprintln!(
        "{manager}-sync failover: ok {} of {} (rewritten {}), read done {:?} after the kill",
        c.ok,
        c.total,
        c.rewritten,
        killed.elapsed()
    );
    assert_all_ok(
        &format!("{manager}-sync after kill -9 of node1, read on node2"),
        &c,
    );
    assert_eq!(c.rewritten, SESSIONS, "every id rewritten to node2");
    // node3 agrees with node2 (it saw the rewrites, or fetches the value).
    let on3: Vec<String> = cookies.iter().map(|c| with_route(c, "node2")).collect();
    let c = http.check_counters(&nodes[2].http, &on3, INCREMENTS, CONC);
    assert_all_ok(
        &format!("{manager}-sync, read on node3 after the failover"),
        &c,
    );
}

/// Async mode, all nodes up: every session reaches node3 with its final counter.
fn async_consistency(manager: &str) {
    let cfg = session_config(manager, "async", 1800);
    let ports = free_ports(3);
    let nodes = http_cluster(&NAMES, &ports, &cfg);
    let http = Http::new();
    let cookies = http.create_sessions(&nodes[0].http, SESSIONS, INCREMENTS, CONC);
    // Read on node3 under node3's own route (no rewrite: reads do not change the session).
    let mut pending: Vec<String> = cookies.iter().map(|c| with_route(c, "node3")).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first_pass = None;
    loop {
        let c = http.check_counters(&nodes[2].http, &pending, INCREMENTS, CONC);
        first_pass.get_or_insert_with(|| c.clone());
        assert_eq!(c.errors, 0, "{manager}-async read errors on node3: {c:?}");
        pending = c.bad.iter().map(|(ck, _)| ck.clone()).collect();
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{manager}-async: {} of {SESSIONS} sessions still wrong on node3 after 10 s: {:?}",
            pending.len(),
            &c.bad[..c.bad.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(f) = first_pass {
        eprintln!(
            "{manager}-async first read pass on node3: ok {} stale {} no-attr {} missing {}",
            f.ok, f.stale, f.no_attr, f.missing
        );
    }
}

#[test]
fn delta_sync_failover_1000_of_1000() {
    sync_failover("delta");
}

#[test]
fn backup_sync_failover_1000_of_1000() {
    sync_failover("backup");
}

#[test]
fn delta_async_all_correct_while_up() {
    async_consistency("delta");
}

#[test]
fn backup_async_all_correct_while_up() {
    async_consistency("backup");
}
