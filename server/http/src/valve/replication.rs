//! ReplicationValve: at the end of each request, commits the session's changes and
//! replicates them (waiting for acknowledgements in sync mode); a failed synchronous
//! replication turns the response into a 503 so the client knows the write is not safe.
//! Requests whose path matches `filter` (static files) are committed without the ACCESSED
//! traffic; a filtered request that did change its session is still replicated, since
//! losing a write is worse than one message.
use super::{Next, Request, Response, Valve};
use crate::error::HttpError;
use crate::handle::SessionHandle;
use axum::extract::OriginalUri;
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use regex::Regex;

pub struct ReplicationValve {
    pub filter: Option<Regex>,
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
        let replicate = !self.filter.as_ref().is_some_and(|f| f.is_match(&path));
        let handle = req.extensions().get::<SessionHandle>().cloned();
        if let (false, Some(h)) = (replicate, handle.as_ref()) {
            h.service().note_filtered();
        }
        Box::pin(async move {
            let resp = next.run(req).await;
            match handle {
                Some(h) => match h.commit(replicate).await {
                    Ok(()) => resp,
                    Err(e) => HttpError::Session(e).into_response(),
                },
                None => resp,
            }
        })
    }
}
