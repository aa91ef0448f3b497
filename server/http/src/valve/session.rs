//! SessionValve (Tomcat does this inside Request/Manager): binds the request to its session
//! id from the cookie or the session header, waits for a joining node's state transfer,
//! issues the cookie for new or re-routed sessions, and commits changes that no
//! ReplicationValve committed.
use super::{Next, Request, Response, Valve};
use crate::error::HttpError;
use crate::handle::SessionHandle;
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use http::header::{HeaderName, HeaderValue, COOKIE, SET_COOKIE};
use shoal_session::{parse_full_id, SessionService};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct SessionValve {
    pub(crate) service: Arc<SessionService>,
    pub(crate) cookie_name: String,
    pub(crate) header: HeaderName,
    /// Cookie `Path`: the context path.
    pub(crate) path: String,
    pub(crate) ready_wait: Duration,
}

/// The cookie and the header that carry the version token (read-your-writes, see
/// `shoal_session::TokenKey`); header clients get it back in the header.
pub(crate) const TOKEN_COOKIE: &str = "SHOALV";
pub(crate) const TOKEN_HEADER: &str = "x-shoal-version";

/// The first value of cookie `name` among the Cookie headers that `parse` accepts.
fn cookies<'a, T>(req: &'a Request, name: &str, parse: impl Fn(&'a str) -> Option<T>) -> Option<T> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find_map(|(k, val)| (k == name).then(|| parse(val.trim_matches('"'))).flatten())
        })
}

impl SessionValve {
    /// The version token of session `id` the client sent (cookie, else header), checked:
    /// one that does not verify is ignored (counted), never an error for the user.
    fn seen(&self, req: &Request, id: &shoal_session::SessionId) -> Option<shoal_session::Seen> {
        let token = cookies(req, TOKEN_COOKIE, Some).or_else(|| {
            req.headers()
                .get(TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
        })?;
        self.service.check_token(id, token.trim())
    }

    /// First well-formed `<cookie_name>=<id>[.<route>]` among the Cookie headers, else the
    /// session header.
    fn requested_id(&self, req: &Request) -> Option<(shoal_session::SessionId, Option<String>)> {
        cookies(req, &self.cookie_name, parse_full_id).or_else(|| {
            req.headers()
                .get(&self.header)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_full_id)
        })
    }
}

impl Valve for SessionValve {
    fn name(&self) -> &str {
        "SessionValve"
    }

    fn invoke(&self, mut req: Request, next: Next) -> BoxFuture<'static, Response> {
        let requested = self.requested_id(&req);
        // Split-brain protection: a node without the majority serves no session it may hold
        // stale (`partition = "majority"`); a request without one still runs (see
        // `SessionHandle::commit` for one it creates).
        if requested.is_some() {
            if let Err(e) = self.service.partition_gate() {
                let mut resp = HttpError::Session(e).into_response();
                // Nothing ran: a balancer may send it to another node (shoal balancer does).
                resp.headers_mut().insert(
                    HeaderName::from_static(shoal_cluster::roles::REFUSED_HEADER),
                    HeaderValue::from_static("no-quorum"),
                );
                return Box::pin(async move { resp });
            }
        }
        let seen = requested.as_ref().and_then(|(id, _)| self.seen(&req, id));
        let handle = SessionHandle::new(self.service.clone(), requested, seen);
        req.extensions_mut().insert(handle.clone());
        let (service, wait) = (self.service.clone(), self.ready_wait);
        let cookie = (
            self.cookie_name.clone(),
            self.path.clone(),
            self.header.clone(),
        );
        Box::pin(async move {
            if !service.is_ready() && !service.wait_ready(wait).await {
                return HttpError::NotReady(service.context().to_owned()).into_response();
            }
            let mut resp = next.run(req).await;
            if let Err(e) = handle.commit(true).await {
                return e.into_response();
            }
            // A persistent context that could not serve the session: its status, reason and
            // `Retry-After`, whatever the application answered without it.
            if let Some(e) = handle.take_failure() {
                return HttpError::Persist(e).into_response();
            }
            let cookie_path = cookie.1.clone();
            if let Some(full) = handle.cookie_to_set() {
                let (name, path, header) = cookie;
                let value = format!("{name}={full}; Path={path}; HttpOnly");
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().append(SET_COOKIE, v);
                }
                if let Ok(v) = HeaderValue::from_str(&full) {
                    resp.headers_mut().insert(header, v);
                }
            }
            // After the session cookie: clients reading the first one see that.
            if let Some(token) = handle.version_token() {
                let path = &cookie_path;
                let value = format!("{TOKEN_COOKIE}={token}; Path={path}; HttpOnly");
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().append(SET_COOKIE, v);
                }
                if let Ok(v) = HeaderValue::from_str(&token) {
                    resp.headers_mut()
                        .insert(HeaderName::from_static(TOKEN_HEADER), v);
                }
            }
            resp
        })
    }
}
