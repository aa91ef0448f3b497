//! Read-your-writes in async mode (issue 13) on real 3-node clusters: every request goes to
//! a random node and carries the version token of its previous answer (`X-Shoal-Version`,
//! see `tests/src/workload.rs`). All up, the history checker must find nothing; with one
//! node killed (-9) mid-load, every stale read and lost session must be one the survivors
//! counted and logged (`rywLost`, with the session ids of the lost updates); tokens that are
//! forged, truncated or from another cluster are ignored, never an error page.
use shoal_testkit::{eventually_blocking, get_blocking};
use shoal_tests::history::{Promise, Recorder};
use shoal_tests::sessions::{http_cluster, session_config, Http, HttpNode};
use shoal_tests::workload::{run, run_into, Routing, Workload, VERSION_HEADER};
use shoal_tests::{free_ports, NodeSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const NAMES: [&str; 3] = ["node1", "node2", "node3"];
const T: Duration = Duration::from_secs(20);

fn cluster(manager: &str) -> (Vec<HttpNode>, BTreeMap<String, String>) {
    let cfg = session_config(manager, "async", 1800);
    let nodes = http_cluster(&NAMES, &free_ports(3), &cfg);
    let addrs = nodes
        .iter()
        .map(|n| (n.name().to_string(), n.http.clone()))
        .collect();
    (nodes, addrs)
}

/// `key=` of a node's `/app/stats`.
fn stat(http: &Http, addr: &str, key: &str) -> String {
    http.get(addr, "/app/stats", None)
        .field(key)
        .unwrap_or_default()
        .to_owned()
}

fn all_up(manager: &str) {
    let (nodes, addrs) = cluster(manager);
    let w = Workload {
        clients: 4,
        sessions_per_client: 3,
        requests_per_client: 150,
        routing: Routing::Random,
        seed: 13,
    };
    let report = run(&addrs, &w).check();
    assert_eq!(report.sessions, 12, "{report}");
    assert_eq!(report.ok, 600, "every request answered: {report}");
    report
        .holds(Promise::STRICT)
        .unwrap_or_else(|e| panic!("{manager} async, random node, tokens: {e}"));
    let http = Http::new();
    let lost: u64 = nodes
        .iter()
        .map(|n| stat(&http, &n.http, "rywLost").parse::<u64>().unwrap_or(0))
        .sum();
    assert_eq!(lost, 0, "no loss is counted with every node up");
}

#[test]
fn delta_async_random_nodes_read_their_writes() {
    all_up("delta");
}

#[test]
fn backup_async_random_nodes_read_their_writes() {
    all_up("backup");
}

#[test]
fn delta_async_kill9_loses_only_what_it_counts() {
    kill9("delta");
}

#[test]
fn backup_async_kill9_loses_only_what_it_counts() {
    kill9("backup");
}

fn kill9(manager: &str) {
    let (mut nodes, addrs) = cluster(manager);
    let recorder = Recorder::new();
    let stop = AtomicBool::new(false);
    let w = Workload {
        clients: 4,
        sessions_per_client: 3,
        requests_per_client: 20_000,
        routing: Routing::Random,
        seed: 31,
    };
    std::thread::scope(|s| {
        let load = s.spawn(|| run_into(&addrs, &w, &recorder, &stop));
        eventually_blocking("the load under way", T, || recorder.len() >= 300);
        nodes[2].proc.kill9();
        let at_kill = recorder.len();
        eventually_blocking("requests served after the kill", T, || {
            recorder.len() >= at_kill + 400
        });
        stop.store(true, Ordering::Relaxed);
        load.join().expect("load thread");
    });
    let report = recorder.history().check();
    let http = Http::new();
    let mut counted = 0;
    let mut ids = BTreeSet::new();
    for n in &nodes[..2] {
        counted += stat(&http, &n.http, "rywLost")
            .parse::<usize>()
            .unwrap_or(0);
        ids.extend(
            stat(&http, &n.http, "rywLostIds")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    println!("{manager}: {report}\ncounted losses {counted}: {ids:?}");
    assert_eq!(report.impossible, 0, "{report}");
    assert!(
        report.stale_reads + report.lost_sessions <= counted,
        "every stale read or lost session was counted by a survivor ({counted}): {report}"
    );
    assert!(
        report.lost_update_ids.is_subset(&ids),
        "every session that lost updates was logged: lost {:?}, logged {ids:?}",
        report.lost_update_ids
    );
    // At most the writes the dead node had not sent yet: one per session in flight there.
    assert!(
        report.lost_updates <= report.sessions,
        "only the crash window is lost: {report}"
    );
}

#[test]
fn forged_truncated_and_foreign_tokens_are_served_from_the_newest_copy() {
    let (nodes, _) = cluster("delta");
    let (a, b) = (&nodes[0].http, &nodes[1].http);
    let first = get_blocking(a, "/app/counter", None, &[]).expect("a first answer");
    let cookie = first.cookie.clone().expect("a session cookie");
    let token = first
        .header(VERSION_HEADER)
        .expect("async mode answers with a version token")
        .to_owned();
    let second = get_blocking(
        b,
        "/app/counter",
        Some(&cookie),
        &[(VERSION_HEADER, &token)],
    )
    .expect("an answer");
    assert_eq!(second.field("counter"), Some("2"), "{}", second.body);
    let good = second.header(VERSION_HEADER).expect("a token").to_owned();
    let (body, mac) = good.rsplit_once('.').expect("a MAC");
    let flipped = format!("{body}.{}", "0".repeat(mac.len()));
    let raised = {
        let mut f: Vec<String> = body.split('.').map(str::to_owned).collect();
        f[1] = "999999".into();
        format!("{}.{mac}", f.join("."))
    };
    // Another session's token here, and a token of this session id signed by another
    // cluster (another secret): a node of its own, asked with this session's cookie.
    let other = get_blocking(a, "/app/counter", None, &[]).expect("another session");
    let misplaced = other.header(VERSION_HEADER).expect("a token").to_owned();
    let foreign = {
        let mut spec = NodeSpec::new(
            "elsewhere",
            free_ports(1)[0],
            &[],
            "another-cluster-secret-0123456789",
        );
        spec.config = Some(session_config("delta", "async", 1800));
        let alone = HttpNode::spawn_spec(spec, &[]);
        let r = get_blocking(&alone.http, "/app/counter", Some(&cookie), &[]).expect("an answer");
        r.header(VERSION_HEADER).expect("a token").to_owned()
    };
    let cookie_id = cookie
        .strip_prefix("JSESSIONID=")
        .and_then(|c| c.split('.').next());
    for (what, bad) in [
        ("forged MAC", flipped),
        ("raised version", raised),
        ("truncated", good[..good.len() / 2].to_owned()),
        ("another session's", misplaced),
        ("another cluster's", foreign),
        ("junk", "%%%".to_owned()),
    ] {
        for addr in [a, b, &nodes[2].http] {
            let r = get_blocking(
                addr,
                "/app/counter",
                Some(&cookie),
                &[(VERSION_HEADER, &bad)],
            )
            .expect("an answer");
            assert_eq!(r.status, 200, "{what} token on {addr}: {}", r.body);
            // Without a usable token the node serves the newest copy it has (replication of
            // the previous request may still be on its way): the same session, never reset.
            let v: u64 = r.field("counter").and_then(|c| c.parse().ok()).unwrap_or(0);
            assert!(v >= 2, "{what} token on {addr}: {}", r.body);
            let id = r.field("session").and_then(|s| s.split('.').next());
            assert_eq!(id, cookie_id, "{what} token on {addr}: the same session");
            assert!(
                r.header(VERSION_HEADER).is_some(),
                "a fresh token comes back"
            );
        }
    }
    let http = Http::new();
    let refused: u64 = nodes
        .iter()
        .map(|n| {
            stat(&http, &n.http, "rywBadTokens")
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(refused, 18, "every bad token was refused and counted");
}
