//! Wasm plugins in the HTTP pipeline: one [`Valve`] per context that runs the registry's
//! enabled valve plugins in pipeline order, so load / enable / disable / reorder / reload
//! through the admin API take effect on the next request without rebuilding routers.
//!
//! The session is lent to each plugin through `crate::session_access::HandleAccess`
//! (looked up before the plugin runs).
use crate::session_access::HandleAccess;
use axum::body::Body;
use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue, StatusCode};
use shoal_http::{Next, Request, Response, SessionHandle, Valve};
use shoal_plugin_host::{HttpRequest, PluginRegistry, PluginWorld, ValveOutcome};
use std::sync::Arc;

/// Largest request body handed to a valve that asks for bodies.
const MAX_VALVE_BODY: usize = 1 << 20;

pub struct WasmValves {
    pub registry: Arc<PluginRegistry>,
    /// Context path (for the plugins' placement; every valve plugin runs in every context
    /// unless its load request named contexts).
    pub context: String,
    pub placement: Arc<crate::plugins::Placement>,
}

impl Valve for WasmValves {
    fn name(&self) -> &str {
        "WasmValves"
    }

    fn invoke(&self, req: Request, next: Next) -> BoxFuture<'static, Response> {
        let registry = self.registry.clone();
        let names: Vec<String> = registry
            .enabled(PluginWorld::Valve)
            .into_iter()
            .filter(|n| self.placement.applies(n, &self.context))
            .collect();
        Box::pin(async move {
            if names.is_empty() {
                return next.run(req).await;
            }
            run_valves(registry, names, req, next).await
        })
    }
}

async fn run_valves(
    registry: Arc<PluginRegistry>,
    names: Vec<String>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let wants_body = names
        .iter()
        .any(|n| registry.valve_wants_body(n).unwrap_or(false));
    let (body, body_bytes) = if wants_body {
        match axum::body::to_bytes(body, MAX_VALVE_BODY).await {
            Ok(b) => (Body::from(b.clone()), Some(b.to_vec())),
            Err(e) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "error=body-too-large detail=\"a plugin valve reads request bodies up to {MAX_VALVE_BODY} bytes: {e}\"\n"
                    ),
                );
            }
        }
    } else {
        (body, None)
    };
    let handle = parts.extensions.get::<SessionHandle>().cloned();
    if let Some(h) = &handle {
        h.get(false).await;
    }
    let mut access = HandleAccess { handle };
    let mut hreq = HttpRequest {
        // `as_str().to_owned()` rather than `to_string()`: no formatting machinery on the
        // per-request path.
        method: parts.method.as_str().to_owned(),
        // The full path (context included): the router strips the context prefix, and
        // plugins (e.g. the bench app's `context` config) match on what the client sent.
        path: match parts.extensions.get::<axum::extract::OriginalUri>() {
            Some(axum::extract::OriginalUri(uri)) => uri.path().to_owned(),
            None => parts.uri.path().to_owned(),
        },
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: plugin_headers(&parts.headers),
        body: body_bytes,
    };
    let mut response_headers: Vec<(String, String)> = Vec::new();
    for name in &names {
        match registry.valve_call(name, &hreq, &mut access) {
            Ok(ValveOutcome::Next {
                set_request_headers,
                add_response_headers,
            }) => {
                for (k, v) in set_request_headers {
                    set_header(&mut parts.headers, &k, &v);
                    hreq.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&k));
                    if !v.is_empty() {
                        hreq.headers.push((k, v));
                    }
                }
                response_headers.extend(add_response_headers);
            }
            Ok(ValveOutcome::Respond(r)) => {
                let mut resp = Response::new(Body::from(r.body));
                *resp.status_mut() =
                    StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                for (k, v) in r.headers.iter().chain(response_headers.iter()) {
                    append_header(resp.headers_mut(), k, v);
                }
                return resp;
            }
            // Unloaded between listing and calling: skip it, like a disabled plugin.
            Err(e) => tracing::debug!(plugin = %name, "valve skipped: {e}"),
        }
    }
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    for (k, v) in &response_headers {
        append_header(resp.headers_mut(), k, v);
    }
    resp
}

/// The request headers as plugins see them (values that are not visible ASCII are left out).
pub(crate) fn plugin_headers(h: &http::HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(h.len());
    for (k, v) in h {
        if let Ok(v) = v.to_str() {
            out.push((k.as_str().to_owned(), v.to_owned()));
        }
    }
    out
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r
}

fn set_header(h: &mut http::HeaderMap, k: &str, v: &str) {
    let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else {
        return;
    };
    if v.is_empty() {
        h.remove(&name);
    } else if let Ok(val) = HeaderValue::from_str(v) {
        h.insert(name, val);
    }
}

fn append_header(h: &mut http::HeaderMap, k: &str, v: &str) {
    if let (Ok(name), Ok(val)) = (
        HeaderName::from_bytes(k.as_bytes()),
        HeaderValue::from_str(v),
    ) {
        h.append(name, val);
    }
}
