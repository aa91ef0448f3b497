//! The admin API of real nodes, continued: BackupManager placement and deployments.
mod common;

use common::{admin_url, call, cluster, get, http_url, put, ADMIN, READ};
use reqwest::StatusCode;
use serde_json::Value;

/// BackupManager placement: a /shop session made on node1 has node1 as primary and one
/// backup, and the node holding the backup says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_sessions_show_primary_and_backup() {
    let nodes = cluster().await;
    let c = shoal_testkit::http_client();
    let r = c
        .get(http_url(&nodes[0], "/shop/counter"))
        .send()
        .await
        .expect("counter");
    assert_eq!(r.status(), StatusCode::OK);
    let (_, page) = get(
        &c,
        &admin_url(&nodes[0], "/api/v1/contexts/shop/sessions"),
        READ,
    )
    .await;
    assert_eq!(page["total"], 1, "{page}");
    let s = &page["items"][0];
    assert_eq!(s["primary"], "node1", "{page}");
    let backups = s["backups"].as_array().expect("backups").clone();
    assert_eq!(backups.len(), 1, "{page}");
    let holder = nodes
        .iter()
        .find(|n| backups[0] == n.channel.local().name.as_str())
        .expect("backup node");
    let (_, page) = get(
        &c,
        &admin_url(holder, "/api/v1/contexts/shop/sessions"),
        READ,
    )
    .await;
    assert_eq!(page["items"][0]["primary"], "node1", "{page}");
    let (_, counts) = get(&c, &admin_url(&nodes[2], "/api/v1/sessions/counts"), READ).await;
    let row = |node: &Value| {
        counts
            .as_array()
            .expect("array")
            .iter()
            .find(|x| x["context"] == "shop" && x["node"] == *node)
            .cloned()
            .expect("row")
    };
    // node3 reports from its own copies; it holds one only if it is the backup.
    if backups[0] == "node3" {
        assert_eq!(row(&Value::from("node1"))["primary"], 1, "{counts}");
        assert_eq!(row(&Value::from("node3"))["backup"], 1, "{counts}");
    }
    for n in nodes {
        n.shutdown().await;
    }
}

/// Deploy hooks veto (on every node, before staging: nothing activates); non-components are
/// refused by the test instantiation; a component deploys as a plugin on every node through
/// the farm and undeploys from every node, from any node; the hooks' after-deploy and
/// after-undeploy run on every node; bytes already held are admitted again (vetoed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_run_hooks_and_apply_everywhere() {
    let (guard, filter) = match (
        shoal_plugin_host::examples::component("deploy-guard"),
        shoal_plugin_host::examples::component("url-filter"),
    ) {
        (Ok(g), Ok(f)) => (g, f),
        (Err(why), _) | (_, Err(why)) => panic!("the example plugins this test deploys: {why}"),
    };
    let nodes = cluster().await;
    let c = shoal_testkit::http_client();
    let limit = filter.len() - 1;
    let r = c
        .post(admin_url(&nodes[0], "/api/v1/plugins"))
        .query(&[
            ("name", "guard"),
            ("world", "deploy-hook"),
            ("config", &format!("{{\"max-size\":\"{limit}\"}}")),
        ])
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .body(guard)
        .send()
        .await
        .expect("load guard");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );

    // Over the guard's limit: vetoed with its reason, nothing loaded.
    vetoed_everywhere(&c, &nodes, 1, "filter2", filter.clone()).await;
    // Not a component: refused with the reason.
    let (s, p) = put(
        &c,
        &admin_url(&nodes[1], "/api/v1/deployments/notes.txt"),
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not a loadable plugin component")),
        "{p}"
    );

    // Raise the limit everywhere, deploy, see it on node3.
    set_guard_limit(&c, &nodes[2], 10_000_000).await;
    let (s, d) = put(
        &c,
        &admin_url(&nodes[1], "/api/v1/deployments/filter2"),
        filter.clone(),
    )
    .await;
    assert!(s.is_success(), "{s} {d}");
    let nodes_state = d["nodes"].as_array().expect("nodes");
    assert_eq!(nodes_state.len(), 3, "{d}");
    assert!(nodes_state.iter().all(|n| n["state"] == "active"), "{d}");
    let (s, p) = get(&c, &admin_url(&nodes[2], "/api/v1/plugins/filter2"), READ).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["world"], "url-filter", "{p}");
    // The hook's after-deploy ran once on every node (the guard counts it).
    for n in &nodes {
        guard_counted(&c, n, "deployed").await;
    }

    // Every node holds the catalog (node1 learns it from the rollout, or at the latest from
    // the next catalog exchange): any of them undeploys.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (s, _) = get(
            &c,
            &admin_url(&nodes[0], "/api/v1/deployments/filter2"),
            READ,
        )
        .await;
        if s == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node1 never listed filter2 ({s})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, b) = call(
        &c,
        reqwest::Method::DELETE,
        &admin_url(&nodes[0], "/api/v1/deployments/filter2"),
        ADMIN,
    )
    .await;
    assert!(s.is_success(), "{s} {b}");
    let (s, _) = get(&c, &admin_url(&nodes[2], "/api/v1/plugins/filter2"), READ).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // ...and its after-undeploy ran once on every node.
    for n in &nodes {
        guard_counted(&c, n, "undeployed").await;
    }

    // Bytes every node already holds are admitted again for a new rollout (the farm stages
    // known content at once): under another name, with the guard's limit lowered again,
    // they are vetoed and loaded nowhere.
    set_guard_limit(&c, &nodes[0], limit).await;
    vetoed_everywhere(&c, &nodes, 2, "filter3", filter).await;
    for n in nodes {
        n.shutdown().await;
    }
}

/// Deploying `bytes` as `name` through `nodes[via]` is vetoed by the deploy-guard (422 with
/// its reason) and the plugin is loaded on no node.
async fn vetoed_everywhere(
    c: &reqwest::Client,
    nodes: &[shoal_node::RunningNode],
    via: usize,
    name: &str,
    bytes: Vec<u8>,
) {
    let url = admin_url(&nodes[via], &format!("/api/v1/deployments/{name}"));
    let (s, p) = put(c, &url, bytes).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{name} not vetoed: {p}"
    );
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("over the limit")
                && d.contains("vetoed by a deploy hook")
                && d.contains("nothing was activated")),
        "{p}"
    );
    for n in nodes {
        let url = admin_url(n, &format!("/api/v1/plugins/{name}"));
        let (s, _) = get(c, &url, READ).await;
        let who = &n.channel.local().name;
        assert_eq!(s, StatusCode::NOT_FOUND, "vetoed {name} loaded on {who}");
    }
}

/// Sets the deploy-guard plugin `guard`'s `max-size` on every node (asked of `node`).
async fn set_guard_limit(c: &reqwest::Client, node: &shoal_node::RunningNode, max: usize) {
    let r = c
        .put(admin_url(node, "/api/v1/plugins/guard/config"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"max-size": max.to_string()}))
        .send()
        .await
        .expect("configure");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// The deploy-guard plugin `guard` on `node` counted `counter` exactly once (waits up to
/// 5 s: the coordinating node applies its own copy last, after the others confirmed).
async fn guard_counted(c: &reqwest::Client, node: &shoal_node::RunningNode, counter: &str) {
    let line = format!("shoal_plugin_counter_total{{plugin=\"guard\",name=\"{counter}\"}} 1");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, m) = get(c, &admin_url(node, "/metrics"), READ).await;
        let m = m.as_str().unwrap_or_default().to_owned();
        if m.lines().any(|l| l.trim() == line) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: no `{line}` in its metrics:\n{}",
            node.channel.local().name,
            m.lines()
                .filter(|l| l.contains("guard"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn stage_names(ctx: &Value) -> Vec<String> {
    ctx["pipeline"]
        .as_array()
        .expect("pipeline")
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect()
}

/// Two URL-filter plugins reordered through node1 are in the new order on node3; native
/// stages cannot move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_reorder_applies_everywhere() {
    let filter = shoal_plugin_host::examples::component("url-filter")
        .unwrap_or_else(|why| panic!("the url-filter example plugin: {why}"));
    let nodes = cluster().await;
    let c = shoal_testkit::http_client();
    for name in ["first", "second"] {
        let r = c
            .post(admin_url(&nodes[0], "/api/v1/plugins"))
            .query(&[("name", name), ("world", "url-filter"), ("attach", "app")])
            .bearer_auth(ADMIN)
            .header("content-type", "application/wasm")
            .body(filter.clone())
            .send()
            .await
            .expect("load");
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
    }
    let (_, ctx) = get(&c, &admin_url(&nodes[2], "/api/v1/contexts/app"), READ).await;
    let mut order = stage_names(&ctx);
    let (i, j) = (
        order.iter().position(|n| n == "first").expect("first"),
        order.iter().position(|n| n == "second").expect("second"),
    );
    assert!(i < j, "{order:?}");
    order.swap(i, j);
    let url = admin_url(&nodes[0], "/api/v1/contexts/app/pipeline");
    let r = c
        .put(&url)
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "order": order }))
        .send()
        .await
        .expect("reorder");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let (_, ctx) = get(&c, &admin_url(&nodes[2], "/api/v1/contexts/app"), READ).await;
    assert_eq!(stage_names(&ctx), order, "{ctx}");

    let mut bad = order.clone();
    bad.swap(0, 1);
    let r = c
        .put(&url)
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "order": bad }))
        .send()
        .await
        .expect("reorder");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    for n in nodes {
        n.shutdown().await;
    }
}
