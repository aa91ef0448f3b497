//! Test fixture for the host: a valve that misbehaves on demand, chosen by config `mode`:
//!
//! - `ok` (default): answers `version=<config version> calls=<calls served by this instance>`
//! - `noop`: passes the request on at once (the host's per-call overhead, for benches)
//! - `loop`: never returns (the host's time limit must stop it)
//! - `bomb`: allocates until memory runs out (the host's memory limit must stop it)
//! - `trap`: panics (a trap)
//! - `huge`: answers with a body of `huge-bytes` bytes (default 64 MiB)
//! - `garbage`: answers status 0, which no HTTP response can have
//! - `fail-first`: traps on the first `fail-calls` calls (a static count) then behaves as `ok`
//! - `shared`: answers `instance=<calls served by this instance> shared=<calls of every
//!   instance and version>`, the latter through `host.counter-get` (new in 0.2.0)
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::valve::{Outcome, Request, Response, Session, Valve};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Calls served by this instance: shows the host's state semantics in tests.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Read once per instance: configuration cannot change without a new version.
static MODE: OnceLock<String> = OnceLock::new();

struct Misbehave;

impl Valve for Misbehave {
    fn wants_body() -> bool {
        host::config_get("wants-body").as_deref() == Some("true")
    }

    fn handle(req: Request, _session: &Session) -> Outcome {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let mode = MODE.get_or_init(|| host::config_get("mode").unwrap_or_else(|| "ok".into()));
        match mode.as_str() {
            "noop" => Outcome::pass(),
            "loop" => spin(),
            "bomb" => bomb(),
            "trap" => panic!("misbehave: trap requested"),
            "huge" => {
                let size = host::config_get("huge-bytes")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(64 << 20);
                Outcome::Respond(Response {
                    status: 200,
                    headers: Vec::new(),
                    body: vec![b'x'; size],
                })
            }
            "garbage" => Outcome::Respond(Response {
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
            }),
            "fail-first" => {
                let fail: u64 = host::config_get("fail-calls")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                if calls <= fail {
                    panic!("misbehave: failing call {calls} of {fail}");
                }
                ok(calls, &req)
            }
            "shared" => {
                host::counter_add("shared", 1);
                let shared = host::counter_get("shared");
                Outcome::text(200, format!("instance={calls} shared={shared}"))
            }
            _ => ok(calls, &req),
        }
    }
}

fn ok(calls: u64, req: &Request) -> Outcome {
    let version = host::config_get("version").unwrap_or_default();
    let body_len = req.body.as_ref().map_or(0, Vec::len);
    Outcome::text(
        200,
        format!("version={version} calls={calls} body={body_len}"),
    )
}

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        // Observable side effect so the loop is not optimised away.
        x = x.wrapping_add(1);
        if x == u64::MAX {
            host::log_info("unreachable");
        }
    }
}

fn bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        if hoard.len() == usize::MAX {
            host::log_info("unreachable");
        }
    }
}

shoal_plugin_sdk::export_valve!(Misbehave);
