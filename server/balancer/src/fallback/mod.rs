//! Forwarding one client request: pick a backend, send, and on failure decide whether the
//! request may go to another backend.
//!
//! The rule that keeps requests from being applied twice: a request is resent only if it
//! provably never reached a backend (connect failure, with `redispatch`), or if it is
//! idempotent and the backend closed the connection before any response byte (with
//! `retry_idempotent`). Everything else that loses its backend gets a 502 saying so.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};

use crate::backend::BackendState;
use crate::pick::{choose, session_route};
use crate::Inner;

/// Body type on both sides of the proxy.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, hyper::Error>;

/// Response header naming the backend that answered (tests and operators read it).
pub const BACKEND_HEADER: &str = "x-shoal-backend";

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1).
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The request body, kept when small enough to be sent again.
enum ReqBody {
    Replayable(Bytes),
    Streaming(Option<Incoming>),
}

/// Why an attempt produced no response.
pub(crate) enum Failure {
    /// Nothing reached the backend: safe to send anywhere else.
    NotSent(String),
    /// The request may have reached the backend; only idempotent ones may be resent.
    Lost(String),
    /// The client's own request body failed; the backend is not to blame.
    Client(String),
    /// No response head within `response_timeout`.
    Timeout,
}

pub(crate) async fn handle(
    inner: Arc<Inner>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    if !inner.config.status_path.is_empty() && req.uri().path() == inner.config.status_path {
        return Ok(crate::status_response(&inner, req.method()));
    }
    inner.requests.fetch_add(1, Ordering::Relaxed);
    let response = forward(&inner, req, peer).await;
    if response.headers().get(BACKEND_HEADER).is_none() {
        inner.errors.fetch_add(1, Ordering::Relaxed);
    }
    Ok(response)
}

async fn forward(inner: &Inner, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let sticky = session_route(
        &parts.headers,
        parts.uri.path(),
        &inner.config.cookie_name,
        &inner.config.session_header,
    )
    .map(str::to_owned);
    prepare_headers(&mut parts.headers, peer);
    let mut body = match read_body(body, inner.config.max_replay_body).await {
        Ok(b) => b,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("could not read the request body: {e}"),
            )
        }
    };
    let idempotent = is_idempotent(&parts.method);
    let backends = inner.registry.snapshot();
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<(String, Failure)> = None;
    loop {
        let tried_refs: Vec<&str> = tried.iter().map(String::as_str).collect();
        let rr = inner.rr.fetch_add(1, Ordering::Relaxed);
        let Some(backend) = choose(&backends, sticky.as_deref(), &tried_refs, rr) else {
            return give_up(&parts.method, last);
        };
        let Some(attempt_body) = next_body(&mut body) else {
            return give_up(&parts.method, last);
        };
        if !tried.is_empty() {
            inner.retries.fetch_add(1, Ordering::Relaxed);
        }
        match attempt(inner, &backend, &parts, attempt_body).await {
            Ok(response) => return response,
            Err(failure) => {
                if let Failure::Client(e) = &failure {
                    return plain(StatusCode::BAD_REQUEST, e);
                }
                let resend = may_resend(&inner.config, &failure, idempotent);
                tried.push(backend.route.clone());
                last = Some((backend.route.clone(), failure));
                if !resend {
                    return give_up(&parts.method, last);
                }
            }
        }
    }
}

/// One try on one backend. Marks the backend down when the failure says it is gone.
async fn attempt(
    inner: &Inner,
    backend: &BackendState,
    parts: &Parts,
    body: Body,
) -> Result<Response<Body>, Failure> {
    let uri = Uri::builder()
        .scheme("http")
        .authority(backend.authority.clone())
        .path_and_query(parts.uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|e| Failure::Client(format!("request target cannot be forwarded: {e}")))?;
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = uri;
    *upstream.version_mut() = Version::HTTP_11;
    *upstream.headers_mut() = parts.headers.clone();

    backend.requests.fetch_add(1, Ordering::Relaxed);
    backend.outstanding.fetch_add(1, Ordering::Relaxed);
    let sent = inner.client.request(upstream);
    let result = match inner.config.response_timeout.is_zero() {
        true => Ok(sent.await),
        false => tokio::time::timeout(inner.config.response_timeout, sent).await,
    };
    backend.outstanding.fetch_sub(1, Ordering::Relaxed);

    let failure = match result {
        Ok(Ok(response)) => return Ok(relay(response, &backend.route)),
        Ok(Err(e)) => classify(&e),
        Err(_) => Failure::Timeout,
    };
    note_failure(backend, &failure);
    Err(failure)
}

fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    let text = error_chain(e);
    if e.is_connect() {
        return Failure::NotSent(text);
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_user() {
                return Failure::Client(text);
            }
        }
        source = s.source();
    }
    Failure::Lost(text)
}

fn error_chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Passes the backend's response through, minus hop-by-hop headers, plus the backend name.
fn relay(response: Response<Incoming>, route: &str) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Ok(v) = HeaderValue::from_str(route) {
        parts
            .headers
            .insert(HeaderName::from_static(BACKEND_HEADER), v);
    }
    Response::from_parts(parts, body.boxed_unsync())
}

fn prepare_headers(headers: &mut HeaderMap, peer: SocketAddr) {
    strip_hop_by_hop(headers);
    let peer_ip = peer.ip().to_string();
    let xff = HeaderName::from_static("x-forwarded-for");
    let value = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {peer_ip}"),
        None => peer_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(xff, v);
    }
    headers
        .entry(HeaderName::from_static("x-forwarded-proto"))
        .or_insert(HeaderValue::from_static("http"));
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

async fn read_body(body: Incoming, limit: usize) -> Result<ReqBody, String> {
    let size = body.size_hint();
    match size.exact() {
        // Most requests (GET) have no body: nothing to read.
        Some(0) => Ok(ReqBody::Replayable(Bytes::new())),
        Some(n) if n <= limit as u64 => {
            let collected = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok(ReqBody::Replayable(collected.to_bytes()))
        }
        _ => Ok(ReqBody::Streaming(Some(body))),
    }
}

/// The body for the next attempt, or `None` when a streamed body was already used.
fn next_body(body: &mut ReqBody) -> Option<Body> {
    match body {
        ReqBody::Replayable(bytes) => Some(full(bytes.clone())),
        ReqBody::Streaming(slot) => slot.take().map(|b| b.boxed_unsync()),
    }
}

fn is_idempotent(method: &Method) -> bool {
    is_idempotent_name(method.as_str())
}

pub(crate) fn is_idempotent_name(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

/// Records a failed attempt on `backend`: a refused connection marks it down at once.
pub(crate) fn note_failure(backend: &BackendState, failure: &Failure) {
    backend.failures.fetch_add(1, Ordering::Relaxed);
    match failure {
        // A node that refuses connections is gone: stop sending it anything until a probe
        // succeeds. A connection closed mid-request is not proof (a kept-alive connection
        // can race the node's keep-alive timeout); if the node is really gone, the next
        // request to it gets a refused connection and marks it down then.
        Failure::NotSent(why) => {
            if backend.mark_down(why.clone()) {
                tracing::warn!(route = %backend.route, addr = %backend.authority, "backend marked down: {why}");
            }
        }
        Failure::Lost(why) => backend.set_last_error(why.clone()),
        Failure::Timeout => backend.set_last_error("response timeout".into()),
        Failure::Client(_) => {}
    }
}

/// Whether a failed attempt may be sent to another backend (see the module comment).
pub(crate) fn may_resend(
    config: &crate::BalancerConfig,
    failure: &Failure,
    idempotent: bool,
) -> bool {
    match failure {
        Failure::NotSent(_) => config.redispatch,
        Failure::Lost(_) => idempotent && config.retry_idempotent,
        Failure::Client(_) | Failure::Timeout => false,
    }
}

/// The balancer's own answer when no backend produced a response.
fn give_up(method: &Method, last: Option<(String, Failure)>) -> Response<Body> {
    let (status, message) = give_up_text(method.as_str(), last);
    plain(status, &message)
}

/// Status and message of [`give_up`], shared with the lean path.
pub(crate) fn give_up_text(method: &str, last: Option<(String, Failure)>) -> (StatusCode, String) {
    match last {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no backend is available; check the balancer status endpoint and the nodes' health".into(),
        ),
        Some((route, Failure::Timeout)) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("backend {route} did not answer within response_timeout_ms; the request may have been applied"),
        ),
        Some((route, Failure::Lost(why))) if !is_idempotent_name(method) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "backend {route} failed before answering this {method} ({why}); it was not resent \
                 because {method} is not idempotent and may already have been applied: check \
                 before repeating it"
            ),
        ),
        Some((route, Failure::Client(why))) => (
            StatusCode::BAD_REQUEST,
            format!("request to backend {route} failed on the client side: {why}"),
        ),
        Some((route, Failure::Lost(why) | Failure::NotSent(why))) => (
            StatusCode::BAD_GATEWAY,
            format!("no backend answered; last tried {route}: {why}"),
        ),
    }
}

pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn plain(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(format!("shoal-balancer: {message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
