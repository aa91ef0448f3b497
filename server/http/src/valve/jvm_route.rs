//! JvmRouteBinderValve: a request whose session id names another node's route (after a
//! failover the balancer sent it here) is served here; the session is moved to this node's
//! route, the cookie is reissued (SessionValve) and the change replicated as
//! CHANGE_SESSION_ID, so the balancer sticks to this node from now on.
use super::{Next, Request, Response, Valve};
use crate::handle::SessionHandle;
use futures::future::BoxFuture;

pub(crate) struct JvmRouteBinderValve {
    /// This node's route (its member name).
    pub(crate) route: String,
}

impl Valve for JvmRouteBinderValve {
    fn name(&self) -> &str {
        "JvmRouteBinderValve"
    }

    fn invoke(&self, req: Request, next: Next) -> BoxFuture<'static, Response> {
        let handle = req.extensions().get::<SessionHandle>().cloned();
        let route = self.route.clone();
        Box::pin(async move {
            if let Some(h) = handle {
                let foreign = h.requested_route().is_some_and(|r| r != route);
                if foreign && h.get(false).await {
                    h.change_route(&route);
                }
            }
            next.run(req).await
        })
    }
}
