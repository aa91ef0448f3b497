//! The hyper path: requests the lean path does not carry (HTTP/1.0, upgrades, `Expect`,
//! streamed bodies, ...) are served by hyper for the rest of their connection, which the
//! lean path hands over with the bytes it already read ([`Rewind`]).
//!
//! Forwarding one request: read the route, fix the headers, and try backends through
//! [`retry::forward`], which decides whether a failed attempt may be sent elsewhere.

mod rewind;

pub(crate) use rewind::Rewind;

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};

use crate::backend::BackendState;
use crate::body::{full, plain, Body};
use crate::headers::{BACKEND_HEADER, HOP_BY_HOP};
use crate::pick::session_route;
use crate::retry::{self, Attempt, Failure, Forwarded};
use crate::state::Inner;

/// The request body, kept when small enough to be sent again.
enum ReqBody {
    Replayable(Bytes),
    Streaming(Option<Incoming>),
}

pub(crate) async fn handle(
    inner: Arc<Inner>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    if !inner.config.status_path.is_empty() && req.uri().path() == inner.config.status_path {
        return Ok(status_response(&inner, req.method()));
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
    let idempotent = retry::is_idempotent(parts.method.as_str());
    let replayable = matches!(body, ReqBody::Replayable(_));
    let mut request = Forwarding {
        inner,
        parts: &parts,
        body: &mut body,
    };
    let forwarded = retry::forward(
        inner,
        sticky.as_deref(),
        idempotent,
        replayable,
        &mut request,
    )
    .await;
    match forwarded {
        Ok(Forwarded::Answered(response)) => response,
        Ok(Forwarded::GaveUp(Some((_, Failure::Client(e))))) => plain(StatusCode::BAD_REQUEST, &e),
        Ok(Forwarded::GaveUp(last)) => give_up(&parts.method, last),
        Err(never) => match never {},
    }
}

/// The request being forwarded, as [`retry::forward`] tries it on backends.
struct Forwarding<'a> {
    inner: &'a Inner,
    parts: &'a Parts,
    body: &'a mut ReqBody,
}

impl Attempt for Forwarding<'_> {
    type Answer = Response<Body>;
    type Error = Infallible;

    fn attempt(
        &mut self,
        backend: &Arc<BackendState>,
    ) -> impl Future<Output = Result<Result<Response<Body>, Failure>, Infallible>> + Send {
        let body = next_body(self.body);
        let (inner, parts) = (self.inner, self.parts);
        async move {
            // `None` is not reached: a streamed body is not replayable, so it is tried once.
            let Some(body) = body else {
                return Ok(Err(Failure::Client(
                    "the request body was already sent".into(),
                )));
            };
            Ok(attempt(inner, backend, parts, body).await)
        }
    }
}

/// One try on one backend ([`retry::forward`] records a failure on the backend).
async fn attempt(
    inner: &Inner,
    backend: &BackendState,
    parts: &Parts,
    body: Body,
) -> Result<Response<Body>, Failure> {
    let uri = Uri::builder()
        .scheme(if backend.tls { "https" } else { "http" })
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

    match result {
        Ok(Ok(response))
            if response.status() == StatusCode::SERVICE_UNAVAILABLE
                && response
                    .headers()
                    .contains_key(shoal_cluster::roles::REFUSED_HEADER) =>
        {
            Err(Failure::Refused(format!(
                "{} answered 503 without running the request",
                backend.route
            )))
        }
        Ok(Ok(response)) => Ok(relay(response, &backend.route)),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(Failure::Timeout),
    }
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

/// The balancer's own answer when no backend produced a response.
fn give_up(method: &Method, last: Option<(String, Failure)>) -> Response<Body> {
    let (status, message) = retry::give_up_text(method.as_str(), last);
    plain(status, &message)
}

/// The status endpoint: GET/HEAD only, JSON of [`crate::BalancerStats`].
fn status_response(inner: &Inner, method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "the status endpoint answers GET only",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match serde_json::to_vec_pretty(&inner.stats()) {
        Ok(json) => {
            let mut r = Response::new(full(json.into()));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("status not serializable: {e}"),
        ),
    }
}
