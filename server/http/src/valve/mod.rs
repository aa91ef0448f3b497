//! Valves: Tomcat's per-context request interceptors, as one tower layer each.
//!
//! A [`Valve`] sees the whole request and decides when (and whether) to call the rest of
//! the pipeline through [`Next`]; the request's session is in its extensions as a
//! [`crate::SessionHandle`] (put there by the [`SessionValve`]). This is the extension
//! point for plugins: a Wasm valve is one more `impl Valve` given to
//! the pipeline (`crate::pipeline::build`) in `extra` and runs inside the built-in valves,
//! just before the application.
//!
//! [`ValveLayer`] turns one valve, or a list run in order, into a tower `Layer`.
use axum::body::Body;
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

mod jvm_route;
mod replication;
mod session;

pub(crate) use jvm_route::JvmRouteBinderValve;
pub(crate) use replication::ReplicationValve;
pub use replication::UrlFilter;
pub(crate) use session::SessionValve;

pub type Request = http::Request<Body>;
pub type Response = axum::response::Response;
type Inner = BoxCloneSyncService<Request, Response, Infallible>;

pub trait Valve: Send + Sync + 'static {
    /// Shown in logs and stats (Tomcat's valve class name).
    fn name(&self) -> &str;
    /// Handles the request; call `next.run(req)` to continue down the pipeline.
    fn invoke(&self, req: Request, next: Next) -> BoxFuture<'static, Response>;
}

/// The rest of the pipeline after the current valve.
pub struct Next {
    valves: Arc<[Arc<dyn Valve>]>,
    index: usize,
    inner: Inner,
}

impl Next {
    pub async fn run(self, req: Request) -> Response {
        match self.valves.get(self.index).cloned() {
            Some(v) => {
                v.invoke(
                    req,
                    Next {
                        index: self.index + 1,
                        ..self
                    },
                )
                .await
            }
            None => match self.inner.oneshot(req).await {
                Ok(r) => r,
                Err(e) => match e {},
            },
        }
    }
}

#[derive(Clone)]
pub(crate) struct ValveLayer {
    valves: Arc<[Arc<dyn Valve>]>,
}

impl ValveLayer {
    pub(crate) fn new(valve: impl Valve) -> Self {
        ValveLayer {
            valves: Arc::from(vec![Arc::new(valve) as Arc<dyn Valve>]),
        }
    }
    /// Several valves, run in the given order (first = outermost).
    pub(crate) fn chain(valves: Vec<Arc<dyn Valve>>) -> Self {
        ValveLayer {
            valves: Arc::from(valves),
        }
    }
}

impl<S> Layer<S> for ValveLayer
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    type Service = ValveService;
    fn layer(&self, inner: S) -> ValveService {
        ValveService {
            valves: self.valves.clone(),
            inner: BoxCloneSyncService::new(inner),
        }
    }
}

#[derive(Clone)]
pub(crate) struct ValveService {
    valves: Arc<[Arc<dyn Valve>]>,
    inner: Inner,
}

impl Service<Request> for ValveService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(())) // the inner service is driven with `oneshot` in `Next::run`
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let next = Next {
            valves: self.valves.clone(),
            index: 0,
            inner: self.inner.clone(),
        };
        Box::pin(async move { Ok(next.run(req).await) })
    }
}
