//! Split-brain by policy (issue #12): clients send each request to a random node while one
//! node is cut off from the cluster channel (the test still reaches it) and then healed,
//! every operation checked by the history checker (tests/src/history.rs).
//!
//! `partition = "majority"` (opt-in; `available` is the default): the node cut off sees no
//! majority, answers 503 `no-quorum` with `Retry-After` for every session, says so in its
//! readiness, and after the heal catches up before it serves again: no lost acknowledged
//! update, no stale read, no lost session. DeltaManager only: BackupManager under `majority`
//! lost one session in about one run in three (a promoted copy answered for another session
//! id), so its test is not on main until that is fixed (branch `split-brain` has it).
use shoal_testkit::{eventually_blocking, get_blocking};
use shoal_tests::history::{Promise, Recorder, Report};
use shoal_tests::netns::Lab;
use shoal_tests::split::{self, admin, SplitCluster};
use shoal_tests::workload::{run_into, Routing, Workload};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Random routing over `c` while node `cut` (by index) is isolated, then healed; returns
/// the checker's report. `during` runs while the node is cut off (after every side dropped
/// the other), `after` once the heal is seen.
fn cut_and_heal(
    lab: &Lab,
    c: &mut SplitCluster,
    cut: usize,
    during: impl FnOnce(&SplitCluster),
    after: impl FnOnce(&SplitCluster),
) -> Report {
    let names = split::names(c.nodes.len());
    let others: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != cut)
        .map(|(_, n)| n.as_str())
        .collect();
    let recorder = Recorder::new();
    let stop = AtomicBool::new(false);
    let w = Workload {
        clients: 4,
        sessions_per_client: 3,
        requests_per_client: 20_000,
        routing: Routing::Random,
        seed: 12,
    };
    let addrs = c.addrs.clone();
    std::thread::scope(|s| {
        let load = s.spawn(|| run_into(&addrs, &w, &recorder, &stop));
        eventually_blocking("the load under way", T, || recorder.len() >= 150);

        let since: Vec<usize> = c.nodes.iter_mut().map(|n| n.proc.mark()).collect();
        lab.isolate(cut);
        for (i, n) in c.nodes.iter_mut().enumerate() {
            if i == cut {
                n.proc
                    .wait_since(since[i], "member_disappeared", &others, T);
            } else {
                n.proc
                    .wait_since(since[i], "member_disappeared", &[&names[cut]], T);
            }
        }
        let at_cut = recorder.len();
        eventually_blocking("requests served while the node is cut off", T, || {
            recorder.len() >= at_cut + 300
        });
        during(c);

        let since: Vec<usize> = c.nodes.iter_mut().map(|n| n.proc.mark()).collect();
        lab.heal();
        for (i, n) in c.nodes.iter_mut().enumerate() {
            if i == cut {
                n.proc.wait_since(since[i], "member_added", &others, T);
            } else {
                n.proc
                    .wait_since(since[i], "member_added", &[&names[cut]], T);
            }
        }
        after(c);
        let at_heal = recorder.len();
        eventually_blocking("requests served after the heal", T, || {
            recorder.len() >= at_heal + 400
        });
        stop.store(true, Ordering::Relaxed);
        load.join().expect("load thread");
    });
    let history = recorder.history();
    let report = history.check();
    if report.holds(Promise::STRICT).is_err() {
        // The operations of the sessions named in the anomalies, for the failure message.
        let t0 = history.ops.iter().map(|o| o.start).min();
        for op in &history.ops {
            let named = report
                .examples
                .iter()
                .any(|e| e.starts_with(&format!("session {} ", op.session)));
            if let (true, Some(t0)) = (named, t0) {
                eprintln!(
                    "session {} {:?} on {} at {:?}..{:?}: {:?}",
                    op.session,
                    op.kind,
                    op.node,
                    op.start - t0,
                    op.end - t0,
                    op.outcome
                );
            }
        }
    }
    report
}

/// The node cut off answers 503 no-quorum with Retry-After for a session, and its
/// readiness names the partition.
fn minority_refuses(c: &SplitCluster, cut: usize) {
    let addr = &c.nodes[cut].http;
    // Any well-formed id: the gate answers before the session is looked up.
    let cookie = format!("JSESSIONID={}.node1", "A".repeat(32));
    let r = get_blocking(addr, "/app/counter", Some(&cookie), &[]).expect("reach the node");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("no-quorum"), "{}", r.body);
    assert!(
        r.body.contains("sees 1 of"),
        "names members seen/needed: {}",
        r.body
    );
    assert!(r.header("retry-after").is_some(), "Retry-After: {}", r.body);
    let (status, body) = admin(&c.admin[cut], "GET", "/api/v1/ready").expect("ready");
    assert_ne!(status, 200, "not ready while partitioned: {body}");
    assert!(body.contains("partition:/app"), "{body}");
    let (_, body) = admin(&c.admin[cut], "GET", "/api/v1/health").expect("health");
    assert!(body.contains("degraded"), "{body}");
}

/// Every node serves again (readiness ok) within `T` after the heal.
fn all_ready_again(c: &SplitCluster) {
    for (i, a) in c.admin.iter().enumerate() {
        eventually_blocking(&format!("node{} ready after the heal", i + 1), T, || {
            admin(a, "GET", "/api/v1/ready").is_ok_and(|(s, _)| s == 200)
        });
    }
}

fn majority_case(session: &str, what: &str) {
    let lab = Lab::new(3);
    let mut c = split::start(&lab, 3, session);
    let report = cut_and_heal(&lab, &mut c, 2, |c| minority_refuses(c, 2), all_ready_again);
    assert_eq!(report.sessions, 12, "{report}");
    assert!(
        report.not_applied > 0,
        "the node cut off refused some requests: {report}"
    );
    report
        .holds(Promise::STRICT)
        .unwrap_or_else(|e| panic!("{what}, random routing, node3 cut off and healed: {e}"));
}

#[test]
fn delta_sync_majority_loses_nothing_under_random_routing_across_a_cut_and_heal() {
    majority_case(
        "manager = \"delta\"\nreplication = \"sync\"\npartition = \"majority\"",
        "delta sync majority",
    );
}

/// The session ids a node reported as partition conflicts (its warn log).
fn reported_conflicts(c: &SplitCluster) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for n in &c.nodes {
        for line in n.proc.stderr_text().lines() {
            if let Some(rest) = line.split("partition conflict: session ").nth(1) {
                if let Some(id) = rest.split_whitespace().next() {
                    ids.insert(id.to_string());
                }
            }
        }
    }
    ids
}

/// `partition = "available"`: every side keeps serving (the node cut off answers no 503
/// `no-quorum`), and every acknowledged update the checker finds lost is in a session a
/// node reported as a partition conflict (warn log and `/metrics`).
#[test]
fn delta_sync_available_reports_every_session_whose_updates_the_heal_lost() {
    let lab = Lab::new(3);
    let mut c = split::start(
        &lab,
        3,
        "manager = \"delta\"\nreplication = \"sync\"\npartition = \"available\"",
    );
    let report = cut_and_heal(
        &lab,
        &mut c,
        2,
        |c| {
            let (status, body) = admin(&c.admin[2], "GET", "/api/v1/ready").expect("ready");
            assert_eq!(status, 200, "available: still ready while cut off: {body}");
        },
        |_| {},
    );
    assert_eq!(report.sessions, 12, "{report}");
    // Reconciliation happens when the sides meet; the load after the heal already read
    // every session, so the reports are in.
    let reported = reported_conflicts(&c);
    let unreported: Vec<&String> = report.lost_update_ids.difference(&reported).collect();
    assert!(
        unreported.is_empty(),
        "lost updates in sessions no node reported: {unreported:?}; reported {reported:?}; {report}"
    );
    let metrics: u64 = c
        .admin
        .iter()
        .map(|a| {
            let (_, body) = admin(a, "GET", "/metrics").expect("metrics");
            body.lines()
                .filter(|l| l.starts_with("shoal_session_partition_conflicts_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum();
    assert!(
        metrics as usize >= reported.len(),
        "every reported conflict counted in /metrics: {metrics} < {}",
        reported.len()
    );
    eprintln!(
        "available: {report}; {} sessions reported as partition conflicts",
        reported.len()
    );
}
