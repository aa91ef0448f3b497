//! The fault harness (tests/src/netns.rs) on real nodes: three `shoal node` processes, each
//! in a network namespace of its own, find each other at their own addresses; a node cut
//! off from the others (both directions) is dropped by both and drops both, while the test
//! still reaches every namespace; healed, it is a member again everywhere.
use shoal_tests::netns::Lab;
use shoal_tests::{NodeProc, NodeSpec};
use std::time::{Duration, Instant};

const SECRET: &str = "netns-fault-secret-0123456789";
const T: Duration = Duration::from_secs(20);

#[test]
fn a_node_cut_off_in_its_namespace_is_dropped_and_rejoins_when_healed() {
    let lab = Lab::new(3);
    let names = ["f1", "f2", "f3"];
    // Each namespace has its own ports: one number serves every node.
    let port = shoal_tests::free_port();
    let addrs: Vec<String> = (0..lab.len())
        .map(|i| format!("{}:{port}", lab.ip(i)))
        .collect();
    let mut nodes: Vec<NodeProc> = (0..lab.len())
        .map(|i| {
            NodeProc::spawn(NodeSpec {
                bind: lab.ip(i).to_string(),
                member_addrs: addrs.clone(),
                netns: Some(lab.ns(i)),
                ..NodeSpec::new(names[i], port, &[], SECRET)
            })
        })
        .collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        let others: Vec<&str> = (0..3).filter(|&j| j != i).map(|j| names[j]).collect();
        n.wait_members(&others, T);
    }

    let since = marks(&mut nodes);
    lab.isolate(2);
    wait_since(&mut nodes[0], since[0], "member_disappeared", &["f3"]);
    wait_since(&mut nodes[1], since[1], "member_disappeared", &["f3"]);
    wait_since(&mut nodes[2], since[2], "member_disappeared", &["f1", "f2"]);

    let since = marks(&mut nodes);
    lab.heal();
    wait_since(&mut nodes[0], since[0], "member_added", &["f3"]);
    wait_since(&mut nodes[1], since[1], "member_added", &["f3"]);
    wait_since(&mut nodes[2], since[2], "member_added", &["f1", "f2"]);
    for n in &mut nodes {
        assert!(n.is_running(), "{} exited", n.spec.name);
    }
}

/// Each node's event history length once every event so far was read: what came before.
fn marks(nodes: &mut [NodeProc]) -> Vec<usize> {
    nodes
        .iter_mut()
        .map(|n| {
            n.drain();
            n.history.len()
        })
        .collect()
}

/// Waits until `node` reported a `kind` event for each of `names` after history index `mark`.
fn wait_since(node: &mut NodeProc, mark: usize, kind: &str, names: &[&str]) {
    let deadline = Instant::now() + T;
    loop {
        node.drain();
        let seen = |name: &str| {
            node.history[mark..]
                .iter()
                .any(|e| e.json["event"] == kind && e.json["name"] == name)
        };
        if names.iter().all(|n| seen(n)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no {kind} for each of {names:?} within {T:?}; saw {:?}\nstderr:\n{}",
            node.spec.name,
            &node.kinds()[mark..],
            node.stderr_text()
        );
        std::thread::sleep(shoal_testkit::POLL_EVERY);
    }
}
