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

mod contract;

struct BenchApp;

impl Valve for BenchApp {
    fn wants_body() -> bool {
        false
    }

    fn handle(req: Request, session: &Session) -> Outcome {
        let context = host::config_get("context").unwrap_or_else(|| "/app".to_string());
        let Some(servlet_path) = req.path.strip_prefix(context.as_str()) else {
            return Outcome::pass();
        };
        if !(servlet_path.is_empty() || servlet_path.starts_with('/')) {
            return Outcome::pass();
        }
        let node = host::local_member().name;
        let (status, line) = contract::serve(servlet_path, &req, session, &node);
        host::counter_add("requests", 1);
        Outcome::Respond(Response {
            status,
            headers: vec![
                ("content-type".into(), "text/plain;charset=UTF-8".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: format!("{line}\n").into_bytes(),
        })
    }
}

shoal_plugin_sdk::export_valve!(BenchApp);
