//! Plugins loaded through the admin API of running nodes, where the bench app is itself a
//! Wasm valve on `/app` (as in the release demo): a new valve is placed where it runs
//! (before the application) unless told otherwise, and warned about when it cannot run;
//! one default failure policy; `replace=true` applies every field given; the WIT version
//! and the reload generation shown apart. A farm-deployed plugin is placed too: a valve
//! before the application, or where its metadata `before`/`after` says.
mod common;
mod plugins_support;

use common::{admin_url, get, http_url, put, ADMIN, READ};
use plugins_support::{contexts, example, parts, shutdown};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use shoal_admin::AdminConfig;
use shoal_node::RunningNode;
use shoal_testkit::poll;
use std::time::Duration;
use tokio::net::TcpListener;

const TOKEN: &str = "let-me-in";

/// Two nodes with `/app` served by the Wasm bench app (plugin `bench-app`), admin API on.
async fn two_nodes() -> Vec<RunningNode> {
    let mut nodes: Vec<RunningNode> = Vec::new();
    for i in 1..=2 {
        let members: Vec<String> = nodes
            .iter()
            .map(|n| n.channel.local().addr.to_string())
            .collect();
        let mut app = example("bench-app", "bench-app", &[]);
        app.contexts = vec!["/app".into()];
        let mut p = parts(
            &format!("node{i}"),
            0,
            &members,
            contexts(&["/app"], 1800),
            vec![app],
        );
        p.admin = Some(AdminConfig {
            admin_token: Some(ADMIN.into()),
            read_token: Some(READ.into()),
            ..AdminConfig::default()
        });
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let node = shoal_node::start(p, http, Some(admin))
            .await
            .unwrap_or_else(|e| panic!("node{i} starts: {e:#}"));
        nodes.push(node);
    }
    for n in &nodes {
        let all = poll(Duration::from_secs(10), || n.channel.members().len() == 1).await;
        assert!(
            all,
            "{} sees {:?}",
            n.channel.local().name,
            n.channel.members()
        );
        let ready = n.http.registry().wait_ready(Duration::from_secs(30)).await;
        assert!(ready, "{} not ready in 30 s", n.channel.local().name);
    }
    nodes
}

async fn load(
    c: &Client,
    node: &RunningNode,
    query: &[(&str, &str)],
    example: &str,
) -> (StatusCode, Value) {
    let bytes = shoal_plugin_host::examples::component(example)
        .unwrap_or_else(|why| panic!("example {example} needed: {why}"));
    let r = c
        .post(admin_url(node, "/api/v1/plugins"))
        .query(query)
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("load answered");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// GET `/app/counter` with the bearer token: status and the auth valve's response header.
async fn counter(c: &Client, node: &RunningNode, header: &str) -> (u16, Option<String>) {
    let r = c
        .get(http_url(node, "/app/counter"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET /app/counter");
    let h = r
        .headers()
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), h)
}

fn stage_names(ctx: &Value) -> Vec<String> {
    ctx["pipeline"]
        .as_array()
        .expect("pipeline")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loaded_valves_run_before_the_app_and_replace_applies_every_field() {
    let nodes = two_nodes().await;
    let c = shoal_testkit::http_client();
    // The bench app answers everything: it is the context's application.
    for _ in 0..3 {
        assert_eq!(counter(&c, &nodes[0], "x-shoal-auth").await.0, 200);
    }

    // Problem 3: loaded with no position, the valve runs before the Wasm app on every node.
    let cfg = format!(r#"{{"token":"{TOKEN}"}}"#);
    let (s, p) = load(
        &c,
        &nodes[0],
        &[
            ("name", "auth"),
            ("world", "valve"),
            ("attach", "app"),
            ("config", &cfg),
        ],
        "auth-valve",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["warnings"], serde_json::json!([]), "{p}");
    for n in &nodes {
        assert_eq!(
            counter(&c, n, "x-shoal-auth").await,
            (200, Some("passed".into())),
            "the valve did not run before the app on {}",
            n.channel.local().name
        );
    }
    let (_, ctx) = get(&c, &admin_url(&nodes[1], "/api/v1/contexts/app"), READ).await;
    let names = stage_names(&ctx);
    let pos = |n: &str| names.iter().position(|x| x == n);
    assert!(pos("auth") < pos("bench-app"), "{names:?}");

    // Problem 4: one default policy (the documented fail-closed), default limits.
    assert_eq!(p["policy"], "fail-closed", "{p}");
    assert_eq!(p["limits"]["memory_bytes"], 16 << 20, "{p}");
    // Problem 5: the WIT package version and the reload generation, named apart.
    assert_eq!(p["wit_version"], "0.2.0", "{p}");
    assert_eq!(p["generation"], 1, "{p}");
    assert!(
        p.get("version").is_none(),
        "an ambiguous `version` is back: {p}"
    );

    // Placed after the app on purpose: the node says it can never run there.
    let late_cfg = format!(r#"{{"token":"{TOKEN}","response-header":"x-late"}}"#);
    let (s, late) = load(
        &c,
        &nodes[1],
        &[
            ("name", "late"),
            ("world", "valve"),
            ("attach", "app"),
            ("after", "bench-app"),
            ("config", &late_cfg),
        ],
        "auth-valve",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{late}");
    let warning = late["warnings"][0].as_str().unwrap_or_default().to_owned();
    assert!(
        warning.contains("never runs") && warning.contains("bench-app"),
        "{late}"
    );
    assert_eq!(counter(&c, &nodes[0], "x-late").await, (200, None));

    // A position naming no stage: 404 with the stages to choose from.
    let lost = [
        ("name", "lost"),
        ("world", "valve"),
        ("attach", "app"),
        ("before", "nope"),
    ];
    let (s, e) = load(&c, &nodes[0], &lost, "auth-valve").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert!(
        e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("ReplicationValve"),
        "{e}"
    );

    // Problem 4: replace=true with a new policy and limits changes them (config is kept),
    // and the generation moves on every node.
    let (s, r) = load(
        &c,
        &nodes[1],
        &[
            ("name", "auth"),
            ("world", "valve"),
            ("replace", "true"),
            ("policy", "reload"),
            ("memory_mib", "32"),
            ("label", "build-7"),
        ],
        "auth-valve",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["policy"], "reload", "{r}");
    assert_eq!(r["limits"]["memory_bytes"], 32 << 20, "{r}");
    assert_eq!(r["label"], "build-7", "{r}");
    for n in &nodes {
        let (_, p) = get(&c, &admin_url(n, "/api/v1/plugins/auth"), READ).await;
        assert_eq!(p["policy"], "reload", "{} {p}", n.channel.local().name);
        assert!(
            p["generation"].as_u64() >= Some(2),
            "{} {p}",
            n.channel.local().name
        );
        assert_eq!(
            counter(&c, n, "x-shoal-auth").await,
            (200, Some("passed".into())),
            "config kept, still before the app"
        );
    }

    // Problem 3 through the farm too: a valve deployed as a plugin artifact runs before the
    // Wasm app on every node (the rate limiter adds its header to every request it sees).
    let bytes = shoal_plugin_host::examples::component("rate-limit")
        .unwrap_or_else(|why| panic!("example rate-limit needed: {why}"));
    let query = "kind=plugin&meta.contexts=/app&meta.config.create-session=true";
    let (s, d) = put(
        &c,
        &admin_url(
            &nodes[0],
            &format!("/api/v1/deployments/farm-limit?{query}"),
        ),
        bytes,
    )
    .await;
    assert!(s.is_success(), "deploy: {s} {d}");
    for n in &nodes {
        let name = n.channel.local().name.clone();
        let live = poll(Duration::from_secs(10), || {
            n.plugins.registry.info("farm-limit").is_ok()
        })
        .await;
        assert!(live, "farm-limit not live on {name} in 10 s");
        let (status, remaining) = counter(&c, n, "x-ratelimit-remaining").await;
        assert!(
            status == 200 && remaining.is_some(),
            "the farm-deployed valve did not run before the app on {name}: {status} {remaining:?}"
        );
    }

    // A plugin artifact's place (issue 11: "where it goes"): metadata `after` a plugin, or
    // `before = app` (last), on every node; a name no node has is refused before staging.
    let filter = shoal_plugin_host::examples::component("url-filter")
        .unwrap_or_else(|why| panic!("example url-filter needed: {why}"));
    for (name, query) in [
        ("farm-next", "kind=plugin&meta.after=farm-limit"),
        ("farm-last", "kind=plugin&meta.before=app"),
    ] {
        let url = admin_url(&nodes[1], &format!("/api/v1/deployments/{name}?{query}"));
        let (s, d) = put(&c, &url, filter.clone()).await;
        assert!(s.is_success(), "deploy {name}: {s} {d}");
    }
    for n in &nodes {
        let who = n.channel.local().name.clone();
        let placed = poll(Duration::from_secs(10), || {
            let order = n.plugins.names_except("");
            let at = |x: &str| order.iter().position(|p| p == x);
            at("farm-next").is_some_and(|i| at("farm-limit") == Some(i.wrapping_sub(1)))
                && order.last().map(String::as_str) == Some("farm-last")
        })
        .await;
        let order = n.plugins.names_except("");
        assert!(
            placed,
            "{who}: farm-next right after farm-limit, farm-last last: {order:?}"
        );
    }
    let url = admin_url(
        &nodes[0],
        "/api/v1/deployments/farm-lost?kind=plugin&meta.before=nope",
    );
    let (s, d) = put(&c, &url, filter.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{d}");
    let detail = d["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("metadata `before` = \"nope\"") && detail.contains("nothing was activated"),
        "{d}"
    );
    for n in &nodes {
        assert!(
            n.plugins.registry.info("farm-lost").is_err(),
            "farm-lost loaded somewhere"
        );
    }
    shutdown(nodes).await;
}
