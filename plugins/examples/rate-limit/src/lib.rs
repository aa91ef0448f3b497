//! Limits each session to `limit` requests per `window-ms` (defaults 100 per 60000 ms),
//! answering 429 beyond it. The state lives in the session (attribute `rate-limit`), so it
//! replicates with the session and survives fail-over and plugin reloads.
//!
//! Requests without a session pass unless `create-session = true`.
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::valve::{NextStep, Outcome, Request, Response, Session, Valve};

const ATTRIBUTE: &str = "rate-limit";

/// Window start (ms since the Unix epoch) and requests counted in it.
#[derive(Debug, PartialEq)]
struct Window {
    start_ms: u64,
    count: u32,
}

impl Window {
    fn decode(bytes: &[u8]) -> Option<Window> {
        let start_ms = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
        let count = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
        Some(Window { start_ms, count })
    }
    fn encode(&self) -> Vec<u8> {
        let mut b = self.start_ms.to_le_bytes().to_vec();
        b.extend_from_slice(&self.count.to_le_bytes());
        b
    }
    /// Counts one request at `now`; returns the new window and whether it is allowed.
    fn admit(previous: Option<Window>, now: u64, window_ms: u64, limit: u32) -> (Window, bool) {
        let mut w = match previous {
            Some(w) if now.saturating_sub(w.start_ms) < window_ms => w,
            _ => Window {
                start_ms: now,
                count: 0,
            },
        };
        w.count = w.count.saturating_add(1);
        let allowed = w.count <= limit;
        (w, allowed)
    }
}

fn config_num(key: &str, default: u64) -> u64 {
    host::config_get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

struct RateLimit;

impl Valve for RateLimit {
    fn wants_body() -> bool {
        false
    }

    fn handle(_req: Request, session: &Session) -> Outcome {
        if session.id().is_none() {
            if host::config_get("create-session").as_deref() != Some("true") {
                return Outcome::pass();
            }
            session.create();
        }
        let (limit, window_ms) = (
            config_num("limit", 100) as u32,
            config_num("window-ms", 60_000),
        );
        let now = host::wall_clock_ms();
        let previous = session.get(ATTRIBUTE).and_then(|b| Window::decode(&b));
        let (window, allowed) = Window::admit(previous, now, window_ms, limit);
        session.set(ATTRIBUTE, &window.encode());
        let remaining = limit.saturating_sub(window.count);
        if allowed {
            return Outcome::Next(NextStep {
                set_request_headers: Vec::new(),
                add_response_headers: vec![("x-ratelimit-remaining".into(), remaining.to_string())],
            });
        }
        host::counter_add("limited", 1);
        let retry_s = (window.start_ms + window_ms)
            .saturating_sub(now)
            .div_ceil(1000);
        Outcome::Respond(Response {
            status: 429,
            headers: vec![("retry-after".into(), retry_s.to_string())],
            body: b"error=rate-limited\n".to_vec(),
        })
    }
}

shoal_plugin_sdk::export_valve!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_and_resets() {
        let (w, ok) = Window::admit(None, 1000, 100, 2);
        assert!(ok);
        let (w, ok) = Window::admit(Some(w), 1050, 100, 2);
        assert!(ok);
        let (w, ok) = Window::admit(Some(w), 1099, 100, 2);
        assert!(!ok);
        assert_eq!(
            Window::decode(&w.encode()),
            Some(Window {
                start_ms: 1000,
                count: 3
            })
        );
        let (w, ok) = Window::admit(Some(w), 1100, 100, 2);
        assert!(ok);
        assert_eq!(w.count, 1);
    }
}
