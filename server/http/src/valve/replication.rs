//! ReplicationValve: at the end of each request, commits the session's changes and
//! replicates them (waiting for acknowledgements in sync mode); a failed synchronous
//! replication turns the response into a 503 so the client knows the write is not safe.
//! Requests whose path matches `filter` (static files) are committed without the ACCESSED
//! traffic; a filtered request that did change its session is still replicated, since
//! losing a write is worse than one message. A [`UrlFilter`] (e.g. the node's Wasm URL
//! filter plugins) is asked after the regex, for requests the regex lets through.
use super::{Next, Request, Response, Valve};
use crate::handle::SessionHandle;
use axum::extract::OriginalUri;
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use regex::Regex;
use std::sync::Arc;

/// Decides, per request, whether it may touch the session (false: commit without
/// replicating, like a `filter` match). Called on the request thread before the
/// application runs, so it must answer in microseconds.
pub trait UrlFilter: Send + Sync + 'static {
    /// `path` is the full request path (context included).
    fn may_touch_session(&self, path: &str, req: &Request) -> bool;
}

pub(crate) struct ReplicationValve {
    pub(crate) filter: Option<Regex>,
    /// Asked when `filter` does not match.
    pub(crate) extra: Option<Arc<dyn UrlFilter>>,
}

impl Valve for ReplicationValve {
    fn name(&self) -> &str {
        "ReplicationValve"
    }

    fn invoke(&self, req: Request, next: Next) -> BoxFuture<'static, Response> {
        let path = match req.extensions().get::<OriginalUri>() {
            Some(OriginalUri(uri)) => uri.path().to_owned(),
            None => req.uri().path().to_owned(),
        };
        let replicate = !self.filter.as_ref().is_some_and(|f| f.is_match(&path))
            && self
                .extra
                .as_ref()
                .is_none_or(|f| f.may_touch_session(&path, &req));
        let handle = req.extensions().get::<SessionHandle>().cloned();
        if let (false, Some(h)) = (replicate, handle.as_ref()) {
            h.service().note_filtered();
        }
        Box::pin(async move {
            let resp = next.run(req).await;
            match handle {
                Some(h) => match h.commit(replicate).await {
                    Ok(()) => resp,
                    Err(e) => e.into_response(),
                },
                None => resp,
            }
        })
    }
}
