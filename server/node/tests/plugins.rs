//! Every plugin extension point exercised by a real component (the examples in
//! `plugins/examples`) through running nodes: the Wasm bench app, a URL filter, an auth
//! valve, a channel interceptor, misbehaving valves under load, bad loads, hot reload.
mod common;
mod plugins_support;

use plugins_support::{
    contexts, crc, example, messages, metric, misbehave, nodes, shutdown, statuses, Browser,
};
use shoal_node::plugins::{ControlOp, PluginEntry, PolicyName};
use shoal_plugin_host::PluginWorld;
use shoal_testkit::eventually;
use std::time::Duration;

fn app() -> PluginEntry {
    let mut e = example("app", "bench-app", &[]);
    e.contexts = vec!["/app".into()];
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wasm_bench_app_serves_the_contract_and_its_sessions_replicate() {
    let n = nodes(
        contexts(&["/app"], 1800),
        vec![vec![app()], vec![app()]],
        true,
    )
    .await;
    let mut b = Browser::new();
    let (s, body) = b.get(&n[0], "/app/get?key=counter").await;
    assert_eq!(
        (s, body.starts_with("error=no-session")),
        (404, true),
        "{body}"
    );
    assert!(b.cookie.is_none(), "get must not create a session");
    for i in 1..=3 {
        let (s, body) = b.get(&n[0], "/app/counter").await;
        assert_eq!(s, 200, "{body}");
        assert!(body.starts_with(&format!("counter={i} ")), "{body}");
        assert!(body.trim_end().ends_with("node=node1"), "{body:?}");
    }
    let (s, body) = b.get(&n[0], "/app/set?key=k&size=10").await;
    assert_eq!(s, 200, "{body}");
    // Synchronous replication: the other node has the session as soon as node1 answered.
    let (s, body) = b.get(&n[1], "/app/get?key=counter").await;
    assert!(
        s == 200 && body.starts_with("key=counter value=3 "),
        "{s} {body}"
    );
    let (s, body) = b.get(&n[1], "/app/get?key=k").await;
    assert!(
        s == 200 && body.contains("size=10") && body.contains("intact=true"),
        "{body}"
    );
    let (s, body) = b.get(&n[1], "/app/counter").await;
    assert!(
        s == 200 && body.starts_with("counter=4 ") && body.trim_end().ends_with("node=node2"),
        "{body}"
    );
    let (s, body) = b.get(&n[1], "/app/stats").await;
    assert!(
        s == 200 && body.contains("activeSessions=1 ") && body.contains("members=1"),
        "{body}"
    );
    let (s, body) = b.get(&n[1], "/app/invalidate").await;
    assert_eq!((s, body.trim_end()), (200, "invalidated=true node=node2"));
    let (s, body) = b.get(&n[0], "/app/get?key=counter").await;
    assert_eq!(
        (s, body.starts_with("error=no-session")),
        (404, true),
        "{body}"
    );
    // The Wasm app answered, not the native one behind it.
    assert!(metric(&n[0], "app", "requests") >= 5);
    assert!(metric(&n[1], "app", "requests") >= 4);
    shutdown(n).await;
}

/// A session used only through filtered URLs sends no ACCESSED, although the same use
/// through an unfiltered URL does (`max_inactive_secs` 4: ACCESSED due after 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn url_filter_plugin_prevents_replication() {
    let filter = || example("static", "url-filter", &[("globs", "/app/static/*")]);
    let n = nodes(
        contexts(&["/app"], 4),
        vec![vec![app(), filter()], vec![app(), filter()]],
        true,
    )
    .await;
    let mut b = Browser::new();
    let (s, _) = b.get(&n[0], "/app/counter").await;
    assert_eq!(s, 200);
    let accessed = |i: usize| messages(&n[i], "/app", "session_accessed", i == 0);
    let started = tokio::time::Instant::now();
    let mut filtered = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let (s, body) = b.get(&n[0], "/app/static/page.html").await;
        assert_eq!(s, 404, "{body}"); // the bench app's unknown path, session looked up
        filtered += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accessed(0), 0, "a filtered request sent ACCESSED");
    let stats = n[0].http.registry().service("/app").expect("ctx").stats();
    assert!(stats.filtered_requests >= filtered, "{stats:?}");
    // The same session through an unfiltered URL: due for ACCESSED at once.
    let (s, body) = b.get(&n[0], "/app/get?key=none").await;
    assert_eq!(s, 404, "{body}");
    assert!(accessed(0) >= 1, "an unfiltered request sent no ACCESSED");
    eventually("node2 receives ACCESSED", Duration::from_secs(5), || {
        accessed(1) >= 1
    })
    .await;
    // Disabled at runtime: static URLs replicate again (the registry is asked per request).
    for node in &n {
        let op = ControlOp::SetEnabled {
            name: "static".into(),
            enabled: false,
        };
        node.plugins.apply_local(&op).expect("disable");
    }
    let before = stats.filtered_requests;
    b.get(&n[0], "/app/static/page.html").await;
    let after = n[0].http.registry().service("/app").expect("ctx").stats();
    assert_eq!(
        after.filtered_requests,
        before + 1 - 1 + (filtered - filtered),
        "{after:?}"
    );
    shutdown(n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_valve_short_circuits_without_token() {
    let mut auth = example("auth", "auth-valve", &[("token", "s3cret")]);
    auth.contexts = vec!["/app".into()];
    let n = nodes(contexts(&["/app"], 1800), vec![vec![auth, app()]], true).await;
    let mut b = Browser::new();
    let (s, body, h) = b.get_full(&n[0], "/app/counter", &[]).await;
    assert_eq!(s, 401, "{body}");
    assert!(h.get("www-authenticate").is_some(), "{h:?}");
    assert!(b.cookie.is_none(), "a rejected request created a session");
    let (s, _, _) = b
        .get_full(&n[0], "/app/counter", &[("authorization", "Bearer wrong")])
        .await;
    assert_eq!(s, 401);
    let (s, body, h) = b
        .get_full(&n[0], "/app/counter", &[("authorization", "Bearer s3cret")])
        .await;
    assert!(s == 200 && body.starts_with("counter=1 "), "{s} {body}");
    assert_eq!(
        h.get("x-shoal-auth").and_then(|v| v.to_str().ok()),
        Some("passed")
    );
    assert_eq!(metric(&n[0], "auth", "rejected"), 2);
    assert_eq!(metric(&n[0], "auth", "passed"), 1);
    shutdown(n).await;
}

/// Both nodes run the checksum interceptor: sessions replicate through it (each message
/// sealed on send, verified and stripped on receipt).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checksum_interceptor_rewrites_messages_between_nodes() {
    let n = nodes(
        contexts(&["/app"], 1800),
        vec![vec![crc(), app()], vec![crc(), app()]],
        true,
    )
    .await;
    let verified_before = metric(&n[1], "crc", "verified");
    let mut b = Browser::new();
    b.get(&n[0], "/app/counter").await;
    let (s, body) = b.get(&n[1], "/app/counter").await;
    assert!(s == 200 && body.starts_with("counter=2 "), "{s} {body}");
    assert!(metric(&n[1], "crc", "verified") > verified_before);
    assert!(metric(&n[0], "crc", "sent") >= 1);
    assert_eq!(
        metric(&n[0], "crc", "dropped") + metric(&n[1], "crc", "dropped"),
        0
    );
    shutdown(n).await;
}

/// node1 runs the interceptor, node2 does not: what node2 sends has no checksum, so node1
/// drops it (and counts it) instead of applying it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checksum_interceptor_drops_messages_from_a_node_without_it() {
    let n = nodes(
        contexts(&["/app"], 1800),
        vec![vec![crc(), app()], vec![app()]],
        false,
    )
    .await;
    // node2's state transfer request already went the same way.
    eventually(
        "node1 drops node2's unsealed GET_ALL_SESSIONS",
        Duration::from_secs(10),
        || metric(&n[0], "crc", "dropped") >= 1,
    )
    .await;
    let dropped = metric(&n[0], "crc", "dropped");
    let verified = metric(&n[0], "crc", "verified");
    // A control message that would disable the app on node1 if it arrived.
    let op = ControlOp::SetEnabled {
        name: "app".into(),
        enabled: false,
    };
    let node1 = n[0].channel.local().id;
    n[1].channel
        .send(&[node1], op.encode(), shoal_cluster::SendOptions::default())
        .await;
    eventually(
        "node1 counts the unsealed message as dropped",
        Duration::from_secs(10),
        || metric(&n[0], "crc", "dropped") > dropped,
    )
    .await;
    assert_eq!(metric(&n[0], "crc", "verified"), verified);
    let info = n[0].plugins.registry.info("app").expect("loaded");
    assert_eq!(
        info.state,
        shoal_plugin_host::PluginState::Enabled,
        "{info:?}"
    );
    shutdown(n).await;
}

/// A looping, a trapping and a memory-hungry valve on their own contexts while the bench
/// app serves a bounded load: the app's requests all succeed, fail-closed answers 503,
/// fail-open lets the request through, and every failure is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misbehaving_valves_under_load_apply_their_policy() {
    let plugins = vec![
        app(),
        misbehave("loop", "loop", PolicyName::FailClosed, "/loop"),
        misbehave("trap", "trap", PolicyName::FailClosed, "/trap"),
        misbehave("bomb", "bomb", PolicyName::FailOpen, "/open"),
        misbehave("trap-open", "trap", PolicyName::FailOpen, "/open"),
    ];
    let http = contexts(&["/app", "/loop", "/trap", "/open"], 1800);
    let n = nodes(http, vec![plugins], true).await;
    let node = &n[0];
    let (apps, bad) = tokio::join!(
        futures::future::join_all((0..4).map(|_| async {
            let mut b = Browser::new();
            let mut bodies = Vec::new();
            for _ in 0..40 {
                bodies.push(b.get(node, "/app/counter").await);
            }
            bodies
        })),
        futures::future::join3(
            statuses(node, "/loop/counter", 8),
            statuses(node, "/trap/counter", 8),
            statuses(node, "/open/counter", 8),
        ),
    );
    for bodies in apps {
        for (i, (s, body)) in bodies.iter().enumerate() {
            assert!(
                *s == 200 && body.starts_with(&format!("counter={} ", i + 1)),
                "{s} {body}"
            );
        }
    }
    let (looped, trapped, open) = bad;
    assert_eq!(looped, vec![503; 8], "fail-closed loop");
    assert_eq!(trapped, vec![503; 8], "fail-closed trap");
    assert_eq!(open, vec![200; 8], "fail-open: the native app answers");
    let info = |name: &str| node.plugins.registry.info(name).expect("loaded");
    assert!(info("loop").failures.timeouts >= 8, "{:?}", info("loop"));
    assert!(info("trap").failures.traps >= 8, "{:?}", info("trap"));
    // On a loaded machine growing memory can take longer than the 50 ms limit.
    let bomb = info("bomb").failures;
    assert!(
        bomb.memory >= 1 && bomb.memory + bomb.timeouts >= 8,
        "{bomb:?}"
    );
    assert!(
        info("trap-open").failures.traps >= 8,
        "{:?}",
        info("trap-open")
    );
    assert_eq!(
        info("app").failures,
        Default::default(),
        "the app never failed"
    );
    shutdown(n).await;
}

/// Not-Wasm bytes and a component of the wrong world are refused with errors naming the
/// plugin, at runtime and in the config; the node keeps its other plugins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_loads_are_refused_with_the_plugin_named() {
    let n = nodes(contexts(&["/app"], 1800), vec![vec![app()]], true).await;
    let load = |name: &str, bytes: Vec<u8>, world| ControlOp::Load {
        name: name.into(),
        bytes,
        config: Vec::new(),
        limits: Default::default(),
        policy: Default::default(),
        world,
        contexts: Vec::new(),
    };
    let err = n[0]
        .plugins
        .apply_local(&load("junk", b"hello".to_vec(), None));
    let err = err.expect_err("not wasm").to_string();
    assert!(
        err.contains("plugin junk") && err.contains("not WebAssembly"),
        "{err}"
    );
    let bytes = shoal_plugin_host::examples::component("bench-app").expect("built");
    let err = n[0]
        .plugins
        .apply_local(&load("wrong", bytes, Some(PluginWorld::UrlFilter)));
    let err = err.expect_err("wrong world").to_string();
    assert!(
        err.contains("plugin wrong") && err.contains("valve"),
        "{err}"
    );
    let names: Vec<String> = n[0]
        .plugins
        .registry
        .list()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, vec!["app".to_string()]);
    assert_eq!(Browser::new().get(&n[0], "/app/counter").await.0, 200);
    shutdown(n).await;

    // The same mistake in the config file stops the node from starting, naming the entry.
    let dir = std::env::temp_dir().join(format!("shoal-plugin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("junk.wasm"), b"hello").expect("write junk");
    let mut junk = example("junk", "bench-app", &[]);
    junk.path = "junk.wasm".into();
    let mut parts = plugins_support::parts("solo", 0, &[], contexts(&["/app"], 1800), vec![junk]);
    parts.config_dir = Some(dir.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let err = match shoal_node::start(parts, listener, None).await {
        Ok(_) => panic!("a node started with a junk plugin"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("[[plugin]] junk") && err.contains("not WebAssembly"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reloading the app while 8 browsers hammer it: every request answers 200 and every
/// session's counter goes on from where it was (state lives in the session).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_reload_under_load_loses_no_request() {
    let n = nodes(contexts(&["/app"], 1800), vec![vec![app()]], true).await;
    let node = &n[0];
    let load = futures::future::join_all((0..8).map(|_| async {
        let mut b = Browser::new();
        let mut bodies = Vec::new();
        for _ in 0..60 {
            bodies.push(b.get(node, "/app/counter").await);
        }
        bodies
    }));
    let reloads = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let op = ControlOp::Reload {
                name: "app".into(),
                bytes: None,
            };
            node.plugins.apply_local(&op).expect("reload");
        }
    };
    let (all, ()) = tokio::join!(load, reloads);
    for bodies in all {
        for (i, (s, body)) in bodies.iter().enumerate() {
            assert!(
                *s == 200 && body.starts_with(&format!("counter={} ", i + 1)),
                "{s} {body}"
            );
        }
    }
    let info = node.plugins.registry.info("app").expect("loaded");
    assert_eq!(info.generation, 6, "{info:?}");
    assert_eq!(info.calls, 8 * 60, "{info:?}");
    shutdown(n).await;
}
