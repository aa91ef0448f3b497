//! `App`: what a context serves at the end of its pipeline, after every valve.
//!
//! The native bench app ([`crate::BenchApp`]) is the one every context gets unless its
//! caller chooses another through [`crate::HttpNodeBuilder::app`] (a farm deployer will
//! plug Wasm applications in here).
use axum::Router;
use shoal_session::SessionService;
use std::sync::Arc;

pub trait App: Send + Sync + 'static {
    /// Shown in logs and errors (the context's `app` in configuration).
    fn name(&self) -> &str;
    /// The application's routes, relative to the context path. `service` is the context's
    /// session manager; a request's own session is in its extensions as a
    /// [`crate::SessionHandle`].
    fn router(&self, service: Arc<SessionService>) -> Router;
}
