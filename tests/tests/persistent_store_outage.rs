//! The store killed (-9) and restarted under load, with real processes: a real PostgreSQL
//! behind two persistent nodes, two clients each following a session on node1.
//!
//! - `sticky`: every request keeps being answered 200 from memory during the outage
//!   (`shoal_store_degraded` is 1 meanwhile), the queued writes reach the store once it is
//!   back (queue depth 0, degraded 0), the store holds each session's newest value, and
//!   node2 continues from it.
//! - `per-request`: requests during the outage are answered 503 with `Retry-After` (and
//!   nothing else fails), and requests succeed again once the store is back.
//!
//! In both, the counters of the answered requests never go back or repeat.
use shoal_tests::persistent::{
    check_counts, cookie_id, persistent_config, wait_for, CounterLoad, Nodes, StoreKind, TestStore,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn metric(nodes: &Nodes, i: usize, name: &str) -> Result<f64, String> {
    let samples = nodes.metric(i, name)?;
    samples
        .iter()
        .find(|(k, _)| k.contains("context=\"/app\"") || k.contains("context=\"app\""))
        .or(samples.first())
        .map(|(_, v)| *v)
        .ok_or(format!("node{i}: no {name} in /metrics"))
}

fn outage(mode: &str, store: &mut TestStore) {
    let kind = store.kind;
    let what = |s: &str| format!("{mode}, {kind:?} killed: {s}");
    let toml = store.toml();
    let mut nodes = Nodes::start(2, |p| persistent_config(mode, &toml, 1800, p.http, p.admin));
    let load = CounterLoad::start(&nodes.http(1), 2, 20_000);
    load.wait_successes(&[0, 0], 5, WAIT, &what("first requests"));

    store.kill9();
    if mode == "sticky" {
        wait_for(&what("node1 reports the store degraded"), WAIT, || {
            Ok(metric(&nodes, 1, "shoal_store_degraded")? == 1.0)
        });
        let base = load.successes();
        let served = shoal_testkit::poll_blocking(WAIT, || {
            load.successes()
                .iter()
                .zip(&base)
                .all(|(s, b)| *s >= b + 20)
        });
        if !served {
            let logs = load.stop();
            let last: Vec<_> = logs
                .iter()
                .map(|l| l.iter().rev().take(3).collect::<Vec<_>>())
                .collect();
            let log = nodes.log(1);
            let tail = &log[log.len().saturating_sub(3000)..];
            panic!("{}", what(&format!("not served from memory during the outage: last answers {last:?}\nnode1 log tail:\n{tail}")));
        }
        assert_eq!(
            metric(&nodes, 1, "shoal_store_degraded"),
            Ok(1.0),
            "{}",
            what("still degraded: the answers above came from memory")
        );
        assert!(
            metric(&nodes, 1, "shoal_store_queue_depth").unwrap_or(0.0) >= 1.0,
            "{}",
            what("writes are queued during the outage")
        );
    } else {
        wait_for(&what("requests answered 503 meanwhile"), WAIT, || {
            Ok(load.failures() >= 4)
        });
    }

    store.restart();
    wait_for(&what("store back, queue drained"), WAIT, || {
        Ok(metric(&nodes, 1, "shoal_store_degraded")? == 0.0
            && metric(&nodes, 1, "shoal_store_queue_depth")? == 0.0)
    });
    let base = load.successes();
    load.wait_successes(&base, 10, WAIT, &what("requests succeed after the outage"));
    let logs = load.stop();

    let mut unavailable = 0;
    for log in &logs {
        for a in log {
            match a {
                Ok(r) if r.status == 200 => {}
                Ok(r) if mode == "per-request" && r.status == 503 => {
                    assert!(
                        r.retry_after.is_some(),
                        "{}",
                        what(&format!("503 without Retry-After: {r:?}"))
                    );
                    unavailable += 1;
                }
                other => panic!("{}", what(&format!("a request failed: {other:?}"))),
            }
        }
        let (last, cookie) = check_counts(log).unwrap_or_else(|e| panic!("{}", what(&e)));
        // The store holds the newest acknowledged value, and node2 continues from it.
        assert_eq!(
            store.stored_counter(cookie_id(&cookie)),
            Ok(Some(last)),
            "{}",
            what("the stored value after the outage")
        );
        let mut c = shoal_tests::persistent::Client {
            cookie: Some(cookie.clone()),
            first_cookie: Some(cookie),
            seen: vec![last],
        };
        c.count(&nodes.http(2), &what("node2 continues from the store"));
    }
    if mode == "per-request" {
        assert!(unavailable >= 4, "{}", what("503s during the outage"));
    }
    nodes.kill9(1);
    nodes.kill9(2);
}

#[test]
fn postgres_killed_and_restarted_under_load() {
    let mut store = TestStore::start(StoreKind::Postgres);
    // A request that probes the store while it is down waits this long (once per retry
    // interval); below the test client's 5 s read timeout.
    if let shoal_store::StoreConfig::Postgres(c) = &mut store.config {
        c.connect_timeout_ms = 1_000;
    }
    outage("sticky", &mut store);
    outage("per-request", &mut store);
}
