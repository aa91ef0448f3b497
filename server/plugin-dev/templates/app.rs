//! {{name}}: a shoal application written as a valve that answers every request of its
//! context (world `valve`). `GET <context>/visits` counts the visits of a session;
//! everything else gets a greeting. Configuration: `greeting` (default `hello`).
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::valve::{Outcome, Request, Session, Valve};

struct Plugin;

impl Valve for Plugin {
    fn wants_body() -> bool {
        false
    }

    fn handle(req: Request, session: &Session) -> Outcome {
        let node = host::local_member().name;
        if req.path.ends_with("/visits") {
            session.create();
            let visits = session
                .get("visits")
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            session.set("visits", visits.to_string().as_bytes());
            return Outcome::text(200, format!("visits={visits} node={node}\n"));
        }
        if !req.is_health_probe() {
            host::counter_add("requests", 1);
        }
        let greeting = host::config_get("greeting").unwrap_or_else(|| "hello".into());
        Outcome::text(200, format!("{greeting} from {node}\n"))
    }
}

shoal_plugin_sdk::export_valve!(Plugin);
