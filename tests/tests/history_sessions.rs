//! The history checker (tests/src/history.rs) on a real 3-node cluster with no faults:
//! clients send each request of their sessions to a random node, and the synchronous modes
//! keep the strict promise (no lost update, no stale read, no lost session). The baseline the
//! fault runs of issue #12 and the async runs of issue #13 are measured against.
use shoal_tests::free_ports;
use shoal_tests::history::Promise;
use shoal_tests::sessions::{http_cluster, session_config};
use shoal_tests::workload::{run, Routing, Workload};
use std::collections::BTreeMap;

const NAMES: [&str; 3] = ["node1", "node2", "node3"];

fn random_node_run(manager: &str) {
    let cfg = session_config(manager, "sync", 1800);
    let ports = free_ports(3);
    let nodes = http_cluster(&NAMES, &ports, &cfg);
    let addrs: BTreeMap<String, String> = nodes
        .iter()
        .map(|n| (n.name().to_string(), n.http.clone()))
        .collect();
    let w = Workload {
        clients: 4,
        sessions_per_client: 3,
        requests_per_client: 120,
        routing: Routing::Random,
        seed: 12,
    };
    let report = run(&addrs, &w).check();
    assert_eq!(report.sessions, 12, "{report}");
    assert_eq!(report.ok, 480, "every request answered: {report}");
    report
        .holds(Promise::STRICT)
        .unwrap_or_else(|e| panic!("{manager} sync, random node: {e}"));
}

#[test]
fn delta_sync_requests_to_random_nodes_keep_the_strict_promise() {
    random_node_run("delta");
}

#[test]
fn backup_sync_requests_to_random_nodes_keep_the_strict_promise() {
    random_node_run("backup");
}
