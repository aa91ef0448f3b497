//! The rule that keeps requests from being applied twice, and the one loop both paths (the
//! lean path and the hyper fallback) run to try backends under it.
//!
//! A request is resent only if it provably never reached a backend (connect failure, with
//! `redispatch`), or if it is idempotent and the backend closed the connection before any
//! response byte (with `retry_idempotent`); and in both cases only if its body can be sent
//! again (a streamed body cannot). A `503` marked refused (`x-shoal-refused`: the node ran
//! nothing, see `shoal_cluster::roles::REFUSED_HEADER`) is sent to another backend the same
//! way. Everything else that loses its backend gets a 502 saying so.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::StatusCode;

use crate::backend::BackendState;
use crate::config::BalancerConfig;
use crate::pick::choose;
use crate::state::Inner;

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
    /// The backend answered `503` with [`shoal_cluster::roles::REFUSED_HEADER`]: it did not
    /// run the request (a node cut off from the majority), so any other backend may.
    Refused(String),
}

/// How [`forward`] ended.
pub(crate) enum Forwarded<T> {
    /// A backend answered: what the attempt returned.
    Answered(T),
    /// No backend answered: the last one tried and why (`None`: none was available).
    GaveUp(Option<(String, Failure)>),
}

/// One request as a path sends it to one backend (the lean path and the hyper path each
/// implement it for their own request).
pub(crate) trait Attempt {
    /// What a backend's answer becomes.
    type Answer;
    /// A failure that ends the request at once (the client's connection failing).
    type Error;

    /// Sends the request to `backend`: its answer, or why it produced none.
    // A trait rather than an async closure: the future's `Send` bound must be spelled out
    // for the lean path's connection task to be spawnable.
    fn attempt(
        &mut self,
        backend: &Arc<BackendState>,
    ) -> impl Future<Output = Result<Result<Self::Answer, Failure>, Self::Error>> + Send;
}

/// Tries backends for one request until one answers or the rule says stop: the sticky
/// backend (`sticky` route) while it is up, else the least-outstanding live one, never the
/// same backend twice.
pub(crate) async fn forward<A: Attempt>(
    inner: &Inner,
    sticky: Option<&str>,
    idempotent: bool,
    replayable: bool,
    request: &mut A,
) -> Result<Forwarded<A::Answer>, A::Error> {
    let backends = inner.registry.snapshot();
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<(String, Failure)> = None;
    loop {
        let tried_refs: Vec<&str> = tried.iter().map(String::as_str).collect();
        let rr = inner.rr.fetch_add(1, Ordering::Relaxed);
        let Some(backend) = choose(&backends, sticky, &tried_refs, rr) else {
            return Ok(Forwarded::GaveUp(last));
        };
        if !tried.is_empty() {
            inner.retries.fetch_add(1, Ordering::Relaxed);
        }
        match request.attempt(&backend).await? {
            Ok(answer) => return Ok(Forwarded::Answered(answer)),
            Err(failure) => {
                note_failure(&backend, &failure);
                let resend = replayable && may_resend(&inner.config, &failure, idempotent);
                tried.push(backend.route.clone());
                last = Some((backend.route.clone(), failure));
                if !resend {
                    return Ok(Forwarded::GaveUp(last));
                }
            }
        }
    }
}

pub(crate) fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

/// Records a failed attempt on `backend`: a refused connection marks it down at once.
fn note_failure(backend: &BackendState, failure: &Failure) {
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
        // Up, but serving no session now: not marked down (its other requests still work).
        Failure::Refused(why) => backend.set_last_error(why.clone()),
        Failure::Client(_) => {}
    }
}

/// Whether a failed attempt may be sent to another backend (see the module comment).
fn may_resend(config: &BalancerConfig, failure: &Failure, idempotent: bool) -> bool {
    match failure {
        Failure::NotSent(_) => config.redispatch,
        Failure::Refused(_) => true,
        Failure::Lost(_) => idempotent && config.retry_idempotent,
        Failure::Client(_) | Failure::Timeout => false,
    }
}

/// The status and message of the balancer's own answer when no backend produced a
/// response to a `method` request ([`Forwarded::GaveUp`]).
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
        Some((route, Failure::Lost(why))) if !is_idempotent(method) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "backend {route} failed before answering this {method} ({why}); it was not resent \
                 because {method} is not idempotent and may already have been applied: check \
                 before repeating it"
            ),
        ),
        Some((route, Failure::Refused(why))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("every backend tried refused the request; last tried {route}: {why}"),
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
