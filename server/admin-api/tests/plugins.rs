//! Plugins, channel and deployments endpoints against the fake cluster.

mod common;

use axum::http::{Method, StatusCode};
use common::*;

async fn load(app: &axum::Router, query: &str, bytes: Vec<u8>) -> Reply {
    let uri = format!("/api/v1/plugins?{query}");
    call(
        app,
        Method::POST,
        &uri,
        Some(ADMIN),
        Some(("application/wasm", bytes)),
    )
    .await
}

fn stage_names(ctx: &serde_json::Value) -> Vec<String> {
    ctx["pipeline"]
        .as_array()
        .expect("pipeline")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn list_shows_digest_world_state_limits_failures() {
    let (app, _) = app();
    let plugins = get(&app, "/api/v1/plugins").await.json();
    let auth = plugins
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["name"] == "auth-valve")
        .expect("auth-valve")
        .clone();
    assert_eq!(auth["world"], "valve");
    assert_eq!(auth["state"], "enabled");
    assert_eq!(auth["digest"].as_str().map(str::len), Some(64));
    assert!(auth["limits"]["memory_bytes"]
        .as_u64()
        .is_some_and(|m| m > 0));
    assert_eq!(auth["failures"]["total"], 3);
    assert_eq!(auth["nodes"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn load_attaches_to_pipeline_and_unload_detaches() {
    let (app, _) = app();
    let r = load(
        &app,
        "name=rate-limit&world=valve&attach=shop&label=0.2.0&config=%7B%22per_minute%22%3A60%7D",
        component(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let p = r.json();
    assert_eq!(
        (
            p["label"].as_str(),
            p["config"]["per_minute"].as_u64(),
            p["policy"].as_str(),
            p["generation"].as_u64()
        ),
        (Some("0.2.0"), Some(60), Some("fail-closed"), Some(1))
    );
    assert_eq!(
        stage_names(&get(&app, "/api/v1/contexts/shop").await.json())[0],
        "rate-limit"
    );

    let detail = load(&app, "name=rate-limit&world=valve&attach=shop", component())
        .await
        .problem(409);
    assert!(detail.contains("replace=true"), "{detail}");
    let r = load(
        &app,
        "name=rate-limit&world=valve&attach=shop&replace=true&label=0.3.0&policy=reload",
        component(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let p = get(&app, "/api/v1/plugins/rate-limit").await.json();
    // Replace applies every field given and keeps the others.
    assert_eq!(
        (
            p["label"].as_str(),
            p["policy"].as_str(),
            p["config"]["per_minute"].as_u64(),
            p["generation"].as_u64()
        ),
        (Some("0.3.0"), Some("reload"), Some(60), Some(2))
    );

    assert_eq!(
        admin(&app, Method::DELETE, "/api/v1/plugins/rate-limit")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    get(&app, "/api/v1/plugins/rate-limit").await.problem(404);
    assert!(
        !stage_names(&get(&app, "/api/v1/contexts/shop").await.json())
            .contains(&"rate-limit".to_owned())
    );
}

#[tokio::test]
async fn load_refuses_non_components_bad_names_and_bad_config() {
    let (app, _) = app();
    let detail = load(&app, "name=x&world=valve", b"hello".to_vec())
        .await
        .problem(422);
    assert!(detail.contains("not a WebAssembly component"), "{detail}");
    let detail = load(&app, "name=x&world=valve", b"\0asm\x01\0\0\0".to_vec())
        .await
        .problem(422);
    assert!(detail.contains("shoal plugin build"), "{detail}");
    load(&app, "name=a%20b&world=valve", component())
        .await
        .problem(400);
    load(&app, "name=x&world=teapot", component())
        .await
        .problem(400);
    load(&app, "world=valve", component()).await.problem(400);
    let detail = load(&app, "name=x&world=valve&config=%5B1%5D", component())
        .await
        .problem(422);
    assert!(detail.contains("JSON object"), "{detail}");
    load(
        &app,
        "name=x&world=channel-interceptor&attach=app",
        component(),
    )
    .await
    .problem(422);
    load(&app, "name=x&world=valve&attach=nope", component())
        .await
        .problem(404);
}

#[tokio::test]
async fn enable_disable_reload_configure() {
    let (app, _) = app();
    let p = admin(&app, Method::POST, "/api/v1/plugins/url-filter/disable")
        .await
        .json();
    assert_eq!(p["state"], "disabled");
    assert!(
        p["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().all(|n| n["state"] == "disabled")),
        "applied on every node"
    );
    let ctx = get(&app, "/api/v1/contexts/app").await.json();
    assert_eq!(ctx["pipeline"][0]["enabled"], false);
    let p = admin(&app, Method::POST, "/api/v1/plugins/url-filter/enable")
        .await
        .json();
    assert_eq!(p["state"], "enabled");
    let p = admin(&app, Method::POST, "/api/v1/plugins/checksum/disable")
        .await
        .json();
    assert_eq!(p["state"], "disabled");
    let channel = get(&app, "/api/v1/channel").await.json();
    let checksum = channel["interceptors"]
        .as_array()
        .expect("stack")
        .iter()
        .find(|i| i["name"] == "checksum")
        .expect("checksum")
        .clone();
    assert_eq!(checksum["enabled"], false);
    let p = admin(&app, Method::POST, "/api/v1/plugins/checksum/reload")
        .await
        .json();
    assert_eq!(p["state"], "enabled");

    let r = admin_json(
        &app,
        Method::PUT,
        "/api/v1/plugins/url-filter/config",
        serde_json::json!({"skip": ["*.svg"]}),
    )
    .await;
    assert_eq!(r.json()["config"]["skip"][0], "*.svg");
    admin_json(
        &app,
        Method::PUT,
        "/api/v1/plugins/url-filter/config",
        serde_json::json!([1]),
    )
    .await
    .problem(422);
    admin(&app, Method::POST, "/api/v1/plugins/nope/enable")
        .await
        .problem(404);
}

#[tokio::test]
async fn channel_stack_send_options_peers_and_reorder() {
    let (app, _) = app();
    let ch = get(&app, "/api/v1/channel").await.json();
    let stack: Vec<String> = ch["interceptors"]
        .as_array()
        .expect("stack")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(stack[0], "TcpFailureDetector");
    assert!(ch["interceptors"][0]["counters"]["tx_bytes"].is_u64());
    assert!(ch["send_options"]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["name"] == "use_ack")));
    let mut reversed = stack.clone();
    reversed.reverse();
    let r = admin_json(
        &app,
        Method::PUT,
        "/api/v1/channel/interceptors",
        serde_json::json!({"order": reversed}),
    )
    .await;
    assert_eq!(r.json()["interceptors"][0]["name"], "TcpPing");
    admin_json(
        &app,
        Method::PUT,
        "/api/v1/channel/interceptors",
        serde_json::json!({"order": ["TcpPing"]}),
    )
    .await
    .problem(409);

    let peers = get(&app, "/api/v1/channel/peers").await.json();
    let peers = peers.as_array().expect("peers");
    assert_eq!(
        peers
            .iter()
            .map(|p| p["peer"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["node2", "node3"]
    );
    assert!(peers
        .iter()
        .all(|p| p["at_ms"].as_u64().is_some_and(|t| t > 0)));
}

#[tokio::test]
async fn deploy_list_undeploy() {
    let (app, _) = app();
    let mut wasm = b"\0asm\x0d\x00\x01\x00".to_vec();
    wasm.resize(1000, 7);
    let body = Some(("application/octet-stream", wasm));
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/deployments/shop.wasm",
        Some(ADMIN),
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let d = r.json();
    assert_eq!(d["size_bytes"], 1000);
    assert!(d["nodes"]
        .as_array()
        .is_some_and(|n| n.len() == 3 && n.iter().all(|n| n["state"] == "active")));
    assert_eq!(
        get(&app, "/api/v1/deployments")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        get(&app, "/api/v1/deployments/shop.wasm").await.json()["digest"],
        d["digest"]
    );
    let empty = Some(("application/octet-stream", Vec::new()));
    call(
        &app,
        Method::PUT,
        "/api/v1/deployments/empty.wasm",
        Some(ADMIN),
        empty,
    )
    .await
    .problem(422);
    let bad = Some(("application/octet-stream", vec![1]));
    call(
        &app,
        Method::PUT,
        "/api/v1/deployments/a%20b",
        Some(ADMIN),
        bad,
    )
    .await
    .problem(400);
    assert_eq!(
        admin(&app, Method::DELETE, "/api/v1/deployments/shop.wasm")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    admin(&app, Method::DELETE, "/api/v1/deployments/shop.wasm")
        .await
        .problem(404);
}
