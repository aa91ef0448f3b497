//! A context's application is a choice of the node's builder; the bench app is the default.
mod common;

use axum::routing::any;
use axum::{Extension, Router};
use common::get;
use shoal_http::{App, ContextConfig, HttpConfig, HttpNode, SessionHandle};
use shoal_session::{MemoryCluster, SessionService};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// An application of its own: one route that creates the session.
struct Hello;

impl App for Hello {
    fn name(&self) -> &str {
        "hello"
    }
    fn router(&self, _service: Arc<SessionService>) -> Router {
        Router::new().route(
            "/hi",
            any(|Extension(h): Extension<SessionHandle>| async move {
                h.get(true).await;
                "hello"
            }),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_app_runs_behind_the_valves_and_others_keep_the_bench_app() {
    let mut config = HttpConfig::default();
    config.contexts.push(ContextConfig {
        path: "/shop".into(),
        ..ContextConfig::default()
    });
    let mem = MemoryCluster::new();
    let node = HttpNode::builder(config, mem.join("node1"))
        .app("/shop", Arc::new(Hello))
        .start()
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert!(node.registry().wait_ready(Duration::from_secs(10)).await);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(shoal_http::serve(listener, node, std::future::pending()));

    let r = get(addr, "/shop/hi", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "hello"), "{r:?}");
    assert!(r.session_id().is_some(), "the SessionValve ran: {r:?}");
    assert_eq!(get(addr, "/shop/counter", None).await.status, 404);

    let r = get(addr, "/app/counter", None).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("1")), "{r:?}");
}
