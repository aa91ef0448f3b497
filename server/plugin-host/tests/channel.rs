//! The checksum interceptor between nodes of the cluster's deterministic simulation: it
//! rewrites every message on the way out and back on the way in, and drops what arrives
//! without a valid checksum.
mod common;
use common::*;
use shoal_cluster::sim::Sim;
use shoal_cluster::{InterceptorStack, SendOptions};
use shoal_plugin_host::PluginSpec;
use std::time::Duration;

#[test]
fn checksum_interceptor_between_nodes() {
    let reg = registry();
    reg.load(
        "crc",
        &component("checksum-interceptor"),
        PluginSpec::default(),
    )
    .expect("load");
    let for_stack = reg.clone();
    // Nodes 0 and 1 run the interceptor; node 2 does not.
    let mut sim = Sim::new(7).with_stack(move |i| {
        let mut stack = InterceptorStack::new();
        if i < 2 {
            let layer = for_stack.interceptor("crc").expect("interceptor layer");
            stack.push(Box::new(layer)).expect("push");
        }
        stack
    });
    for name in ["node1", "node2", "node3"] {
        sim.add_node(name);
    }
    assert!(
        sim.run_until(Duration::from_secs(30), |s| s.fully_connected()),
        "cluster did not form"
    );

    sim.send(
        0,
        &[1],
        b"hello".to_vec(),
        SendOptions(SendOptions::USE_ACK),
    )
    .expect("node1 up");
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.nodes[1]
            .received
            .iter()
            .any(|(_, _, p)| p == b"hello")),
        "node2 did not get the original payload back: {:?}",
        sim.nodes[1].received
    );

    // Node 3 sends without the checksum: node 1 drops it; node 3 itself would see a
    // trailer on what node 1 sends it (the interceptor must run on every node).
    sim.send(2, &[0], b"plain".to_vec(), SendOptions(0))
        .expect("node3 up");
    sim.run_for(Duration::from_secs(2));
    assert!(
        !sim.nodes[0].received.iter().any(|(_, _, p)| p == b"plain"),
        "unchecked message delivered"
    );
    sim.send(0, &[2], b"sealed".to_vec(), SendOptions(0))
        .expect("node1 up");
    assert!(sim.run_until(Duration::from_secs(5), |s| s.nodes[2]
        .received
        .iter()
        .any(|(_, _, p)| p.len() == 6 + 5)));

    let metric = |n: &str| {
        reg.metrics()
            .into_iter()
            .find(|m| m.name == n)
            .map(|m| m.value)
            .unwrap_or(0)
    };
    assert!(metric("plugin.crc.dropped") >= 1);
    assert!(metric("plugin.crc.verified") >= 1);
}
