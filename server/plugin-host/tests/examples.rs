//! Every example plugin, built from source by build.rs, called through the Rust API.
mod common;
use common::*;
use shoal_plugin_host::{
    Artifact, DeployDecision, FailurePolicy, MemorySession, PluginError, PluginSpec, PluginWorld,
    ValveOutcome,
};

#[test]
fn bench_app_serves_the_contract() {
    let reg = registry();
    reg.load("bench", &component("bench-app"), PluginSpec::default())
        .expect("load bench-app");
    let mut s = MemorySession::none();
    let call = |req, s: &mut MemorySession| {
        answered(reg.valve_call("bench", &req, s).expect("valve call"))
    };

    assert_eq!(
        call(get("/app/counter", ""), &mut s),
        (200, "counter=1 session=mem-1 node=node1\n".into())
    );
    assert_eq!(
        call(get("/app/counter", ""), &mut s),
        (200, "counter=2 session=mem-1 node=node1\n".into())
    );
    assert_eq!(
        call(get("/app/get", "key=counter"), &mut s),
        (200, "key=counter value=2 session=mem-1 node=node1\n".into())
    );

    assert_eq!(
        call(get("/app/set", "key=k1&size=100"), &mut s),
        (200, "set=k1 size=100 session=mem-1 node=node1\n".into())
    );
    let (status, body) = call(get("/app/get", "key=k1"), &mut s);
    assert_eq!(status, 200);
    assert!(
        body.starts_with("key=k1 size=100 crc=") && body.contains(" intact=true session=mem-1"),
        "{body}"
    );
    assert_eq!(
        call(get("/app/get", "key=nope"), &mut s),
        (404, "error=no-attribute session=mem-1 node=node1\n".into())
    );
    assert_eq!(call(get("/app/set", "size=99999999999"), &mut s).0, 400);

    let (status, stats) = call(get("/app/stats", ""), &mut s);
    assert_eq!(status, 200);
    assert!(
        stats.starts_with("node=node1 activeSessions=3 members=1 heapUsedMiB="),
        "{stats}"
    );
    assert!(stats.contains(" heapUsedKiB="), "{stats}");

    assert_eq!(
        call(get("/app/invalidate", ""), &mut s),
        (200, "invalidated=true node=node1\n".into())
    );
    assert_eq!(s.id, None);
    assert_eq!(
        call(get("/app/invalidate", ""), &mut s),
        (200, "invalidated=false node=node1\n".into())
    );
    assert_eq!(
        call(get("/app/nothing", ""), &mut s),
        (404, "error=unknown-path path=/nothing\n".into())
    );
}

#[test]
fn bench_app_get_never_creates_a_session() {
    let reg = registry();
    reg.load("bench", &component("bench-app"), PluginSpec::default())
        .expect("load");
    let mut s = MemorySession::none();
    let (status, body) = answered(
        reg.valve_call("bench", &get("/app/get", "key=counter"), &mut s)
            .expect("call"),
    );
    assert_eq!(
        (status, body.as_str()),
        (404, "error=no-session node=node1\n")
    );
    assert_eq!(
        s,
        MemorySession::none(),
        "the session must be left untouched"
    );
    // Outside its context the app passes the request on.
    let outcome = reg
        .valve_call("bench", &get("/other/counter", ""), &mut s)
        .expect("call");
    assert_eq!(outcome, ValveOutcome::pass());
}

#[test]
fn auth_valve_short_circuits_without_the_token() {
    let reg = registry();
    reg.load(
        "auth",
        &component("auth-valve"),
        spec(&[("token", "s3cret")], FailurePolicy::FailClosed),
    )
    .expect("load");
    let mut s = MemorySession::none();
    let mut req = get("/app/counter", "");
    match reg.valve_call("auth", &req, &mut s).expect("call") {
        ValveOutcome::Respond(r) => {
            assert_eq!(r.status, 401);
            assert!(
                r.headers
                    .iter()
                    .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")),
                "{:?}",
                r.headers
            );
        }
        other => panic!("expected 401, got {other:?}"),
    }
    req.headers
        .push(("Authorization".into(), "Bearer wrong".into()));
    assert_eq!(
        answered(reg.valve_call("auth", &req, &mut s).expect("call")).0,
        401
    );
    req.headers[0].1 = "Bearer s3cret".into();
    match reg.valve_call("auth", &req, &mut s).expect("call") {
        ValveOutcome::Next {
            set_request_headers,
            add_response_headers,
        } => {
            assert_eq!(
                add_response_headers,
                vec![("x-shoal-auth".to_string(), "passed".to_string())]
            );
            assert_eq!(
                set_request_headers,
                vec![("authorization".to_string(), String::new())]
            );
        }
        other => panic!("expected the request to pass, got {other:?}"),
    }
    let metrics = reg.metrics();
    let value = |n: &str| metrics.iter().find(|m| m.name == n).map(|m| m.value);
    assert_eq!(value("plugin.auth.rejected"), Some(2));
    assert_eq!(value("plugin.auth.passed"), Some(1));
}

#[test]
fn rate_limit_keeps_its_window_in_the_session() {
    let reg = registry();
    let cfg = [("limit", "2"), ("window-ms", "600000")];
    reg.load(
        "rl",
        &component("rate-limit"),
        spec(&cfg, FailurePolicy::FailClosed),
    )
    .expect("load");
    let mut s = MemorySession::existing("abc");
    for _ in 0..2 {
        assert!(matches!(
            reg.valve_call("rl", &get("/app/x", ""), &mut s)
                .expect("call"),
            ValveOutcome::Next { .. }
        ));
    }
    assert_eq!(
        answered(
            reg.valve_call("rl", &get("/app/x", ""), &mut s)
                .expect("call")
        )
        .0,
        429
    );
    assert_eq!(s.attributes.get("rate-limit").map(Vec::len), Some(12));
    // Another session has its own window; a request without a session passes.
    let mut other = MemorySession::existing("def");
    assert!(matches!(
        reg.valve_call("rl", &get("/app/x", ""), &mut other)
            .expect("call"),
        ValveOutcome::Next { .. }
    ));
    let mut none = MemorySession::none();
    assert_eq!(
        reg.valve_call("rl", &get("/app/x", ""), &mut none)
            .expect("call"),
        ValveOutcome::pass()
    );
}

#[test]
fn url_filter_matches_globs_and_regex() {
    let reg = registry();
    let cfg = [("filter", r"\.(png|ico)$"), ("globs", "*.css, /static/*")];
    reg.load(
        "uf",
        &component("url-filter"),
        spec(&cfg, FailurePolicy::FailOpen),
    )
    .expect("load");
    for (path, touches) in [
        ("/app/counter", true),
        ("/app/site.css", false),
        ("/static/app.js", false),
        ("/favicon.ico", false),
    ] {
        assert_eq!(
            reg.url_filter("uf", &get(path, "")).expect("call"),
            touches,
            "{path}"
        );
    }
    assert!(!reg.url_filters_allow(&get("/app/a.css", "")));
    assert!(reg.url_filters_allow(&get("/app/counter", "")));
}

#[test]
fn deploy_guard_allows_and_vetoes() {
    use ed25519_compact::{KeyPair, Seed};
    use sha2::{Digest, Sha256};
    let kp = KeyPair::from_seed(Seed::new([9; 32]));
    let reg = registry();
    let cfg = [
        ("max-size", "1000"),
        ("public-key", &hex::encode(kp.pk.as_ref())),
    ];
    reg.load(
        "guard",
        &component("deploy-guard"),
        spec(&cfg, FailurePolicy::FailClosed),
    )
    .expect("load");

    let digest = hex::encode(Sha256::digest(b"war bytes"));
    let signature = hex::encode(kp.sk.sign(digest.as_bytes(), None).as_ref());
    let signed = Artifact {
        name: "shop.war".into(),
        digest: digest.clone(),
        size: 500,
        metadata: vec![("signature".into(), signature)],
    };
    assert_eq!(
        reg.deploy_hook_before("guard", &signed).expect("call"),
        DeployDecision::Allow
    );

    let big = Artifact {
        size: 5000,
        ..signed.clone()
    };
    assert!(
        matches!(reg.deploy_hook_before("guard", &big).expect("call"), DeployDecision::Veto(r) if r.contains("over the limit"))
    );
    let unsigned = Artifact {
        metadata: Vec::new(),
        ..signed.clone()
    };
    assert!(
        matches!(reg.deploy_hook_before("guard", &unsigned).expect("call"), DeployDecision::Veto(r) if r.contains("not signed"))
    );
    let tampered = Artifact {
        digest: hex::encode(Sha256::digest(b"other")),
        ..signed.clone()
    };
    assert!(
        matches!(reg.deploy_hooks_before(&tampered), DeployDecision::Veto(r) if r.starts_with("guard: "))
    );

    reg.deploy_hook_after("guard", &signed).expect("after");
    reg.deploy_hook_after_undeploy("guard", "shop.war")
        .expect("after undeploy");
    assert!(reg
        .metrics()
        .iter()
        .any(|m| m.name == "plugin.guard.deployed" && m.value == 1));
}

#[test]
fn wrong_world_and_not_wasm_are_clear_errors() {
    let reg = registry();
    let spec_for = |world| PluginSpec {
        world: Some(world),
        ..PluginSpec::default()
    };
    let err = reg
        .load(
            "x",
            &component("bench-app"),
            spec_for(PluginWorld::UrlFilter),
        )
        .expect_err("wrong world");
    assert!(matches!(err, PluginError::WrongWorld { .. }), "{err}");
    assert!(
        err.to_string().contains("plugin x") && err.to_string().contains("valve"),
        "{err}"
    );

    let err = reg
        .load("junk", b"definitely not wasm", PluginSpec::default())
        .expect_err("not wasm");
    assert!(matches!(err, PluginError::NotWasm { .. }), "{err}");
    let err = reg
        .load("core", b"\0asm\x01\0\0\0", PluginSpec::default())
        .expect_err("core module");
    assert!(matches!(err, PluginError::CoreModule { .. }), "{err}");
    let mut broken = component("url-filter");
    broken.truncate(broken.len() / 2);
    let err = reg
        .load("broken", &broken, PluginSpec::default())
        .expect_err("truncated");
    assert!(matches!(err, PluginError::Compile { .. }), "{err}");

    reg.load("bench", &component("bench-app"), PluginSpec::default())
        .expect("load");
    let err = reg
        .url_filter("bench", &get("/", ""))
        .expect_err("a valve is not a filter");
    assert!(
        matches!(
            err,
            PluginError::WrongWorld {
                expected: PluginWorld::UrlFilter,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        reg.url_filter("ghost", &get("/", "")),
        Err(PluginError::NotLoaded { .. })
    ));
    assert_eq!(reg.list().len(), 1, "failed loads leave nothing behind");
}
