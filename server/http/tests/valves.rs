//! The valve extension point and the ReplicationValve URL filter.
mod common;

use common::{config, get, TestCluster};
use futures::future::BoxFuture;
use shoal_http::SessionHandle;
use shoal_http::{Next, Request, Response, Valve};
use shoal_session::ManagerConfig;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A plugin-like valve: reads the session of every request (so every request "touches" it)
/// and adds a response header.
struct Toucher {
    seen: Arc<AtomicU64>,
}

impl Valve for Toucher {
    fn name(&self) -> &str {
        "Toucher"
    }
    fn invoke(&self, req: Request, next: Next) -> BoxFuture<'static, Response> {
        let seen = self.seen.clone();
        Box::pin(async move {
            if let Some(h) = req.extensions().get::<SessionHandle>().cloned() {
                if h.get(false).await {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
            let mut resp = next.run(req).await;
            resp.headers_mut()
                .insert("x-toucher", http::HeaderValue::from_static("1"));
            resp
        })
    }
}

fn accessed_sent(c: &TestCluster) -> u64 {
    let s = c
        .node(1)
        .node
        .registry()
        .service("/app")
        .map(|s| s.stats())
        .unwrap_or_default();
    s.sent
        .iter()
        .find(|(k, _)| *k == "session_accessed")
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_filter_prevents_replication_of_static_requests() {
    // max inactive 1 s: an unchanged session is due an ACCESSED message after 250 ms.
    let session = ManagerConfig {
        max_inactive_secs: 1,
        ..ManagerConfig::default()
    };
    let seen = Arc::new(AtomicU64::new(0));
    let valves: Vec<Arc<dyn Valve>> = vec![Arc::new(Toucher { seen: seen.clone() })];
    let c = TestCluster::start_with_valves(2, config(session), valves).await;
    let a = c.node(1).addr;
    let r = get(a, "/app/counter", None).await;
    let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    assert_eq!(accessed_sent(&c), 0);

    // Let the ACCESSED interval pass (time must pass; nothing to poll for).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for path in ["/app/logo.png", "/app/js/site.js", "/app/font.woff2"] {
        let r = get(a, path, Some(&id)).await;
        assert_eq!(r.status, 404);
    }
    assert_eq!(
        seen.load(Ordering::Relaxed),
        3,
        "the valve read the session on each request"
    );
    assert_eq!(accessed_sent(&c), 0, "filtered requests must not replicate");
    let filtered = c
        .node(1)
        .node
        .registry()
        .service("/app")
        .map(|s| s.stats().filtered_requests);
    assert_eq!(filtered, Some(3));

    let r = get(a, "/app/page", Some(&id)).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        accessed_sent(&c),
        1,
        "an unfiltered request that used the session sends ACCESSED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_valves_run_inside_the_pipeline() {
    let seen = Arc::new(AtomicU64::new(0));
    let valves: Vec<Arc<dyn Valve>> = vec![Arc::new(Toucher { seen: seen.clone() })];
    let c = TestCluster::start_with_valves(1, config(ManagerConfig::default()), valves).await;
    let r = get(c.node(1).addr, "/app/counter", None).await;
    assert_eq!(r.status, 200);
    let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    let r = get(c.node(1).addr, "/app/counter", Some(&id)).await;
    assert_eq!(r.field("counter"), Some("2"));
    assert_eq!(
        seen.load(Ordering::Relaxed),
        1,
        "second request found the session in the valve"
    );
}
