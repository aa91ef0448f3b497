//! Plugins that loop, exhaust memory, trap or answer garbage: the host keeps serving the
//! other plugins and applies each plugin's failure policy.
mod common;
use common::*;
use shoal_plugin_host::{
    FailurePolicy, Limits, MemorySession, PluginSpec, PluginState, ValveOutcome,
};
use shoal_testkit::poll_blocking;
use std::time::{Duration, Instant};

fn limits(timeout_ms: u64, memory: usize) -> Limits {
    Limits {
        call_timeout: Duration::from_millis(timeout_ms),
        memory_bytes: memory,
        ..Limits::default()
    }
}

fn call(reg: &shoal_plugin_host::PluginRegistry, name: &str) -> ValveOutcome {
    reg.valve_call(name, &get("/x", ""), &mut MemorySession::none())
        .expect("valve call")
}

#[test]
fn infinite_loop_hits_the_time_limit() {
    let reg = registry();
    reg.load(
        "loop",
        &component("misbehave"),
        spec_limits(
            &[("mode", "loop")],
            FailurePolicy::FailClosed,
            limits(30, 16 << 20),
        ),
    )
    .expect("load");
    reg.load(
        "open",
        &component("misbehave"),
        spec_limits(
            &[("mode", "loop")],
            FailurePolicy::FailOpen,
            limits(30, 16 << 20),
        ),
    )
    .expect("load");
    let started = Instant::now();
    assert_eq!(answered(call(&reg, "loop")).0, 503);
    assert_eq!(call(&reg, "open"), ValveOutcome::pass());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let info = reg.info("loop").expect("info");
    assert_eq!(info.failures.timeouts, 1);
    assert!(
        info.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("time limit")),
        "{:?}",
        info.last_error
    );
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let reg = registry();
    reg.load(
        "bomb",
        &component("misbehave"),
        spec_limits(
            &[("mode", "bomb")],
            FailurePolicy::FailClosed,
            limits(2000, 8 << 20),
        ),
    )
    .expect("load");
    assert_eq!(answered(call(&reg, "bomb")).0, 503);
    let info = reg.info("bomb").expect("info");
    assert_eq!(info.failures.memory, 1, "{info:?}");
}

#[test]
fn trap_huge_output_and_garbage_are_counted() {
    let reg = registry();
    let huge = Limits {
        max_output_bytes: 1 << 20,
        ..limits(2000, 32 << 20)
    };
    reg.load(
        "trap",
        &component("misbehave"),
        spec(&[("mode", "trap")], FailurePolicy::FailOpen),
    )
    .expect("load");
    reg.load(
        "huge",
        &component("misbehave"),
        spec_limits(
            &[("mode", "huge"), ("huge-bytes", "4000000")],
            FailurePolicy::FailClosed,
            huge,
        ),
    )
    .expect("load");
    reg.load(
        "garbage",
        &component("misbehave"),
        spec(&[("mode", "garbage")], FailurePolicy::FailClosed),
    )
    .expect("load");
    assert_eq!(call(&reg, "trap"), ValveOutcome::pass());
    assert_eq!(answered(call(&reg, "huge")).0, 503);
    assert_eq!(answered(call(&reg, "garbage")).0, 503);
    assert_eq!(reg.info("trap").expect("info").failures.traps, 1);
    assert_eq!(reg.info("huge").expect("info").failures.bad_output, 1);
    assert_eq!(reg.info("garbage").expect("info").failures.bad_output, 1);
    // Each failure discarded its instance; the next call gets a fresh one and fails alike.
    assert_eq!(call(&reg, "trap"), ValveOutcome::pass());
    assert_eq!(reg.info("trap").expect("info").failures.traps, 2);
}

/// A buffer the log writes into (the test's subscriber).
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Problem 6 of issue 17: a valve trapping on every call (a balancer's probes, twice a
/// second) wrote one warning with a backtrace per call. Identical failures are now logged
/// once per window; every one is still counted.
#[test]
fn identical_failures_are_logged_once_and_all_counted() {
    let reg = registry();
    reg.load(
        "trap",
        &component("misbehave"),
        spec(&[("mode", "trap")], FailurePolicy::FailOpen),
    )
    .expect("load");
    let log = LogBuffer::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // Callsite interest is cached process-wide: a test on another thread that reached the
        // warning first, with no subscriber, could have marked it "never" (tracing's known
        // flake with scoped subscribers in parallel tests). Re-evaluate it with this one.
        tracing::callsite::rebuild_interest_cache();
        for _ in 0..20 {
            assert_eq!(call(&reg, "trap"), ValveOutcome::pass());
        }
    });
    assert_eq!(reg.info("trap").expect("info").failures.traps, 20);
    let text = String::from_utf8_lossy(&log.0.lock().expect("log")).into_owned();
    let logged = text.matches("plugin call failed").count();
    assert_eq!(
        logged, 1,
        "20 identical traps logged {logged} times:\n{text}"
    );
}

#[test]
fn crash_loop_under_reload_policy_disables_the_plugin() {
    let reg = registry();
    let policy = FailurePolicy::Reload {
        backoff: Duration::from_millis(1),
        max_restarts: 3,
    };
    reg.load(
        "crashy",
        &component("misbehave"),
        spec(&[("mode", "trap")], policy),
    )
    .expect("load");
    let looped = poll_blocking(Duration::from_secs(5), || {
        let _ = call(&reg, "crashy");
        matches!(
            reg.info("crashy").expect("info").state,
            PluginState::CrashLoop(_)
        )
    });
    assert!(looped, "never reached crash loop: {:?}", reg.info("crashy"));
    let info = reg.info("crashy").expect("info");
    assert_eq!(info.failures.traps, 4, "max_restarts 3 allows 4 failures");
    // Disabled: skipped, not run.
    assert_eq!(call(&reg, "crashy"), ValveOutcome::pass());
    assert_eq!(reg.info("crashy").expect("info").failures.traps, 4);
    assert!(reg
        .enabled(shoal_plugin_host::PluginWorld::Valve)
        .is_empty());
    reg.enable("crashy").expect("enable");
    assert_eq!(
        reg.info("crashy").expect("info").state,
        PluginState::Enabled
    );
}

#[test]
fn reload_policy_recovers_after_backoff() {
    let reg = registry();
    // Long enough that the second call surely falls inside it, even on a loaded machine.
    let policy = FailurePolicy::Reload {
        backoff: Duration::from_millis(1000),
        max_restarts: 5,
    };
    reg.load(
        "flaky",
        &component("misbehave"),
        spec(&[("mode", "fail-first"), ("fail-calls", "1")], policy),
    )
    .expect("load");
    assert_eq!(answered(call(&reg, "flaky")).0, 503, "first call traps");
    // During the backoff calls are answered fail-closed without running.
    assert_eq!(answered(call(&reg, "flaky")).0, 503);
    assert!(reg.info("flaky").expect("info").failures.skipped >= 1);
    // The fresh instance starts its count again (statics are per instance): call 1 traps
    // again under `fail-first`, so use a reconfigured version that fails none.
    reg.configure(
        "flaky",
        config(&[
            ("mode", "fail-first"),
            ("fail-calls", "0"),
            ("version", "2"),
        ]),
    )
    .expect("configure");
    let ok = poll_blocking(
        Duration::from_secs(5),
        || matches!(call(&reg, "flaky"), ValveOutcome::Respond(r) if r.status == 200),
    );
    assert!(ok, "{:?}", reg.info("flaky"));
}

#[test]
fn other_plugins_keep_serving_while_one_misbehaves() {
    let reg = registry();
    reg.load("bench", &component("bench-app"), PluginSpec::default())
        .expect("load");
    reg.load(
        "loop",
        &component("misbehave"),
        spec_limits(
            &[("mode", "loop")],
            FailurePolicy::FailClosed,
            limits(20, 16 << 20),
        ),
    )
    .expect("load");
    reg.load(
        "bomb",
        &component("misbehave"),
        spec_limits(
            &[("mode", "bomb")],
            FailurePolicy::FailClosed,
            limits(500, 4 << 20),
        ),
    )
    .expect("load");
    std::thread::scope(|scope| {
        for bad in ["loop", "bomb"] {
            let reg = &reg;
            scope.spawn(move || {
                for _ in 0..5 {
                    assert_eq!(answered(call(reg, bad)).0, 503);
                }
            });
        }
        let mut session = MemorySession::none();
        for n in 1..=200 {
            let (status, body) = answered(
                reg.valve_call("bench", &get("/app/counter", ""), &mut session)
                    .expect("call"),
            );
            assert_eq!(
                (status, body),
                (200, format!("counter={n} session=mem-1 node=node1\n"))
            );
        }
    });
    assert_eq!(
        reg.info("bench").expect("info").failures,
        Default::default()
    );
    assert_eq!(reg.info("loop").expect("info").failures.timeouts, 5);
    assert_eq!(reg.info("bomb").expect("info").failures.memory, 5);
}
