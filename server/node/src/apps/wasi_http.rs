//! A `wasi:http` application as a context's [`App`]: every request under the context goes
//! to the component, with the path as the client sent it (context included) and the
//! request's session lent through `shoal:http-app/session`.
use crate::session_access::HandleAccess;
use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::response::Response;
use axum::Router;
use shoal_http::{App, SessionHandle};
use shoal_plugin_host::HttpApp;
use shoal_session::SessionService;
use std::sync::Arc;

pub struct WasiHttpApp {
    app: Arc<HttpApp>,
}

impl WasiHttpApp {
    pub fn new(app: HttpApp) -> WasiHttpApp {
        WasiHttpApp { app: Arc::new(app) }
    }
}

impl App for WasiHttpApp {
    fn name(&self) -> &str {
        self.app.name()
    }

    fn router(&self, _service: Arc<SessionService>) -> Router {
        let app = self.app.clone();
        Router::new().fallback(move |req: Request| {
            let app = app.clone();
            async move { handle(&app, req).await }
        })
    }
}

async fn handle(app: &HttpApp, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    if let Some(OriginalUri(uri)) = parts.extensions.get::<OriginalUri>() {
        parts.uri = uri.clone();
    }
    // wasi:http wants an authority: the Host header, or this node.
    if parts.uri.authority().is_none() && !parts.headers.contains_key(http::header::HOST) {
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
    }
    let handle = parts.extensions.get::<SessionHandle>().cloned();
    let access = HandleAccess::looked_up(handle).await;
    match app
        .handle(http::Request::from_parts(parts, body), Box::new(access))
        .await
    {
        Ok(resp) => resp.map(Body::from),
        Err(failure) => {
            tracing::warn!(app = %app.name(), status = failure.status, "{}", failure.reason);
            let mut r = Response::new(Body::from(format!(
                "error=application-failed detail=\"{}\"\n",
                failure.reason.replace('"', "'")
            )));
            *r.status_mut() = http::StatusCode::from_u16(failure.status)
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            r
        }
    }
}
