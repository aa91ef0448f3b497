//! Hot reload and instance-state semantics.
mod common;
use common::*;
use shoal_plugin_host::{
    EngineOptions, FailurePolicy, Limits, MemorySession, PluginRegistry, PluginSpec, ValveOutcome,
};
use shoal_testkit::poll_blocking;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn body(reg: &PluginRegistry, name: &str) -> String {
    answered(
        reg.valve_call(name, &get("/x", ""), &mut MemorySession::none())
            .expect("call"),
    )
    .1
}

/// `version=V calls=N body=B` → (V, N)
fn parse(body: &str) -> (u32, u64) {
    let field = |k: &str| {
        body.split_whitespace()
            .find_map(|t| t.strip_prefix(k))
            .and_then(|v| v.parse().ok())
    };
    (
        field("version=").unwrap_or(0) as u32,
        field("calls=").unwrap_or(0),
    )
}

#[test]
fn hot_reload_under_concurrent_calls_loses_nothing() {
    let reg = registry();
    let limits = Limits {
        max_instances: 4,
        call_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let spec = PluginSpec {
        config: config(&[("version", "1")]),
        limits,
        policy: FailurePolicy::FailClosed,
        world: None,
    };
    reg.load("app", &component("misbehave"), spec)
        .expect("load");
    let done = AtomicBool::new(false);
    const THREADS: usize = 4;
    const CALLS: usize = 300;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let reg = &reg;
                scope.spawn(move || {
                    let mut last_version = 0;
                    for _ in 0..CALLS {
                        let outcome = reg
                            .valve_call("app", &get("/x", ""), &mut MemorySession::none())
                            .expect("call");
                        let (status, body) = answered(outcome);
                        assert_eq!(status, 200, "a call was lost during reload: {body}");
                        let (version, _) = parse(&body);
                        assert!(
                            version >= last_version,
                            "went back from {last_version} to {version}"
                        );
                        last_version = version;
                    }
                    last_version
                })
            })
            .collect();
        let reloader = scope.spawn(|| {
            let mut v = 1;
            while !done.load(Ordering::Relaxed) && v < 6 {
                v += 1;
                reg.configure("app", config(&[("version", &v.to_string())]))
                    .expect("reconfigure");
                std::thread::sleep(Duration::from_millis(5));
            }
            // Also a reload with (the same) new bytes.
            reg.reload("app", &component("misbehave")).expect("reload");
            v
        });
        let last: Vec<u32> = workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect();
        done.store(true, Ordering::Relaxed);
        let final_config = reloader.join().expect("reloader");
        assert!(last.iter().all(|v| *v <= final_config), "{last:?}");
    });
    let info = reg.info("app").expect("info");
    assert_eq!(info.calls, (THREADS * CALLS) as u64);
    assert_eq!(info.failures, Default::default());
    assert!(info.generation >= 3, "{info:?}");
    assert_eq!(
        parse(&body(&reg, "app")).0 as u64 + 1,
        info.generation,
        "reload keeps the config"
    );
}

#[test]
fn instance_state_persists_until_a_new_version() {
    let reg = registry();
    let limits = Limits {
        max_instances: 1,
        ..Limits::default()
    };
    let spec = PluginSpec {
        config: config(&[("version", "1")]),
        limits,
        ..PluginSpec::default()
    };
    reg.load("app", &component("misbehave"), spec)
        .expect("load");
    assert_eq!(parse(&body(&reg, "app")), (1, 1));
    assert_eq!(
        parse(&body(&reg, "app")),
        (1, 2),
        "same instance, state kept"
    );
    reg.configure("app", config(&[("version", "2")]))
        .expect("configure");
    assert_eq!(
        parse(&body(&reg, "app")),
        (2, 1),
        "new version, fresh instance"
    );
    assert_eq!(reg.info("app").expect("info").instances, 1);
}

#[test]
fn valves_get_the_body_only_when_they_ask() {
    let reg = registry();
    reg.load("nobody", &component("misbehave"), PluginSpec::default())
        .expect("load");
    reg.load(
        "body",
        &component("misbehave"),
        PluginSpec {
            config: config(&[("wants-body", "true")]),
            ..PluginSpec::default()
        },
    )
    .expect("load");
    assert!(!reg.valve_wants_body("nobody").expect("wants"));
    assert!(reg.valve_wants_body("body").expect("wants"));
    let mut req = get("/x", "");
    req.body = Some(vec![1; 10]);
    let text = |name| {
        answered(
            reg.valve_call(name, &req, &mut MemorySession::none())
                .expect("call"),
        )
        .1
    };
    assert!(text("nobody").ends_with("body=0"));
    assert!(text("body").ends_with("body=10"));
}

#[test]
fn registry_admin_operations() {
    let reg = registry();
    reg.load("a", &component("misbehave"), PluginSpec::default())
        .expect("load a");
    reg.load("b", &component("bench-app"), PluginSpec::default())
        .expect("load b");
    assert!(
        reg.load("a", &component("misbehave"), PluginSpec::default())
            .is_err(),
        "duplicate name"
    );
    let names = |reg: &PluginRegistry| reg.list().into_iter().map(|i| i.name).collect::<Vec<_>>();
    assert_eq!(names(&reg), ["a", "b"]);
    reg.reorder(&["b"]).expect("reorder");
    assert_eq!(names(&reg), ["b", "a"]);
    reg.disable("a").expect("disable");
    assert_eq!(reg.enabled(shoal_plugin_host::PluginWorld::Valve), ["b"]);
    assert_eq!(
        reg.valve_call("a", &get("/x", ""), &mut MemorySession::none())
            .expect("call"),
        ValveOutcome::pass()
    );
    reg.enable("a").expect("enable");
    let info = reg.info("a").expect("info");
    assert_eq!(info.digest.len(), 64);
    assert_eq!(info.world, shoal_plugin_host::PluginWorld::Valve);
    let too_big = Limits {
        memory_bytes: 1 << 40,
        ..Limits::default()
    };
    assert!(reg.set_limits("a", too_big).is_err());
    reg.unload("a").expect("unload");
    assert_eq!(names(&reg), ["b"]);
    assert!(reg.unload("a").is_err());
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EngineOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..EngineOptions::default()
    };
    let reg = PluginRegistry::new(options, facts()).expect("engine");
    reg.load("bench", &component("bench-app"), PluginSpec::default())
        .expect("load");
    let files = || walk(dir.path());
    assert!(
        poll_blocking(Duration::from_secs(5), || files() > 0),
        "nothing written to the cache dir"
    );
    println!("pooling allocator in use: {}", reg.pooling());
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn on_demand_allocation_works_too() {
    let options = EngineOptions {
        pooling: false,
        ..EngineOptions::default()
    };
    let reg = PluginRegistry::new(options, facts()).expect("engine");
    assert!(!reg.pooling());
    reg.load("bench", &component("bench-app"), PluginSpec::default())
        .expect("load");
    let (status, body) = answered(
        reg.valve_call(
            "bench",
            &get("/app/counter", ""),
            &mut MemorySession::none(),
        )
        .expect("call"),
    );
    assert_eq!(
        (status, body.as_str()),
        (200, "counter=1 session=mem-1 node=node1\n")
    );
    let calls = reg
        .metrics()
        .into_iter()
        .find(|m| m.name == "plugin.bench.host.calls");
    assert_eq!(calls.map(|m| m.value), Some(1));
}
