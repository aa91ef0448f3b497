//! The fault harness (tests/src/netns.rs) on real nodes: three `shoal node` processes, each
//! in a network namespace of its own, find each other at their own addresses; a node cut
//! off from the others (both directions) is dropped by both and drops both, while the test
//! still reaches every namespace; healed, it is a member again everywhere.
use shoal_tests::netns::Lab;
use shoal_tests::{NodeProc, NodeSpec};
use std::time::Duration;

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

    let since: Vec<usize> = nodes.iter_mut().map(NodeProc::mark).collect();
    lab.isolate(2);
    nodes[0].wait_since(since[0], "member_disappeared", &["f3"], T);
    nodes[1].wait_since(since[1], "member_disappeared", &["f3"], T);
    nodes[2].wait_since(since[2], "member_disappeared", &["f1", "f2"], T);

    let since: Vec<usize> = nodes.iter_mut().map(NodeProc::mark).collect();
    lab.heal();
    nodes[0].wait_since(since[0], "member_added", &["f3"], T);
    nodes[1].wait_since(since[1], "member_added", &["f3"], T);
    nodes[2].wait_since(since[2], "member_added", &["f1", "f2"], T);
    for n in &mut nodes {
        assert!(n.is_running(), "{} exited", n.spec.name);
    }
}
