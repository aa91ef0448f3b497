//! Active health checks: every `health_interval`, GET each backend's health path.
//!
//! A probe answering 2xx/3xx within `health_timeout` marks the backend up at once; after
//! `fail_threshold` consecutive failures it is marked down. Probes run concurrently so one
//! hung node does not delay the verdict on the others.
//!
//! A shoal node that drains marks every response with [`DRAINING_HEADER`] until it closes;
//! a probe that sees it marks the backend draining (no new sessions, sticky requests still
//! go there), so a drain is seen without joining the cluster. A later unmarked answer (the
//! node restarted at the same address) clears it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request};
use tokio::task::JoinSet;

use crate::backend::BackendState;
use crate::body::full;
use crate::state::Inner;

/// Response header of a draining shoal node (the member-role protocol, `shoal_cluster::roles`).
pub(crate) use shoal_cluster::roles::DRAINING_HEADER;
/// Marks the probe, so valve plugins can tell it from a user's request.
use shoal_cluster::roles::PROBE_HEADER;

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.config.health_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut probes = JoinSet::new();
        for backend in inner.registry.snapshot().iter().cloned() {
            probes.spawn(probe(inner.clone(), backend));
        }
        while probes.join_next().await.is_some() {}
    }
}

async fn probe(inner: Arc<Inner>, backend: Arc<BackendState>) {
    let mut request = Request::new(full(Bytes::new()));
    *request.method_mut() = Method::GET;
    *request.uri_mut() = backend.health_uri.clone();
    request.headers_mut().insert(
        PROBE_HEADER,
        hyper::header::HeaderValue::from_static("health"),
    );
    let client = inner.client.clone();
    let exchange = async move {
        let response = client.request(request).await?;
        let status = response.status();
        let draining = response.headers().contains_key(DRAINING_HEADER);
        // Reading the body lets the connection go back to the pool.
        let _ = response.into_body().collect().await;
        Ok::<_, hyper_util::client::legacy::Error>((status, draining))
    };
    let verdict = match tokio::time::timeout(inner.config.health_timeout, exchange).await {
        Ok(Ok((status, draining))) if status.is_success() || status.is_redirection() => {
            Ok(draining)
        }
        Ok(Ok((status, _))) => Err(format!(
            "health probe {} answered {status}",
            backend.health_uri
        )),
        Ok(Err(e)) => Err(format!("health probe {} failed: {e}", backend.health_uri)),
        Err(_) => Err(format!(
            "health probe {} got no answer within {} ms",
            backend.health_uri,
            inner.config.health_timeout.as_millis()
        )),
    };
    match verdict {
        Ok(draining) => {
            if backend.mark_up() {
                tracing::info!(route = %backend.route, addr = %backend.authority, "backend is up again");
            }
            if backend.set_probe_draining(draining) {
                tracing::info!(route = %backend.route, addr = %backend.authority, draining,
                    "backend drain mark changed: new sessions go elsewhere while it drains");
            }
        }
        Err(why) => {
            let failures = backend.probe_failures.fetch_add(1, Ordering::AcqRel) + 1;
            if failures >= inner.config.fail_threshold {
                if backend.mark_down(why.clone()) {
                    tracing::warn!(route = %backend.route, addr = %backend.authority, "backend marked down: {why}");
                }
            } else {
                backend.set_last_error(why);
            }
        }
    }
}
