//! Rejects requests that do not carry `Authorization: Bearer <token>` with 401, and tags
//! the responses of the requests it lets through.
//!
//! Config: `token` (required; without it every request is rejected, never let through),
//! `realm` (default `shoal`), `response-header` (default `x-shoal-auth`) and
//! `response-value` (default `passed`).
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::valve::{NextStep, Outcome, Request, Response, Session, Valve};

struct AuthValve;

impl Valve for AuthValve {
    fn wants_body() -> bool {
        false
    }

    fn handle(req: Request, _session: &Session) -> Outcome {
        let presented = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        let authorized = match (host::config_get("token"), presented) {
            (Some(token), Some(given)) => {
                !token.is_empty() && constant_time_eq(token.as_bytes(), given.as_bytes())
            }
            _ => false,
        };
        if !authorized {
            host::counter_add("rejected", 1);
            let realm = host::config_get("realm").unwrap_or_else(|| "shoal".into());
            return Outcome::Respond(Response {
                status: 401,
                headers: vec![
                    (
                        "www-authenticate".into(),
                        format!("Bearer realm=\"{realm}\""),
                    ),
                    ("content-type".into(), "text/plain".into()),
                ],
                body: b"error=unauthorized\n".to_vec(),
            });
        }
        host::counter_add("passed", 1);
        let name = host::config_get("response-header").unwrap_or_else(|| "x-shoal-auth".into());
        let value = host::config_get("response-value").unwrap_or_else(|| "passed".into());
        Outcome::Next(NextStep {
            // The token goes no further than this valve.
            set_request_headers: vec![("authorization".into(), String::new())],
            add_response_headers: vec![(name, value)],
        })
    }
}

/// Compares without an early exit, so the time taken does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

shoal_plugin_sdk::export_valve!(AuthValve);

#[cfg(test)]
mod tests {
    #[test]
    fn compares_tokens() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
