//! The session store of a context as the admin API, health and /metrics show it: a
//! persistent context (the conformance suite's store behaviour, on SQLite) and a store outage
//! of a persistent and a write-behind context (file stores whose directory is replaced by a
//! plain file, then put back).
mod common;

use common::{admin_url, call, get, http_url, start_node_with, ADMIN, READ};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use shoal_admin::testing::suite;
use shoal_http::ContextConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("shoal-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A context at `path` with `manager` and a store given as TOML lines of `[session.store]`.
fn context(path: &str, manager: &str, store: &str) -> ContextConfig {
    let toml = format!(
        "path = \"{path}\"\n[session]\nmanager = \"{manager}\"\n[session.store]\n{store}\n"
    );
    toml::from_str(&toml).unwrap_or_else(|e| panic!("{path} parses: {e}"))
}

fn toml_path(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// `/cart`: `manager = "persistent"` on an SQLite file in `dir`.
fn cart(dir: &Path) -> ContextConfig {
    let db = toml_path(&dir.join("sessions.db"));
    context(
        "/cart",
        "persistent",
        &format!("kind = \"sqlite\"\npath = {db}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_context_shows_its_store() {
    let dir = TempDir::new("admin-persistent");
    let node = start_node_with("solo", 0, &[], vec![cart(&dir.0)]).await;
    assert!(
        node.http
            .registry()
            .wait_ready(Duration::from_secs(10))
            .await,
        "a lone node is ready"
    );
    let c = shoal_testkit::http_client();
    for _ in 0..3 {
        let r = c
            .get(http_url(&node, "/cart/counter"))
            .send()
            .await
            .expect("counter");
        assert_eq!(r.status(), StatusCode::OK);
    }
    suite::a_persistent_context_reports_its_store(node.admin.as_ref(), "cart").await;
    // The same over HTTP: the kind, the store in the stats, the per-node counts, /metrics.
    let (status, ctx) = get(&c, &admin_url(&node, "/api/v1/contexts/cart"), READ).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctx["manager"], "persistent", "{ctx}");
    assert_eq!(ctx["active_sessions"], 3, "{ctx}");
    let (_, counts) = get(&c, &admin_url(&node, "/api/v1/sessions/counts"), READ).await;
    let cart_primary: u64 = counts
        .as_array()
        .expect("counts")
        .iter()
        .filter(|x| x["context"] == "cart")
        .map(|x| x["primary"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        cart_primary, 3,
        "the sessions held in memory here: {counts}"
    );
    // An operator expires one: gone from memory and from the store.
    let (_, page) = get(
        &c,
        &admin_url(&node, "/api/v1/contexts/cart/sessions"),
        READ,
    )
    .await;
    let victim = page["items"][0]["id"]
        .as_str()
        .expect("a listed session")
        .to_owned();
    let uri = admin_url(&node, &format!("/api/v1/contexts/cart/sessions/{victim}"));
    let (status, body) = call(&c, reqwest::Method::DELETE, &uri, ADMIN).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = get(&c, &uri, READ).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "expired");
    let (_, stats) = get(&c, &admin_url(&node, "/api/v1/contexts/cart/stats"), READ).await;
    assert_eq!(stats["store"]["in_memory"], 2, "{stats}");
    assert_eq!(stats["store"]["stored"], 2, "the row is removed: {stats}");
    let metrics = c
        .get(admin_url(&node, "/metrics"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for line in [
        r#"shoal_store_degraded{context="cart",store="sqlite",role="persistent"} 0"#,
        r#"shoal_store_queue_depth{context="cart",store="sqlite",role="persistent"} 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in /metrics"
        );
    }
    assert!(
        metrics.lines().any(
            |l| l.starts_with(r#"shoal_store_saves_total{context="cart""#) && !l.ends_with(" 0")
        ),
        "saves counted"
    );
    assert!(
        !metrics.contains(r#"shoal_store_degraded{context="app""#),
        "a context without a store has no store samples"
    );
    node.shutdown().await;
}

/// Takes a file store's directory away (a plain file stands in its place, so the store cannot
/// recreate it) and puts it back with its rows.
struct Outage {
    dir: PathBuf,
    away: PathBuf,
}

impl Outage {
    fn start(dir: &Path) -> Self {
        let away = dir.with_extension("away");
        std::fs::rename(dir, &away).expect("move the store directory away");
        std::fs::write(dir, b"not a directory").expect("a file in its place");
        Outage {
            dir: dir.to_owned(),
            away,
        }
    }

    fn end(self) {
        std::fs::remove_file(&self.dir).expect("remove the stand-in file");
        std::fs::rename(&self.away, &self.dir).expect("put the store directory back");
    }
}

/// The `store:<path>` check of the node's health.
async fn store_check(c: &Client, node: &shoal_node::RunningNode, path: &str) -> (String, Value) {
    let (_, health) = get(c, &admin_url(node, "/api/v1/health"), READ).await;
    let check = health["checks"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["name"] == format!("store:{path}"))
                .cloned()
        })
        .unwrap_or(Value::Null);
    (health["status"].as_str().unwrap_or("").to_owned(), check)
}

/// Waits (15 s at most) until the `store:<path>` check passes (`ok`) or fails with the
/// node's health `degraded` (`!ok`); fails the test with the last check seen.
async fn wait_for_check(c: &Client, node: &shoal_node::RunningNode, path: &str, ok: bool) {
    let within = Duration::from_secs(15);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, check) = store_check(c, node, path).await;
        if check["ok"] == ok && (ok || status == "degraded") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "store:{path} did not become ok={ok} in {within:?}; health {status}, check {check}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn counter(
    c: &Client,
    node: &shoal_node::RunningNode,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut req = c.get(http_url(node, &format!("{path}/counter")));
    if let Some(k) = cookie {
        req = req.header("cookie", k);
    }
    let r = req.send().await.expect("counter request");
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (r.status(), set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_shows_as_degraded_and_recovers() {
    let tmp = TempDir::new("admin-outage");
    let (wb_dir, pf_dir) = (tmp.0.join("wb"), tmp.0.join("pf"));
    let file = |d: &Path| format!("kind = \"file\"\ndirectory = {}", toml_path(d));
    let node = start_node_with(
        "solo",
        0,
        &[],
        vec![
            context("/wb", "delta", &file(&wb_dir)),
            context("/pf", "persistent", &file(&pf_dir)),
        ],
    )
    .await;
    assert!(
        node.http
            .registry()
            .wait_ready(Duration::from_secs(10))
            .await,
        "ready"
    );
    let c = shoal_testkit::http_client();
    let (s, wb_cookie) = counter(&c, &node, "/wb", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, pf_cookie) = counter(&c, &node, "/pf", None).await;
    assert_eq!(s, StatusCode::OK);
    let (wb_cookie, pf_cookie) = (wb_cookie.expect("wb cookie"), pf_cookie.expect("pf cookie"));
    for path in ["/wb", "/pf"] {
        let (_, check) = store_check(&c, &node, path).await;
        assert_eq!(
            check["ok"], true,
            "store:{path} passes while the store is up: {check}"
        );
    }
    let (status, _) = store_check(&c, &node, "/wb").await;
    assert_eq!(status, "ok");

    let wb_out = Outage::start(&wb_dir);
    let pf_out = Outage::start(&pf_dir);
    // Sticky and replicated contexts keep serving from memory; the writes wait in the queue.
    let (s, _) = counter(&c, &node, "/wb", Some(&wb_cookie)).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "write-behind serves while its store is down"
    );
    let (s, _) = counter(&c, &node, "/pf", Some(&pf_cookie)).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a sticky persistent context serves from memory"
    );
    for path in ["/wb", "/pf"] {
        wait_for_check(&c, &node, path, false).await;
    }
    let (_, stats) = get(&c, &admin_url(&node, "/api/v1/contexts/wb/stats"), READ).await;
    let st = &stats["store"];
    assert_eq!(st["role"], "write-behind", "{stats}");
    assert_eq!(st["name"], "file", "{stats}");
    assert!(
        st["degraded"].is_string() && st["last_error"].is_string(),
        "{stats}"
    );
    assert!(
        st["queue_depth"].as_u64().is_some_and(|n| n >= 1),
        "the change waits: {stats}"
    );
    assert!(st["errors"].as_u64().is_some_and(|n| n >= 1), "{stats}");
    let (_, stats) = get(&c, &admin_url(&node, "/api/v1/contexts/pf/stats"), READ).await;
    assert_eq!(stats["store"]["role"], "persistent", "{stats}");
    assert!(stats["store"]["degraded"].is_string(), "{stats}");
    let metrics = c
        .get(admin_url(&node, "/metrics"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for line in [
        r#"shoal_store_degraded{context="wb",store="file",role="write-behind"} 1"#,
        r#"shoal_store_degraded{context="pf",store="file",role="persistent"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in:\n{metrics}"
        );
    }

    wb_out.end();
    pf_out.end();
    for path in ["/wb", "/pf"] {
        wait_for_check(&c, &node, path, true).await;
    }
    let (_, stats) = get(&c, &admin_url(&node, "/api/v1/contexts/wb/stats"), READ).await;
    assert_eq!(
        stats["store"]["queue_depth"], 0,
        "the queue drained: {stats}"
    );
    assert!(stats["store"]["degraded"].is_null(), "{stats}");
    assert!(
        stats["store"]["last_error"].is_string(),
        "the last error is kept: {stats}"
    );
    node.shutdown().await;
}
