//! The conformance suite of `AdminBackend` against the in-memory twin (shoal-node runs the
//! same suite against the real node's backend).
use shoal_admin::{testing::suite, MemoryBackend};

#[tokio::test]
async fn the_twin_conforms() {
    suite::test_all(&MemoryBackend::new(), "app").await;
}

#[tokio::test]
async fn the_twins_persistent_context_conforms() {
    suite::a_persistent_context_reports_its_store(&MemoryBackend::new(), "cart").await;
}
