//! Sessions while the network fails between live nodes (issue #12), each node in a network
//! namespace of its own (tests/src/netns.rs) and every operation checked by the history
//! checker (tests/src/history.rs). With a sticky balancer (each request to the node its
//! cookie names), one node of three cut off from the cluster channel for longer than failure
//! detection, then healed, loses nothing: no lost update, no stale read, no lost session.
//! The context runs `partition = "available"` (the cut-off node keeps serving the sessions
//! routed to it); under the sync default, `majority`, node3 would refuse them with 503 while
//! cut off (that policy is tested in faults_split_brain.rs).
use shoal_testkit::eventually_blocking;
use shoal_tests::history::{Promise, Recorder};
use shoal_tests::netns::Lab;
use shoal_tests::split::{self, SplitCluster};
use shoal_tests::workload::{run_into, Routing, Workload};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn sticky_sessions_lose_nothing_while_a_node_is_cut_off_and_healed() {
    let lab = Lab::new(3);
    let SplitCluster {
        mut nodes, addrs, ..
    } = split::start(
        &lab,
        3,
        "manager = \"delta\"\nreplication = \"sync\"\npartition = \"available\"",
    );
    let recorder = Recorder::new();
    let stop = AtomicBool::new(false);
    let w = Workload {
        clients: 4,
        sessions_per_client: 3,
        // A bound; the test stops the load once it saw enough after the heal.
        requests_per_client: 20_000,
        routing: Routing::Sticky,
        seed: 7,
    };
    std::thread::scope(|s| {
        let load = s.spawn(|| run_into(&addrs, &w, &recorder, &stop));
        eventually_blocking("the load under way", T, || recorder.len() >= 150);

        // node3 cut off the cluster channel (the test still reaches it) until both sides
        // dropped each other, and the load goes on.
        let since: Vec<usize> = nodes.iter_mut().map(|n| n.proc.mark()).collect();
        lab.isolate(2);
        nodes[0]
            .proc
            .wait_since(since[0], "member_disappeared", &["node3"], T);
        nodes[1]
            .proc
            .wait_since(since[1], "member_disappeared", &["node3"], T);
        nodes[2]
            .proc
            .wait_since(since[2], "member_disappeared", &["node1", "node2"], T);
        let at_cut = recorder.len();
        eventually_blocking("requests served while node3 is cut off", T, || {
            recorder.len() >= at_cut + 150
        });

        let since: Vec<usize> = nodes.iter_mut().map(|n| n.proc.mark()).collect();
        lab.heal();
        nodes[0]
            .proc
            .wait_since(since[0], "member_added", &["node3"], T);
        nodes[1]
            .proc
            .wait_since(since[1], "member_added", &["node3"], T);
        nodes[2]
            .proc
            .wait_since(since[2], "member_added", &["node1", "node2"], T);
        let at_heal = recorder.len();
        eventually_blocking("requests served after the heal", T, || {
            recorder.len() >= at_heal + 300
        });
        stop.store(true, Ordering::Relaxed);
        load.join().expect("load thread");
    });
    let report = recorder.history().check();
    assert_eq!(report.sessions, 12, "{report}");
    let total = report.ok + report.not_applied + report.unknown;
    assert!(
        report.ok * 10 >= total * 9,
        "most requests answered: {report}"
    );
    report
        .holds(Promise::STRICT)
        .unwrap_or_else(|e| panic!("delta sync, sticky, node3 cut off and healed: {e}"));
}
