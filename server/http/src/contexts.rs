//! `Contexts`: the table of contexts a node serves, switched atomically while it runs.
//!
//! Each request looks up its context (longest path prefix) in the current table and runs
//! on a clone of that context's router, so installing, replacing or removing a context
//! never touches a request in flight: it finishes on the pipeline it started on, and the
//! next request sees the new table.
use crate::config::ContextConfig;
use axum::body::Body;
use axum::Router;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use tower::{Service, ServiceExt};

/// One served context: its settings and its pipeline (valves, application, static files).
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) config: ContextConfig,
    pub(crate) router: Router,
}

type Table = Arc<BTreeMap<String, Served>>;

#[derive(Clone, Default)]
pub(crate) struct Contexts {
    table: Arc<RwLock<Table>>,
}

impl Contexts {
    fn current(&self) -> Table {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Copy-on-write change of the table; the swap is one pointer under the lock.
    fn update<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Served>) -> R) -> R {
        let mut guard = self.table.write().unwrap_or_else(|p| p.into_inner());
        let mut next = BTreeMap::clone(&guard);
        let r = f(&mut next);
        *guard = Arc::new(next);
        r
    }

    pub(crate) fn insert(&self, served: Served) -> Option<Served> {
        self.update(|t| t.insert(served.config.path.clone(), served))
    }

    pub(crate) fn remove(&self, path: &str) -> Option<Served> {
        self.update(|t| t.remove(path))
    }

    pub(crate) fn get(&self, path: &str) -> Option<Served> {
        self.current().get(path).cloned()
    }

    pub(crate) fn configs(&self) -> Vec<ContextConfig> {
        self.current().values().map(|s| s.config.clone()).collect()
    }

    /// The router of the context serving `path`: the longest context path that is `path`
    /// or a prefix of it ending before a `/`.
    fn route(&self, path: &str) -> Option<Router> {
        let table = self.current();
        let mut candidate = path;
        loop {
            if let Some(s) = table.get(candidate) {
                return Some(s.router.clone());
            }
            let cut = candidate.rfind('/')?;
            if cut == 0 {
                return None;
            }
            candidate = &candidate[..cut];
        }
    }
}

impl Service<http::Request<Body>> for Contexts {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let router = self.route(req.uri().path());
        Box::pin(async move {
            match router {
                Some(r) => r.oneshot(req).await,
                None => Ok(http::Response::builder()
                    .status(http::StatusCode::NOT_FOUND)
                    .body(Body::empty())
                    .unwrap_or_default()),
            }
        })
    }
}
