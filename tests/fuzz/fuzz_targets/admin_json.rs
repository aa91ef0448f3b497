//! The admin API's request bodies and query strings, through the real routes: the router of
//! `shoal_admin::router` over the in-memory twin of a node (`MemoryBackend`), so the DTOs are
//! deserialized by the same extractors and checked by the same rules as on a node. Byte 0
//! picks the endpoint; the rest is the JSON body, or the query string and the upload. No
//! input may make it panic or answer 500, and every refusal is a problem+json document.
//! The twin keeps what earlier inputs changed (a reorder, a loaded plugin); it is rebuilt
//! every 256 inputs so that it cannot grow without bound.
//! Run: `scripts/fuzz.sh 60 admin_json` (docs/fuzzing.md).
#![no_main]
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use shoal_admin::{router, AdminConfig, MemoryBackend, PROBLEM_JSON};
use std::cell::RefCell;
use std::sync::Arc;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-admin-token-0123456789";

struct Twin {
    router: axum::Router,
    uses: u32,
}

thread_local! {
    static TWIN: RefCell<Option<Twin>> = const { RefCell::new(None) };
}

fn fresh() -> Twin {
    let config = AdminConfig {
        admin_token: Some(TOKEN.into()),
        ..AdminConfig::default()
    };
    Twin {
        router: router(Arc::new(MemoryBackend::new()), &config),
        uses: 0,
    }
}

/// Keeps the bytes a query string may hold as they are and percent-encodes the rest, so the
/// fuzzer still writes `&`, `=`, `+` and its own `%xx` escapes.
fn query(bytes: &[u8]) -> String {
    let mut q = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"&=+%-_.~,".contains(&b) {
            q.push(char::from(b));
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    q
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // For the endpoints with a query and an upload: the query is what comes before the first
    // 0xFF byte, the upload what follows it.
    let (q, upload) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (query(&rest[..i]), rest[i + 1..].to_vec()),
        None => (query(rest), Vec::new()),
    };
    let (method, uri, body, json) = match pick % 8 {
        0 => (
            Method::PUT,
            "/api/v1/channel/interceptors".to_string(),
            rest.to_vec(),
            true,
        ),
        1 => (
            Method::PUT,
            "/api/v1/contexts/app/pipeline".to_string(),
            rest.to_vec(),
            true,
        ),
        2 => (
            Method::PUT,
            "/api/v1/plugins/auth-valve/config".to_string(),
            rest.to_vec(),
            true,
        ),
        3 => (
            Method::GET,
            format!("/api/v1/contexts/app/sessions?{q}"),
            Vec::new(),
            false,
        ),
        4 => (
            Method::GET,
            format!("/api/v1/events/recent?{q}"),
            Vec::new(),
            false,
        ),
        5 => (Method::POST, format!("/api/v1/plugins?{q}"), upload, false),
        6 => (
            Method::PUT,
            format!("/api/v1/deployments/app?{q}"),
            upload,
            false,
        ),
        _ => (
            Method::DELETE,
            format!("/api/v1/contexts/shop/sessions?{q}"),
            Vec::new(),
            false,
        ),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    if json {
        request = request.header(header::CONTENT_TYPE, "application/json");
    } else if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/octet-stream");
    }
    let Ok(request) = request.body(Body::from(body)) else {
        return; // not a URI at all: no request reaches the router
    };
    let app = TWIN.with(|t| {
        let mut t = t.borrow_mut();
        let twin = t.get_or_insert_with(fresh);
        twin.uses += 1;
        if twin.uses > 256 {
            *twin = fresh();
        }
        twin.router.clone()
    });
    let response = futures::executor::block_on(app.oneshot(request)).expect("infallible");
    let status = response.status();
    let problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let body = futures::executor::block_on(response.into_body().collect())
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "{uri}: 500 {}",
        String::from_utf8_lossy(&body)
    );
    if status.is_client_error() || status.is_server_error() {
        assert!(
            problem,
            "{uri}: {status} without a problem+json body: {}",
            String::from_utf8_lossy(&body)
        );
    }
});
