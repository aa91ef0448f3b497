//! Side-by-side WIT versions: plugins built against the frozen `shoal:plugin@0.1.0`
//! (`plugins/examples/legacy-*`) and against the current 0.2.0 (the SDK examples) load into
//! one registry and one interceptor stack and all answer; unknown or mixed versions are
//! refused with the versions the host supports.
mod common;
use common::*;
use shoal_cluster::{ChannelMessage, InterceptorStack, MemberId, SendOptions};
use shoal_plugin_host::{
    EngineOptions, FailurePolicy, MemberFact, MemorySession, PluginError, PluginRegistry,
    PluginSpec, PluginWorld, SharedFacts, ValveOutcome, SUPPORTED_WIT_VERSIONS,
};
use std::sync::Arc;
use std::time::Instant;

fn metric(reg: &PluginRegistry, name: &str) -> Option<i64> {
    reg.metrics()
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.value)
}

#[test]
fn url_filters_and_valves_of_both_versions_answer_side_by_side() {
    let reg = registry();
    let fp = FailurePolicy::FailClosed;
    let old = reg
        .load(
            "old",
            &component("legacy-url-filter"),
            spec(&[("suffix", ".css")], fp.clone()),
        )
        .expect("load a 0.1.0 url-filter");
    let new = reg
        .load(
            "new",
            &component("url-filter"),
            spec(&[("globs", "*.png")], fp.clone()),
        )
        .expect("load a 0.2.0 url-filter");
    assert_eq!(
        (old.wit_version.as_str(), new.wit_version.as_str()),
        ("0.1.0", "0.2.0")
    );
    assert_eq!(old.world, PluginWorld::UrlFilter);
    assert!(!reg
        .url_filter("old", &get("/app/site.css", ""))
        .expect("old"));
    assert!(reg
        .url_filter("old", &get("/app/site.png", ""))
        .expect("old"));
    assert!(!reg
        .url_filter("new", &get("/app/site.png", ""))
        .expect("new"));
    // Both are consulted together.
    assert!(!reg.url_filters_allow(&get("/a.css", "")));
    assert!(!reg.url_filters_allow(&get("/a.png", "")));
    assert!(reg.url_filters_allow(&get("/a/counter", "")));
    assert_eq!(
        metric(&reg, "plugin.old.calls"),
        Some(5),
        "0.1.0 host imports work"
    );

    // A 0.1.0 valve uses the session resource through its own import.
    let valve = reg
        .load("old-valve", &component("legacy-valve"), spec(&[], fp))
        .expect("load a 0.1.0 valve");
    assert_eq!(valve.wit_version, "0.1.0");
    let mut session = MemorySession::none();
    for n in 1..=3 {
        let out = reg
            .valve_call("old-valve", &get("/app/visits", ""), &mut session)
            .expect("call");
        assert_eq!(answered(out), (200, format!("visits={n}")));
    }
    assert!(session.is_new && session.attributes.contains_key("visits"));
    let passed = reg
        .valve_call("old-valve", &get("/app/x", ""), &mut session)
        .expect("call");
    assert_eq!(
        passed,
        ValveOutcome::Next {
            set_request_headers: vec![],
            add_response_headers: vec![("x-legacy".into(), "0.1.0".into())],
        }
    );
    assert_eq!(
        reg.info("old-valve").expect("info").failures,
        Default::default()
    );
}

fn message(payload: &[u8], to: Vec<MemberId>) -> ChannelMessage {
    ChannelMessage {
        id: 9,
        from: MemberId([1; 16]),
        destinations: to,
        options: SendOptions(SendOptions::USE_ACK),
        payload: payload.to_vec(),
    }
}

/// node1 (domain `a`) with node2 in `a` and node3 in `b`.
fn domain_facts() -> Arc<SharedFacts> {
    let member = |id: MemberId, name: &str, domain: &str| MemberFact {
        id: id.to_hex(),
        name: name.into(),
        address: "127.0.0.1:1".into(),
        domain: domain.into(),
    };
    let facts = SharedFacts::new(member(MemberId([1; 16]), "node1", "a"));
    facts.set_members(vec![
        member(MemberId([2; 16]), "node2", "a"),
        member(MemberId([3; 16]), "node3", "b"),
    ]);
    facts
}

#[test]
fn interceptors_of_both_versions_share_one_stack() {
    let reg =
        Arc::new(PluginRegistry::new(EngineOptions::default(), domain_facts()).expect("engine"));
    let fp = FailurePolicy::FailClosed;
    let legacy = reg
        .load(
            "legacy",
            &component("legacy-interceptor"),
            spec(&[("veto-prefix", "secret")], fp.clone()),
        )
        .expect("load a 0.1.0 interceptor");
    assert_eq!(legacy.wit_version, "0.1.0");
    reg.load("scope", &component("domain-scope"), spec(&[], fp.clone()))
        .expect("load domain-scope");
    reg.load("crc", &component("checksum-interceptor"), spec(&[], fp))
        .expect("load checksum");
    // Top to bottom: legacy (0.1.0), scope and crc (0.2.0).
    let mut stack = InterceptorStack::new();
    for name in ["legacy", "scope", "crc"] {
        let layer = reg.interceptor(name).expect("layer");
        stack.push(Box::new(layer)).expect("push");
    }
    let now = Instant::now();
    let (node2, node3) = (MemberId([2; 16]), MemberId([3; 16]));

    // Sent to node2 and node3: legacy counts, scope narrows to node2, crc seals.
    let out = stack
        .run_send(now, message(b"hello", vec![node2, node3]))
        .expect("send");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].destinations, vec![node2], "narrowed to domain a");
    assert_eq!(out[0].payload.len(), 5 + 5, "sealed by crc");
    // Everything outside the domain: dropped by the narrowing.
    let out = stack
        .run_send(now, message(b"hi", vec![node3]))
        .expect("send");
    assert!(out.is_empty(), "{out:?}");
    // The 0.1.0 layer's error verdict reaches the sender.
    let err = stack
        .run_send(now, message(b"secret plan", vec![node2]))
        .expect_err("vetoed");
    assert!(
        err.to_string().contains("wasm:legacy") && err.reason.contains("secret"),
        "{err}"
    );

    // Receive runs bottom-up: crc verifies and strips, legacy counts.
    let sealed = stack
        .run_send(now, message(b"state", vec![node2]))
        .expect("send")
        .remove(0);
    let up = stack.run_receive(now, sealed).expect("receive");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].payload, b"state");

    let m = |n: &str| metric(&reg, n);
    assert_eq!(m("plugin.legacy.sent"), Some(4));
    assert_eq!(m("plugin.legacy.received"), Some(1));
    assert_eq!(m("plugin.scope.narrowed"), Some(2));
    assert_eq!(
        m("plugin.scope.kept"),
        Some(1),
        "the vetoed message never reached it"
    );
    assert_eq!(m("plugin.crc.verified"), Some(1));
    for name in ["legacy", "scope", "crc"] {
        assert_eq!(
            reg.info(name).expect("info").failures,
            Default::default(),
            "{name}"
        );
    }
}

/// `host.counter-get` (new in 0.2.0) reads the total every instance and version added.
#[test]
fn counter_get_sees_what_every_instance_added() {
    let reg = registry();
    let fp = FailurePolicy::FailClosed;
    reg.load(
        "m",
        &component("misbehave"),
        spec(&[("mode", "shared")], fp),
    )
    .expect("load");
    let call = || {
        answered(
            reg.valve_call("m", &get("/x", ""), &mut MemorySession::none())
                .expect("call"),
        )
        .1
    };
    for n in 1..=3 {
        assert_eq!(call(), format!("instance={n} shared={n}"));
    }
    // A new version starts with fresh instances; the counter is the plugin's.
    reg.configure("m", config(&[("mode", "shared"), ("v", "2")]))
        .expect("configure");
    assert_eq!(call(), "instance=1 shared=4");
    assert_eq!(metric(&reg, "plugin.m.shared"), Some(4));
}

#[test]
fn hot_reload_moves_a_plugin_to_the_current_version() {
    let reg = registry();
    reg.load("f", &component("legacy-url-filter"), PluginSpec::default())
        .expect("load 0.1.0");
    let info = reg
        .reload("f", &component("url-filter"))
        .expect("reload with 0.2.0");
    assert_eq!((info.generation, info.wit_version.as_str()), (2, "0.2.0"));
    assert!(reg.url_filter("f", &get("/app/counter", "")).expect("call"));
}

/// A url-filter whose imports name `shoal:plugin/<iface>@<version>` for each pair.
fn importing(imports: &[(&str, &str)]) -> Vec<u8> {
    let imports: String = imports
        .iter()
        .map(|(iface, v)| format!("(import \"shoal:plugin/{iface}@{v}\" (instance))\n"))
        .collect();
    let text = format!(
        r#"(component
  {imports}
  (core module $m (func (export "f") (result i32) (i32.const 1)))
  (core instance $i (instantiate $m))
  (func $f (result bool) (canon lift (core func $i "f")))
  (export "may-touch-session" (func $f)))"#
    );
    wat::parse_str(text).expect("fixture WAT")
}

#[test]
fn unknown_and_mixed_versions_are_refused_with_the_supported_ones() {
    let reg = registry();
    let err = reg
        .load(
            "future",
            &importing(&[("host", "0.9.0")]),
            PluginSpec::default(),
        )
        .expect_err("0.9.0 is not linked");
    assert!(
        matches!(&err, PluginError::UnsupportedVersion { name, found, .. } if name == "future" && found == "0.9.0"),
        "{err:?}"
    );
    let text = err.to_string();
    for v in SUPPORTED_WIT_VERSIONS {
        assert!(text.contains(v), "{text}");
    }
    let err = reg
        .load(
            "mixed",
            &importing(&[("host", "0.1.0"), ("types", "0.2.0")]),
            PluginSpec::default(),
        )
        .expect_err("mixed versions");
    assert!(matches!(err, PluginError::MixedVersions { .. }), "{err:?}");
    // A supported version gets past the version check to linking (where this fixture's
    // parameterless export does not fit the url-filter world).
    let err = reg
        .load(
            "linked",
            &importing(&[("types", "0.1.0")]),
            PluginSpec::default(),
        )
        .expect_err("wrong export type");
    assert!(matches!(err, PluginError::Link { .. }), "{err:?}");
    assert!(reg.list().is_empty());
}
