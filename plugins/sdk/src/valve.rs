//! The `valve` world: see requests, use the session, pass or respond.
//!
//! Implement [`Valve`] and export the type with [`export_valve!`](crate::export_valve).
//! A valve that always responds is an application.
wit_bindgen::generate!({
    world: "valve",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "__export_valve_world",
    default_bindings_module: "shoal_plugin_sdk::valve",
    runtime_path: "shoal_plugin_sdk::wit_bindgen::rt",
});

pub use self::shoal::plugin::host as raw_host;
pub use self::shoal::plugin::http::{NextStep, Response};
pub use self::shoal::plugin::types::{Header, LogLevel, MemberInfo};
/// The trait a valve implements.
pub use self::Guest as Valve;

impl Default for NextStep {
    fn default() -> Self {
        NextStep {
            set_request_headers: Vec::new(),
            add_response_headers: Vec::new(),
        }
    }
}

impl Outcome {
    /// Lets the request through unchanged.
    pub fn pass() -> Outcome {
        Outcome::Next(NextStep::default())
    }
    /// Answers with a `text/plain` body.
    pub fn text(status: u16, body: impl Into<String>) -> Outcome {
        Outcome::Respond(Response {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into().into_bytes(),
        })
    }
}

impl Request {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::util::find_header(&self.headers, name)
    }
    /// First query parameter with this name (not percent-decoded).
    pub fn param(&self, name: &str) -> Option<&str> {
        crate::util::query_param(&self.query, name)
    }
    /// Whether a balancer's health probe sent this (header `x-shoal-probe`, set by
    /// `shoal balancer`): skip work meant for users (counting, logging, rewriting). Any
    /// client can send the header, so never skip a security check for it.
    pub fn is_health_probe(&self) -> bool {
        self.header(crate::util::PROBE_HEADER).is_some()
    }
}

/// Exports a type implementing [`Valve`] as the plugin's valve.
#[macro_export]
macro_rules! export_valve {
    ($t:ident) => {
        $crate::valve::__export_valve_world!($t with_types_in $crate::valve);
    };
}
