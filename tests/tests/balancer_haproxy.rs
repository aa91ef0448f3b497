//! deploy/haproxy/haproxy.cfg in front of three real nodes: kill -9 one under load.
use shoal_tests::front::Front;
use shoal_tests::front_kill::{kill_node1_under_load, nodes};

#[test]
fn kill9_behind_haproxy_loses_no_session() {
    let (mut nodes, _) = nodes();
    let addrs: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
    let Some(front) = Front::haproxy(&addrs) else {
        return; // reason printed
    };
    kill_node1_under_load(&front, &mut nodes);
}
