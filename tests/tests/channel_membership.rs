//! Three `shoal node` processes with static membership: the cluster forms, messages flow in
//! every send mode, a kill -9 is detected within 1 s, and the restarted node rejoins as a new
//! incarnation.
use shoal_tests::{cluster, NodeProc, NodeSpec};
use std::time::Duration;

const SECRET: &str = "membership-test-secret";
const T: Duration = Duration::from_secs(10);

#[test]
fn three_nodes_form_detect_a_kill_and_readmit_the_restart() {
    let mut nodes = cluster(&["node1", "node2", "node3"], SECRET);

    // Messages in each mode reach both peers.
    for (mode, text) in [
        ("sync", "hello-sync"),
        ("ack", "hello-ack"),
        ("async", "hello-async"),
    ] {
        nodes[0].command(&format!("send {mode} {text}"));
        let r = nodes[0].wait_event("send_report", |_| true, T);
        assert_eq!(r.json["ok"], true, "{mode}: {}", r.json);
        nodes[0]
            .history
            .retain(|e| e.json["event"] != "send_report");
        for n in &mut nodes[1..] {
            n.wait_event("received", |v| v["text"] == text && v["from"] == "node1", T);
        }
    }

    // kill -9 node3: both survivors report it gone within 1 s, with a harness-compatible log line.
    let mut n3 = nodes.pop().expect("node3");
    let (port3, old_id) = (n3.spec.port, n3.history[0].json["id"].clone());
    let killed = n3.kill9();
    for n in nodes.iter_mut() {
        let ev = n.wait_new_member_event("member_disappeared", "node3", Duration::from_secs(5));
        let took = ev.at.duration_since(killed);
        assert!(
            took < Duration::from_secs(1),
            "{} took {took:?} to drop node3",
            n.spec.name
        );
        let line = n
            .wait_log(
                &[
                    "SimpleTcpCluster.memberDisappeared",
                    &format!("}}:{port3},"),
                ],
                Duration::from_secs(1),
            )
            .unwrap_or_else(|| panic!("no memberDisappeared log line in\n{}", n.stderr_text()));
        let stamp = &line[..23];
        assert!(
            stamp.as_bytes()[4] == b'-'
                && stamp.as_bytes()[10] == b' '
                && stamp.as_bytes()[19] == b'.',
            "{line}"
        );
    }

    // Restart on the same port: a new member id and incarnation joins both.
    let ports: Vec<u16> = nodes.iter().map(|n| n.spec.port).chain([port3]).collect();
    let _n3 = NodeProc::spawn(NodeSpec::new("node3", port3, &ports, SECRET));
    for n in nodes.iter_mut() {
        let ev = n.wait_new_member_event("member_added", "node3", T);
        assert_ne!(ev.json["id"], old_id, "the restart is a new member");
    }
    drop(n3);
}

#[test]
fn graceful_quit_is_reported_as_left() {
    let mut nodes = cluster(&["a1", "a2"], SECRET);
    let a2 = nodes.pop().expect("a2");
    a2.quit();
    let ev = nodes[0].wait_new_member_event("member_disappeared", "a2", T);
    assert_eq!(ev.json["reason"], "left", "{}", ev.json);
}
