//! {{name}}: a shoal valve (world `valve`). It runs for every request of the contexts it
//! is loaded on, before the application, and adds `x-hello: <greeting> from <node>` to
//! each response. Configuration: `greeting` (default `hello`).
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::valve::{NextStep, Outcome, Request, Session, Valve};

struct Plugin;

impl Valve for Plugin {
    fn wants_body() -> bool {
        false // ask for the body only if you need it: it is copied into the sandbox
    }

    fn handle(req: Request, _session: &Session) -> Outcome {
        // A balancer's health probe: nothing to do for a user (never skip a security check
        // for it: any client can send the header).
        if req.is_health_probe() {
            return Outcome::pass();
        }
        host::counter_add("requests", 1);
        let greeting = host::config_get("greeting").unwrap_or_else(|| "hello".into());
        let node = host::local_member().name;
        Outcome::Next(NextStep {
            set_request_headers: vec![],
            add_response_headers: vec![("x-hello".into(), format!("{greeting} from {node}"))],
        })
    }
}

shoal_plugin_sdk::export_valve!(Plugin);
