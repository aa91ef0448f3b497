//! `shoal balancer` (static backends) in front of three real nodes: kill -9 one under load.
use shoal_tests::front::Front;
use shoal_tests::front_kill::{kill_node1_under_load, nodes, NAMES};
use shoal_tests::sessions::SECRET;

#[test]
fn kill9_behind_balancer_loses_no_session() {
    let (mut nodes, _) = nodes();
    let backends: Vec<(String, String)> = nodes
        .iter()
        .zip(NAMES)
        .map(|(n, name)| (name.to_string(), n.http.clone()))
        .collect();
    let front = Front::balancer(&backends, &[], SECRET);
    kill_node1_under_load(&front, &mut nodes);
}
