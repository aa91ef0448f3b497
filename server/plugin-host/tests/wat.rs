//! Host plumbing with tiny components written in WAT: the URL-filter world implemented by
//! hand (a bump allocator and one lifted function), and components that do not fit.
mod common;
use common::*;
use shoal_plugin_host::{FailurePolicy, Limits, PluginError, PluginSpec, PluginWorld};
use std::time::Duration;

/// A url-filter whose `may-touch-session` runs `body` (which leaves an i32 on the stack).
/// Parameter 2 is the path's address, parameter 3 its length (canonical ABI flattening of
/// the request record: method, path, query, headers, body).
fn filter(body: &str) -> Vec<u8> {
    let text = format!(
        r#"(component
  (core module $m
    (memory (export "mem") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      ;; round up to the requested alignment (parameter 2)
      (local.set $at (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $at) (local.get 3)))
      (local.get $at))
    (func (export "filter") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      ;; the arguments are in place: the next call may reuse the space
      (global.set $bump (i32.const 1024))
      {body}))
  (core instance $i (instantiate $m))
  (type $request (record
    (field "method" string) (field "path" string) (field "query" string)
    (field "headers" (list (tuple string string))) (field "body" (option (list u8)))))
  ;; types used by an export must be exported (named) themselves
  (export $req "request" (type $request))
  (func $f (param "req" $req) (result bool)
    (canon lift (core func $i "filter") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
  (export "may-touch-session" (func $f)))"#
    );
    wat::parse_str(text).expect("fixture WAT")
}

fn limited() -> PluginSpec {
    let limits = Limits {
        call_timeout: Duration::from_millis(20),
        memory_bytes: 1 << 20,
        ..Limits::default()
    };
    PluginSpec {
        limits,
        policy: FailurePolicy::FailOpen,
        ..PluginSpec::default()
    }
}

#[test]
fn hand_written_filter_sees_the_request() {
    let reg = registry();
    // true when the path starts with '/'
    let info = reg
        .load(
            "wat",
            &filter("(i32.eq (i32.load8_u (local.get 2)) (i32.const 47))"),
            PluginSpec::default(),
        )
        .expect("load");
    assert_eq!(info.world, PluginWorld::UrlFilter);
    assert!(reg.url_filter("wat", &get("/app", "")).expect("call"));
    assert!(
        !reg.url_filter("wat", &get("app", "")).expect("call"),
        "{:?}",
        reg.info("wat")
    );
    // Many calls: the bump allocator is reset per call, the instance is reused.
    for _ in 0..1000 {
        assert!(reg.url_filter("wat", &get("/app", "a=1")).expect("call"));
    }
    assert_eq!(reg.info("wat").expect("info").instances, 1);
}

#[test]
fn loops_and_memory_growth_are_stopped() {
    let reg = registry();
    reg.load(
        "spin",
        &filter("(loop $l (br $l)) (i32.const 0)"),
        limited(),
    )
    .expect("load");
    let grow = "(loop $l (drop (memory.grow (i32.const 1))) (br $l)) (i32.const 0)";
    reg.load("grow", &filter(grow), limited()).expect("load");
    // Fail-open for a filter: the session replicates.
    assert!(reg.url_filter("spin", &get("/", "")).expect("call"));
    assert!(reg.url_filter("grow", &get("/", "")).expect("call"));
    assert_eq!(reg.info("spin").expect("info").failures.timeouts, 1);
    assert_eq!(reg.info("grow").expect("info").failures.memory, 1);
}

#[test]
fn components_that_do_not_fit_are_refused_with_the_reason() {
    let reg = registry();
    let wrong_type = wat::parse_str(
        r#"(component
  (core module $m (func (export "f") (result i32) (i32.const 1)))
  (core instance $i (instantiate $m))
  (func $f (result bool) (canon lift (core func $i "f")))
  (export "may-touch-session" (func $f)))"#,
    )
    .expect("WAT");
    let err = reg
        .load("typed", &wrong_type, PluginSpec::default())
        .expect_err("wrong signature");
    assert!(
        matches!(
            err,
            PluginError::Link {
                world: PluginWorld::UrlFilter,
                ..
            }
        ),
        "{err}"
    );

    let needs_network = wat::parse_str(
        r#"(component
  (import "acme:evil/net@1.0.0" (instance (export "connect" (func))))
  (core module $m (func (export "f") (result i32) (i32.const 1)))
  (core instance $i (instantiate $m))
  (func $f (result bool) (canon lift (core func $i "f")))
  (export "may-touch-session" (func $f)))"#,
    )
    .expect("WAT");
    let err = reg
        .load("evil", &needs_network, PluginSpec::default())
        .expect_err("ungranted import");
    assert!(err.to_string().contains("acme:evil/net"), "{err}");

    let nothing = wat::parse_str(r#"(component)"#).expect("WAT");
    let err = reg
        .load("empty", &nothing, PluginSpec::default())
        .expect_err("no world");
    assert!(matches!(err, PluginError::UnknownWorld { .. }), "{err}");
    assert!(reg.list().is_empty());
}

/// A deploy hook whose every export traps.
fn trapping_deploy_hook() -> Vec<u8> {
    wat::parse_str(
        r#"(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "before") (param i32 i32 i32 i32 i64 i32 i32) (result i32) unreachable)
    (func (export "after") (param i32 i32 i32 i32 i64 i32 i32) unreachable)
    (func (export "undeploy") (param i32 i32) unreachable))
  (core instance $i (instantiate $m))
  (type $artifact' (record (field "name" string) (field "digest" string) (field "size" u64)
    (field "metadata" (list (tuple string string)))))
  (export $artifact "artifact" (type $artifact'))
  (type $decision' (variant (case "allow") (case "veto" string)))
  (export $decision "decision" (type $decision'))
  (func $before (param "artifact" $artifact) (result $decision)
    (canon lift (core func $i "before") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
  (func $after (param "artifact" $artifact)
    (canon lift (core func $i "after") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
  (func $undeploy (param "name" string)
    (canon lift (core func $i "undeploy") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
  (export "before-deploy" (func $before))
  (export "after-deploy" (func $after))
  (export "after-undeploy" (func $undeploy)))"#,
    )
    .expect("WAT")
}

#[test]
fn failing_deploy_hook_vetoes_when_closed_and_allows_when_open() {
    use shoal_plugin_host::{Artifact, DeployDecision};
    let reg = registry();
    let closed = PluginSpec {
        policy: FailurePolicy::FailClosed,
        ..PluginSpec::default()
    };
    let open = PluginSpec {
        policy: FailurePolicy::FailOpen,
        ..PluginSpec::default()
    };
    assert_eq!(
        reg.load("closed", &trapping_deploy_hook(), closed)
            .expect("load")
            .world,
        PluginWorld::DeployHook
    );
    reg.load("open", &trapping_deploy_hook(), open)
        .expect("load");
    let artifact = Artifact {
        name: "shop.war".into(),
        digest: "ab".repeat(32),
        size: 10,
        metadata: Vec::new(),
    };
    assert!(matches!(
        reg.deploy_hook_before("closed", &artifact).expect("call"),
        DeployDecision::Veto(_)
    ));
    assert_eq!(
        reg.deploy_hook_before("open", &artifact).expect("call"),
        DeployDecision::Allow
    );
    // The combined check names the hook that vetoed.
    assert!(
        matches!(reg.deploy_hooks_before(&artifact), DeployDecision::Veto(r) if r.starts_with("closed: "))
    );
    reg.deploy_hook_after("open", &artifact)
        .expect("notification");
    reg.deploy_hook_after_undeploy("open", "shop.war")
        .expect("notification");
    assert_eq!(reg.info("open").expect("info").failures.traps, 3);
}
