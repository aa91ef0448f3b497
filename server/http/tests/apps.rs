//! Contexts installed, replaced and removed while nodes serve (the farm deployer's
//! `application` artifacts): atomic swaps under load, sessions kept across a redeploy,
//! state transfer to a node that installs later, static files, removal.
mod common;

use axum::routing::any;
use axum::{Extension, Router};
use common::{get, get_with, TestCluster};
use shoal_http::{
    App, ConfigError, ContextConfig, ContextParts, HttpConfig, Installed, SessionHandle,
    StaticFiles,
};
use shoal_session::{AttrValue, SessionService};
use shoal_testkit::eventually;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An application that counts in the session and says which version answered.
struct Versioned(u32);

impl App for Versioned {
    fn name(&self) -> &str {
        "versioned"
    }
    fn router(&self, _service: Arc<SessionService>) -> Router {
        let version = self.0;
        Router::new().route(
            "/count",
            any(move |Extension(h): Extension<SessionHandle>| async move {
                h.get(true).await;
                let n = h
                    .attribute("n")
                    .and_then(|a| a.as_json())
                    .and_then(|j| j.as_i64())
                    .unwrap_or(0)
                    + 1;
                match h.set_attribute("n", AttrValue::Json(n.to_string())) {
                    Ok(()) => format!("version={version} n={n}"),
                    Err(e) => format!("error={e}"),
                }
            }),
        )
    }
}

fn shop() -> ContextConfig {
    ContextConfig {
        path: "/shop".into(),
        app: "versioned".into(),
        ..ContextConfig::default()
    }
}

fn parts(version: u32) -> ContextParts {
    ContextParts {
        app: Some(Arc::new(Versioned(version))),
        ..ContextParts::default()
    }
}

fn holds(c: &TestCluster, i: usize, ctx: &str, full_id: &str) -> bool {
    let Some((id, _)) = shoal_session::parse_full_id(full_id) else {
        return false;
    };
    c.node(i)
        .node
        .registry()
        .service(ctx)
        .is_some_and(|s| s.with_manager(|m| m.session(&id).is_some()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_context_serves_converges_on_a_later_node_and_is_removed() {
    let c = TestCluster::start(2, HttpConfig::default()).await;
    let (a, b) = (c.node(1).addr, c.node(2).addr);
    assert_eq!(get(a, "/shop/count", None).await.status, 404);

    let done = c.node(1).node.install_context(shop(), parts(1));
    assert_eq!(done.ok(), Some(Installed::Created));
    let r = get(a, "/shop/count", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "version=1 n=1"), "{r:?}");
    let sid = r
        .session_id()
        .unwrap_or_else(|| panic!("no session: {r:?}"));
    // Node 2 has no /shop yet: the session's replication messages reach it and are
    // dropped without harm; it still serves /app.
    assert_eq!(get(b, "/shop/count", Some(&sid)).await.status, 404);
    assert_eq!(get(b, "/app/counter", None).await.status, 200);

    // Installed later on node 2: its state transfer fetches node 1's session.
    let done = c.node(2).node.install_context(shop(), parts(1));
    assert_eq!(done.ok(), Some(Installed::Created));
    eventually(
        "node2 has node1's /shop session",
        Duration::from_secs(10),
        || holds(&c, 2, "/shop", &sid),
    )
    .await;
    let r = get(b, "/shop/count", Some(&sid)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "version=1 n=2"), "{r:?}");
    // ... and from now on it replicates both ways.
    let r = get(a, "/shop/count", Some(&sid)).await;
    assert_eq!(r.body, "version=1 n=3", "{r:?}");
    assert!(c.node(1).node.contexts().iter().any(|x| x.path == "/shop"));

    assert!(
        c.node(1)
            .node
            .remove_context("/shop", Duration::from_secs(1))
            .await
    );
    assert!(
        !c.node(1)
            .node
            .remove_context("/shop", Duration::from_secs(1))
            .await,
        "removing twice says there was nothing to remove"
    );
    assert_eq!(get(a, "/shop/count", Some(&sid)).await.status, 404);
    assert!(c.node(1).node.registry().service("/shop").is_none());
    // The other node and the other context are untouched.
    assert_eq!(
        get(b, "/shop/count", Some(&sid)).await.body,
        "version=1 n=4"
    );
    assert_eq!(get(a, "/app/counter", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replacing_under_load_fails_no_request_and_loses_no_session() {
    const CLIENTS: usize = 8;
    const REQUESTS: i64 = 60;
    let c = TestCluster::start(2, HttpConfig::default()).await;
    for i in 1..=2 {
        let done = c.node(i).node.install_context(shop(), parts(1));
        assert_eq!(done.ok(), Some(Installed::Created));
    }
    let addrs = [c.node(1).addr, c.node(2).addr];
    let progress = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for k in 0..CLIENTS {
        let addr = addrs[k % 2];
        let progress = progress.clone();
        clients.push(tokio::spawn(async move {
            let mut sid: Option<String> = None;
            let mut versions = Vec::new();
            for n in 1..=REQUESTS {
                let r = get(addr, "/shop/count", sid.as_deref()).await;
                assert_eq!(r.status, 200, "client {k} request {n}: {r:?}");
                assert_eq!(
                    r.field("n"),
                    Some(n.to_string().as_str()),
                    "client {k}: the session went on counting: {r:?}"
                );
                if sid.is_none() {
                    sid = r.session_id();
                }
                versions.push(r.field("version").unwrap_or("").to_string());
                progress.fetch_add(1, Ordering::Relaxed);
            }
            versions
        }));
    }
    // Redeploys while the clients run, spread over their requests: versions 2..=6 on both
    // nodes, each keeping the session manager (same session settings).
    let nodes = [c.node(1).node.clone(), c.node(2).node.clone()];
    let total = CLIENTS * REQUESTS as usize;
    for v in 2..=6u32 {
        let at = total * (v as usize - 1) / 6;
        eventually(
            &format!("{at} requests answered before version {v}"),
            Duration::from_secs(30),
            || progress.load(Ordering::Relaxed) >= at,
        )
        .await;
        for n in &nodes {
            let done = n.install_context(shop(), parts(v));
            assert_eq!(done.ok(), Some(Installed::Replaced), "version {v}");
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for client in clients {
        let versions = client.await.unwrap_or_else(|e| panic!("client: {e}"));
        let nums: Vec<u32> = versions.iter().filter_map(|v| v.parse().ok()).collect();
        assert_eq!(nums.len(), versions.len(), "every answer named its version");
        assert!(
            nums.windows(2).all(|w| w[0] <= w[1]),
            "a client never went back to an older version: {nums:?}"
        );
        seen.extend(nums);
    }
    assert!(
        seen.len() >= 3,
        "the clients ran across the redeploys: versions seen {seen:?}"
    );
    // After the last redeploy every new request sees version 6.
    let r = get(addrs[0], "/shop/count", None).await;
    assert_eq!(r.field("version"), Some("6"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_are_served_under_the_context_before_its_application() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::write(dir.path().join("index.html"), "<h1>site</h1>")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("css")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("css/site.css"), "body{}").unwrap_or_else(|e| panic!("{e}"));
    let c = TestCluster::start(1, HttpConfig::default()).await;
    let a = c.node(1).addr;
    let ctx = ContextConfig {
        path: "/site".into(),
        ..ContextConfig::default()
    };
    let files = StaticFiles::scan(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let parts = ContextParts {
        static_files: Some(files.clone()),
        ..ContextParts::default()
    };
    let done = c.node(1).node.install_context(ctx, parts);
    assert_eq!(done.ok(), Some(Installed::Created));

    let r = get(a, "/site/css/site.css", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "body{}"), "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/css"), "{r:?}");
    assert!(
        r.session_id().is_none(),
        "static files touch no session: {r:?}"
    );
    let etag = files.etag("css/site.css").map(str::to_string);
    assert!(
        etag.is_some() && r.header("etag") == etag.as_deref(),
        "{r:?}"
    );
    // Revalidation of an unchanged file: 304 with the same ETag, no body.
    let r = get_with(
        a,
        "/site/css/site.css",
        None,
        &[("if-none-match", etag.as_deref().unwrap_or(""))],
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (304, ""), "{r:?}");
    assert_eq!(r.header("etag"), etag.as_deref(), "{r:?}");
    let r = get_with(
        a,
        "/site/css/site.css",
        None,
        &[("if-none-match", "\"stale\"")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = get(a, "/site/", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "<h1>site</h1>"), "{r:?}");
    // Not a file: the application (the bench app) answers.
    let r = get(a, "/site/counter", None).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("1")), "{r:?}");
    // No way out of the directory.
    let r = get(a, "/site/../Cargo.toml", None).await;
    assert_ne!(r.status, 200, "{r:?}");
    let r = get(a, "/site/%2e%2e/%2e%2e/etc/passwd", None).await;
    assert_ne!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_install_is_refused_with_the_reason_and_changes_nothing() {
    let c = TestCluster::start(1, HttpConfig::default()).await;
    let node = &c.node(1).node;
    let bad_path = ContextConfig {
        path: "shop/".into(),
        ..shop()
    };
    assert!(matches!(
        node.install_context(bad_path, parts(1)),
        Err(ConfigError::BadPath(_))
    ));
    let msg = StaticFiles::scan("/nonexistent/shoal-static".as_ref())
        .err()
        .unwrap_or_default();
    assert!(msg.contains("/nonexistent/shoal-static"), "{msg}");
    let unknown_app = ContextConfig {
        app: "nope".into(),
        ..shop()
    };
    assert!(matches!(
        node.install_context(unknown_app, ContextParts::default()),
        Err(ConfigError::UnknownApp { .. })
    ));
    assert!(node.registry().service("/shop").is_none());
    assert_eq!(get(c.node(1).addr, "/shop/count", None).await.status, 404);
    // A context of the configuration is replaced like any other.
    let app_ctx = HttpConfig::default().contexts[0].clone();
    let done = node.install_context(
        ContextConfig {
            app: "versioned".into(),
            ..app_ctx
        },
        ContextParts {
            app: Some(Arc::new(Versioned(9))),
            ..ContextParts::default()
        },
    );
    assert_eq!(done.ok(), Some(Installed::Replaced));
    let r = get(c.node(1).addr, "/app/count", None).await;
    assert_eq!(r.body, "version=9 n=1", "{r:?}");
}
