//! The bench application of `/work/shared/peers/tomcat` (BenchServlet) as a Wasm valve that
//! always answers for paths under its context. Same lines, same status codes:
//!
//! - `GET /app/counter` → `counter=<n> session=<id> node=<route>` (creates the session)
//! - `GET /app/set?key=K&size=N` stores N bytes `abc…` under K (creates the session)
//! - `GET /app/get?key=K` → 200 `key=K value=<v> …` / 404 `error=no-session` /
//!   404 `error=no-attribute`; never creates a session
//! - `GET /app/invalidate` → `invalidated=<bool> node=<route>`
//! - `GET /app/stats` → `node=.. activeSessions=.. members=.. heapUsedKiB=..`
//!
//! Config: `context` (default `/app`). Paths outside the context pass to the next valve.
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::valve::{Outcome, Request, Response, Session, Valve};
use std::sync::OnceLock;

mod contract;
/// The URL filter example's allocator (see there): each call allocates and frees the
/// request's strings, the session values and the answer.
#[path = "../../url-filter/src/pool_alloc.rs"]
mod pool_alloc;
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();

/// The configured context: configuration is fixed for an instance's whole life (a new
/// configuration is a new version with fresh instances), so it is read once.
static CONTEXT: OnceLock<String> = OnceLock::new();
/// The node's name (its route): fixed for the node's life, but empty while a plugin loaded
/// at startup runs before the channel has started, so it is only kept once known.
static NODE: OnceLock<String> = OnceLock::new();

fn node() -> String {
    if let Some(n) = NODE.get() {
        return n.clone();
    }
    let name = host::local_member().name;
    if !name.is_empty() {
        let _ = NODE.set(name.clone());
    }
    name
}

struct BenchApp;

impl Valve for BenchApp {
    fn wants_body() -> bool {
        false
    }

    fn handle(req: Request, session: &Session) -> Outcome {
        let context =
            CONTEXT.get_or_init(|| host::config_get("context").unwrap_or_else(|| "/app".into()));
        let Some(servlet_path) = req.path.strip_prefix(context.as_str()) else {
            return Outcome::pass();
        };
        if !(servlet_path.is_empty() || servlet_path.starts_with('/')) {
            return Outcome::pass();
        }
        let (status, mut line) = contract::serve(servlet_path, &req, session, &node());
        host::counter_add("requests", 1);
        line.push('\n');
        Outcome::Respond(Response {
            status,
            headers: vec![
                ("content-type".into(), "text/plain;charset=UTF-8".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: line.into_bytes(),
        })
    }
}

shoal_plugin_sdk::export_valve!(BenchApp);
