//! Cluster authentication: a node with the wrong secret cannot join, and frames from an
//! unauthenticated connection are never delivered.
use shoal_cluster::Body;
use shoal_tests::frames::{data_frame, fake_member, RawClient};
use shoal_tests::{cluster, free_port, NodeProc, NodeSpec};
use std::time::Duration;

const SECRET: &str = "auth-test-secret";
const T: Duration = Duration::from_secs(10);

#[test]
fn wrong_secret_cannot_join() {
    let mut nodes = cluster(&["s1", "s2"], SECRET);
    let ports: Vec<u16> = nodes.iter().map(|n| n.spec.port).collect();
    let mut all = ports.clone();
    let p3 = free_port();
    all.push(p3);
    let mut intruder = NodeProc::spawn(NodeSpec::new("intruder", p3, &all, "not-the-secret"));
    // Positive evidence that it tried and was refused on both sides ...
    let line = nodes[0].wait_log(&["handshake failed"], T);
    assert!(
        line.is_some(),
        "no handshake failure logged:\n{}",
        nodes[0].stderr_text()
    );
    assert!(
        intruder.wait_log(&["handshake failed"], T).is_some(),
        "{}",
        intruder.stderr_text()
    );
    // ... and it is a member nowhere.
    for n in nodes.iter_mut() {
        n.drain();
        assert!(
            n.history.iter().all(|e| e.json["name"] != "intruder"),
            "{}: {:?}",
            n.spec.name,
            n.kinds()
        );
    }
    intruder.drain();
    assert!(
        intruder
            .history
            .iter()
            .all(|e| e.json["event"] != "member_added"),
        "{:?}",
        intruder.kinds()
    );
}

#[test]
fn frames_without_a_valid_handshake_are_not_delivered() {
    let mut nodes = cluster(&["d1", "d2"], SECRET);
    let port = nodes[0].spec.port;
    let me = fake_member("forger", free_port());

    // 1. Wrong proof: refused, and the data that follows is not delivered.
    let mut c = RawClient::connect(port);
    let reply = c.handshake(&me, "guessed-secret");
    assert!(
        matches!(reply, Some(Body::Refused { .. }) | None),
        "wrong proof accepted: {reply:?}"
    );
    let _ = c.write(&data_frame(me.id, 1, "injected-after-refusal"));
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "connection stays open after a refused handshake"
    );

    // 2. No handshake at all: data straight away.
    let mut c = RawClient::connect(port);
    let _ = c.write(&data_frame(me.id, 2, "injected-without-handshake"));
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "unauthenticated data did not close the connection"
    );

    // A legitimate message sent afterwards arrives; the injected ones never did.
    nodes[1].command("send ack legit-after-injection");
    nodes[0].wait_event("received", |v| v["text"] == "legit-after-injection", T);
    let injected: Vec<_> = nodes[0]
        .history
        .iter()
        .filter(|e| {
            e.json["event"] == "received"
                && e.json["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("injected"))
        })
        .collect();
    assert!(
        injected.is_empty(),
        "injected frames delivered: {injected:?}"
    );
}
