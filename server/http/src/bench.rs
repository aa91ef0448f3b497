//! The bench app: a native context implementing exactly the HTTP contract of the Tomcat peer
//! harness (`shared/peers/tomcat/README.md`, `BenchServlet.java`), so the same measurements
//! run against shoal. One line of `k=v` tokens per response. It is the [`App`] of every
//! context whose caller did not choose another.
use crate::app::App;
use crate::error::HttpError;
use crate::handle::SessionHandle;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{StatusCode, Uri};
use shoal_session::{AttrValue, SessionService};
use std::collections::HashMap;
use std::sync::Arc;

/// The largest `size` /app/set accepts (the servlet's bound).
const MAX_SET_SIZE: i64 = 16 * 1024 * 1024;

/// The bench app (`app = "bench"` in a context's configuration).
pub struct BenchApp;

impl App for BenchApp {
    fn name(&self) -> &str {
        "bench"
    }

    fn router(&self, service: Arc<SessionService>) -> Router {
        router(service)
    }
}

fn router(service: Arc<SessionService>) -> Router {
    Router::new()
        .route("/counter", any(counter))
        .route("/set", any(set))
        .route("/get", any(get))
        .route("/invalidate", any(invalidate))
        .route("/stats", any(stats))
        .fallback(unknown)
        .with_state(service)
}

type Params = Query<HashMap<String, String>>;

fn reply(status: StatusCode, body: String) -> Response {
    let mut r = (status, body + "\n").into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn param<'a>(p: &'a Params, name: &str, default: &'a str) -> &'a str {
    p.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or(default)
}

/// The servlet's payload: `size` bytes of `abc...zabc...`.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// CRC-32 (IEEE), as java.util.zip.CRC32.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn node(s: &SessionService) -> String {
    s.route()
}

async fn counter(
    State(svc): State<Arc<SessionService>>,
    Extension(h): Extension<SessionHandle>,
) -> Response {
    h.get(true).await;
    let v = h
        .attribute("counter")
        .and_then(|a| a.as_json())
        .and_then(|j| j.as_i64())
        .unwrap_or(0)
        + 1;
    if let Err(e) = h.set_attribute("counter", AttrValue::Json(v.to_string())) {
        return HttpError::Session(e).into_response();
    }
    let id = h.id().unwrap_or_default();
    reply(
        StatusCode::OK,
        format!("counter={v} session={id} node={}", node(&svc)),
    )
}

async fn set(
    State(svc): State<Arc<SessionService>>,
    Extension(h): Extension<SessionHandle>,
    p: Params,
) -> Response {
    let key = param(&p, "key", "data").to_owned();
    let size = match param(&p, "size", "0").parse::<i64>() {
        Ok(n) if (0..=MAX_SET_SIZE).contains(&n) => n as usize,
        _ => return reply(StatusCode::BAD_REQUEST, "error=bad-size".into()),
    };
    h.get(true).await;
    if let Err(e) = h.set_attribute(&key, AttrValue::Bytes(payload(size))) {
        return HttpError::Session(e).into_response();
    }
    let id = h.id().unwrap_or_default();
    reply(
        StatusCode::OK,
        format!("set={key} size={size} session={id} node={}", node(&svc)),
    )
}

async fn get(
    State(svc): State<Arc<SessionService>>,
    Extension(h): Extension<SessionHandle>,
    p: Params,
) -> Response {
    let key = param(&p, "key", "counter");
    let n = node(&svc);
    if !h.get(false).await {
        return reply(StatusCode::NOT_FOUND, format!("error=no-session node={n}"));
    }
    let id = h.id().unwrap_or_default();
    match h.attribute(key) {
        None => reply(
            StatusCode::NOT_FOUND,
            format!("error=no-attribute session={id} node={n}"),
        ),
        Some(AttrValue::Bytes(b)) => {
            let intact = b == payload(b.len());
            let (size, crc) = (b.len(), crc32(&b));
            reply(
                StatusCode::OK,
                format!("key={key} size={size} crc={crc} intact={intact} session={id} node={n}"),
            )
        }
        Some(json) => {
            let v = match json.as_json() {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            reply(
                StatusCode::OK,
                format!("key={key} value={v} session={id} node={n}"),
            )
        }
    }
}

async fn invalidate(
    State(svc): State<Arc<SessionService>>,
    Extension(h): Extension<SessionHandle>,
) -> Response {
    let had = h.get(false).await;
    if had {
        h.invalidate();
    }
    reply(
        StatusCode::OK,
        format!("invalidated={had} node={}", node(&svc)),
    )
}

async fn stats(State(svc): State<Arc<SessionService>>) -> Response {
    let s = svc.stats();
    let manager = match svc.config().manager {
        shoal_session::ManagerKind::Delta => "DeltaManager",
        shoal_session::ManagerKind::Backup => "BackupManager",
        shoal_session::ManagerKind::Persistent => "PersistentManager",
    };
    let members = svc.link().members().len();
    let rss_kib = rss_kib();
    reply(
        StatusCode::OK,
        format!(
            "node={} activeSessions={} sessionCounter={} manager={manager} members={members} heapUsedMiB={} heapUsedKiB={rss_kib} heapCommittedMiB={} rywWaits={} rywFetches={} rywLost={} rywBadTokens={} rywLostIds={} rywWaitMs={}",
            node(&svc),
            s.active_sessions,
            s.sessions_created,
            rss_kib >> 10,
            rss_kib >> 10,
            s.ryw_waits,
            s.ryw_fetches,
            s.ryw_lost,
            s.ryw_bad_tokens,
            s.ryw_lost_ids.join(","),
            // `le:count` per histogram bucket (ms), `inf` for the last.
            s.ryw_wait_ms
                .iter()
                .map(|(le, n)| match *le {
                    u64::MAX => format!("inf:{n}"),
                    le => format!("{le}:{n}"),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    )
}

async fn unknown(uri: Uri) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        format!("error=unknown-path path={}", uri.path()),
    )
}

/// Resident set size of this process in KiB (reported as heapUsedKiB: shoal has no heap
/// separate from the process).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_matches_java() {
        // java.util.zip.CRC32 of "123456789" is 0xCBF43926.
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(super::payload(28), b"abcdefghijklmnopqrstuvwxyzab");
    }
}
