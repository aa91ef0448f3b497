//! [`DrainValve`]: the drain's mark on every HTTP response, so a balancer with a static
//! backend list sees it in its health probes and stops sending new sessions here, while the
//! requests of this node's sessions still come.
use crate::roles::DRAINING_HEADER;
use shoal_http::Valve;
use shoal_http::{Next, Request, Response};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Adds [`DRAINING_HEADER`] to every response while the node drains; costs one atomic load
/// otherwise. Made by [`super::Drain::valve`].
pub struct DrainValve {
    draining: Arc<AtomicBool>,
}

impl DrainValve {
    pub(super) fn new(draining: Arc<AtomicBool>) -> Self {
        DrainValve { draining }
    }
}

impl Valve for DrainValve {
    fn name(&self) -> &str {
        "DrainValve"
    }

    fn invoke(&self, req: Request, next: Next) -> futures::future::BoxFuture<'static, Response> {
        let draining = self.draining.clone();
        Box::pin(async move {
            let mut response = next.run(req).await;
            if draining.load(Ordering::Acquire) {
                response
                    .headers_mut()
                    .insert(DRAINING_HEADER, http::HeaderValue::from_static("1"));
            }
            response
        })
    }
}
