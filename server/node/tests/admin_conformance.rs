//! The conformance suite of `AdminBackend` (`shoal_admin::testing::suite`) against a real
//! node's backend: the same checks the in-memory twin passes in shoal-admin.
mod common;

use common::{http_url, start_node};
use reqwest::StatusCode;
use shoal_admin::testing::suite;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_backend_conforms() {
    let node = start_node("solo", 0, &[]).await;
    assert!(
        node.http
            .registry()
            .wait_ready(Duration::from_secs(10))
            .await,
        "a lone node is ready"
    );
    // Sessions for the suite: each request without a cookie makes a new one.
    let c = shoal_testkit::http_client();
    for _ in 0..5 {
        let r = c
            .get(http_url(&node, "/app/counter"))
            .send()
            .await
            .expect("counter");
        assert_eq!(r.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    suite::test_all(node.admin.as_ref(), "app").await;
    node.shutdown().await;
}
