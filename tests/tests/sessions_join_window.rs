//! A joining node must not answer for sessions it has not received yet: its first requests,
//! sent the moment the process reports `ready`, find the cluster's existing sessions (the
//! DeltaManager's promise: a joining node gets all sessions before it serves).
use shoal_tests::free_ports;
use shoal_tests::sessions::{http_cluster, session_config, with_route, Http, HttpNode};

#[test]
fn joining_node_does_not_serve_before_it_has_the_state() {
    let cfg = session_config("delta", "sync", 1800);
    let ports = free_ports(3);
    let nodes = http_cluster(&["node1", "node2"], &ports, &cfg);
    let http = Http::new();
    let cookies = http.create_sessions(&nodes[0].http, 2000, 1, 16);
    let probe = with_route(&cookies[cookies.len() - 1], "node3");
    for attempt in 1..=3 {
        let n3 = HttpNode::spawn("node3", ports[2], &ports, &cfg);
        // The very first request, as a balancer would send it once the port answers.
        let r = http.get(&n3.http, "/app/get?key=counter", Some(&probe));
        assert_eq!(
            (r.status, r.field("value")),
            (200, Some("1")),
            "join {attempt}: node3 answered for an existing session before its state transfer: {r:?}"
        );
        n3.proc.quit();
        for n in &nodes {
            http.wait_stat(
                &n.http,
                "members",
                |m| m == 1,
                std::time::Duration::from_secs(10),
            )
            .expect("node3 left");
        }
    }
}
