//! Hostile bytes on the cluster port: malformed, truncated, oversized and wrong-version frames
//! close that connection with a logged reason naming the peer, and the node keeps serving.
use shoal_tests::cluster;
use shoal_tests::frames::{bad_frames, RawClient};
use std::time::Duration;

#[test]
fn bad_frames_close_the_connection_and_the_node_keeps_serving() {
    let mut nodes = cluster(&["f1", "f2"], "frames-test-secret");
    let port = nodes[0].spec.port;
    for (kind, bytes) in bad_frames() {
        let mut c = RawClient::connect(port);
        let peer = c.local_addr().to_string();
        // Some kinds are refused before the whole write lands; the close is what matters.
        let _ = c.write(&bytes);
        assert!(
            c.closed_within(Duration::from_secs(3)),
            "{kind}: connection still open"
        );
        let line = nodes[0].wait_log(
            &["closing cluster connection", &peer],
            Duration::from_secs(3),
        );
        assert!(
            line.is_some(),
            "{kind}: no log line naming {peer}:\n{}",
            nodes[0].stderr_text()
        );
        RawClient::assert_node_answers(port);
    }
    // The cluster itself was not disturbed.
    nodes[1].drain();
    assert!(
        nodes[1]
            .history
            .iter()
            .all(|e| e.json["event"] != "member_disappeared"),
        "{:?}",
        nodes[1].kinds()
    );
    assert!(nodes[0].is_running());
}
