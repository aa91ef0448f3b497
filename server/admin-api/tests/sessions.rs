//! Cluster, contexts, sessions and statistics endpoints against the fake cluster.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use shoal_admin::MemberState;

#[tokio::test]
async fn members_local_health_and_readiness() {
    let (app, backend) = app();
    let members = get(&app, "/api/v1/cluster/members").await.json();
    let members = members.as_array().expect("array");
    assert_eq!(members.len(), 3);
    assert!(members
        .iter()
        .all(|m| m["state"] == "alive" && m["since"].as_str().is_some_and(|s| s.ends_with('Z'))));
    assert_eq!(members.iter().filter(|m| m["local"] == true).count(), 1);
    let local = get(&app, "/api/v1/cluster/local").await.json();
    assert_eq!(local["member"]["name"], "node1");

    backend
        .set_member_state("node3", MemberState::Gone, "TCP check failed")
        .expect("node3");
    let members = get(&app, "/api/v1/cluster/members").await.json();
    let node3 = &members[2];
    assert_eq!(
        (node3["state"].as_str(), node3["reason"].as_str()),
        (Some("gone"), Some("TCP check failed"))
    );

    assert_eq!(get(&app, "/api/v1/ready").await.status, StatusCode::OK);
    backend.set_ready(false);
    let r = get(&app, "/api/v1/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["ready"], false);
    let health = get(&app, "/api/v1/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(health.json()["checks"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn contexts_and_pipeline_reorder() {
    let (app, _) = app();
    let contexts = get(&app, "/api/v1/contexts").await.json();
    assert_eq!(contexts.as_array().map(Vec::len), Some(3));
    let cart = get(&app, "/api/v1/contexts/cart").await.json();
    assert_eq!(cart["manager"], "persistent");
    let app_ctx = get(&app, "/api/v1/contexts/app").await.json();
    assert_eq!(
        (app_ctx["manager"].as_str(), app_ctx["replication"].as_str()),
        (Some("delta"), Some("sync"))
    );
    let names = |c: &serde_json::Value| -> Vec<String> {
        c["pipeline"]
            .as_array()
            .expect("pipeline")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(
        names(&app_ctx),
        [
            "url-filter",
            "ReplicationValve",
            "JvmRouteBinderValve",
            "app"
        ]
    );

    let order = serde_json::json!({"order": ["ReplicationValve", "url-filter", "JvmRouteBinderValve", "app"]});
    let r = admin_json(&app, Method::PUT, "/api/v1/contexts/app/pipeline", order).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(names(&r.json())[..2], ["ReplicationValve", "url-filter"]);
    assert_eq!(
        names(&get(&app, "/api/v1/contexts/app").await.json())[0],
        "ReplicationValve"
    );

    let stale = serde_json::json!({"order": ["ReplicationValve", "app"]});
    let detail = admin_json(&app, Method::PUT, "/api/v1/contexts/app/pipeline", stale)
        .await
        .problem(409);
    assert!(
        detail.contains("JvmRouteBinderValve"),
        "names the current stages: {detail}"
    );

    let detail = get(&app, "/api/v1/contexts/nope").await.problem(404);
    assert!(detail.contains("known: app, shop"), "{detail}");
}

#[tokio::test]
async fn sessions_are_paged_and_filtered() {
    let (app, _) = app();
    let page = get(&app, "/api/v1/contexts/app/sessions?limit=10&offset=5")
        .await
        .json();
    assert_eq!(page["total"], 48);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(10));
    assert_eq!(page["offset"], 5);

    let first_id = page["items"][0]["id"].as_str().expect("id").to_owned();
    let by_prefix = get(
        &app,
        &format!("/api/v1/contexts/app/sessions?prefix={}", &first_id[..6]),
    )
    .await
    .json();
    assert!(by_prefix["items"]
        .as_array()
        .is_some_and(|i| i.iter().all(|s| s["id"]
            .as_str()
            .is_some_and(|id| id.starts_with(&first_id[..6])))));
    assert!(by_prefix["total"].as_u64().is_some_and(|t| t >= 1));

    let idle = get(
        &app,
        "/api/v1/contexts/app/sessions?min_idle_secs=600&limit=500",
    )
    .await
    .json();
    let items = idle["items"].as_array().expect("items");
    assert!(!items.is_empty() && items.len() < 48, "{}", items.len());
    assert!(items
        .iter()
        .all(|s| s["idle_ms"].as_u64().is_some_and(|ms| ms >= 600_000)));

    let shop_on_node2 = get(&app, "/api/v1/contexts/shop/sessions?node=node2&limit=500")
        .await
        .json();
    let items = shop_on_node2["items"].as_array().expect("items");
    assert!(!items.is_empty() && items.len() < 23);
    assert!(items.iter().all(|s| s["primary"] == "node2"
        || s["backups"]
            .as_array()
            .is_some_and(|b| b.iter().any(|n| n == "node2"))));

    for bad in [
        "limit=0",
        "limit=501",
        "limit=x",
        "offset=-1",
        "colour=blue",
    ] {
        let detail = get(&app, &format!("/api/v1/contexts/app/sessions?{bad}"))
            .await
            .problem(400);
        assert!(!detail.is_empty(), "{bad}");
    }
}

#[tokio::test]
async fn session_detail_shows_text_json_and_hex_then_expires() {
    let (app, _) = app();
    let page = get(&app, "/api/v1/contexts/app/sessions?limit=500")
        .await
        .json();
    let with_blob = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["attribute_count"] == 4)
        .expect("a session with a blob")
        .clone();
    let id = with_blob["id"].as_str().expect("id");
    let detail = get(&app, &format!("/api/v1/contexts/app/sessions/{id}"))
        .await
        .json();
    let attrs = detail["attributes"].as_array().expect("attributes");
    let by_name = |n: &str| attrs.iter().find(|a| a["name"] == n).expect(n).clone();
    assert!(by_name("user")["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("user")));
    assert!(by_name("cart")["json"]["items"].is_array());
    let blob = by_name("blob");
    assert!(blob["text"].is_null(), "binary is not text");
    assert_eq!(blob["hex"].as_str().map(|h| &h[..8]), Some("00010203"));
    assert_eq!(
        blob["hex"].as_str().map(str::len),
        blob["size_bytes"].as_u64().map(|n| 2 * n as usize)
    );

    let uri = format!("/api/v1/contexts/app/sessions/{id}");
    assert_eq!(
        admin(&app, Method::DELETE, &uri).await.status,
        StatusCode::NO_CONTENT
    );
    get(&app, &uri).await.problem(404);
    admin(&app, Method::DELETE, &uri).await.problem(404);
    assert_eq!(
        get(&app, "/api/v1/contexts/app/sessions").await.json()["total"],
        47
    );

    let all = admin(&app, Method::DELETE, "/api/v1/contexts/shop/sessions")
        .await
        .json();
    assert_eq!(all["expired"], 23);
    assert_eq!(
        get(&app, "/api/v1/contexts/shop/sessions").await.json()["total"],
        0
    );
}

#[tokio::test]
async fn counts_per_node_add_up() {
    let (app, _) = app();
    let counts = get(&app, "/api/v1/sessions/counts").await.json();
    let counts = counts.as_array().expect("array");
    let sum = |ctx: &str, field: &str| {
        counts
            .iter()
            .filter(|c| c["context"] == ctx)
            .map(|c| c[field].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(sum("app", "primary"), 48);
    assert_eq!(
        sum("app", "backup"),
        96,
        "delta: 2 backups per session on 3 nodes"
    );
    assert_eq!(sum("shop", "primary"), 23);
    assert_eq!(sum("shop", "backup"), 23, "backup manager: 1 backup");
}

#[tokio::test]
async fn stats_and_reset() {
    let (app, _) = app();
    let stats = get(&app, "/api/v1/contexts/app/stats").await.json();
    assert_eq!(stats["sessions_active"], 48);
    assert!(stats["messages_sent"]["delta"]
        .as_u64()
        .is_some_and(|n| n > 0));
    assert_eq!(
        admin(&app, Method::POST, "/api/v1/contexts/app/stats/reset")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let stats = get(&app, "/api/v1/contexts/app/stats").await.json();
    assert_eq!(stats["sessions_created"], 0);
    assert_eq!(stats["sessions_active"], 48, "gauges survive a reset");
    assert!(stats["messages_sent"]
        .as_object()
        .is_some_and(|m| m.is_empty()));
    admin(&app, Method::POST, "/api/v1/contexts/nope/stats/reset")
        .await
        .problem(404);
    let app_store = &get(&app, "/api/v1/contexts/app/stats").await.json()["store"];
    assert!(
        app_store.is_null(),
        "no store, no `store` field: {app_store}"
    );
    let cart = get(&app, "/api/v1/contexts/cart/stats").await.json();
    assert_eq!(cart["store"]["role"], "persistent", "{cart}");
    assert_eq!(cart["store"]["name"], "sqlite", "{cart}");
    assert!(cart["store"]["degraded"].is_null(), "{cart}");
}
