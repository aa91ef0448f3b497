//! A valve-world component that answers requests (like the example `bench-app`) as a
//! context's [`App`]. A request it lets through (`next`) has nothing after it: 404.
use crate::session_access::HandleAccess;
use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::response::Response;
use axum::Router;
use http::{HeaderName, HeaderValue, StatusCode};
use shoal_http::{App, SessionHandle};
use shoal_plugin_host::{HttpRequest, ValveApp, ValveOutcome};
use shoal_session::SessionService;
use std::sync::Arc;

/// Largest request body handed to an application that asks for bodies.
const MAX_APP_BODY: usize = 1 << 20;

pub struct ValveWorldApp {
    app: Arc<ValveApp>,
}

impl ValveWorldApp {
    pub fn new(app: ValveApp) -> ValveWorldApp {
        ValveWorldApp { app: Arc::new(app) }
    }
}

impl App for ValveWorldApp {
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

async fn handle(app: &ValveApp, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = if app.wants_body() {
        match axum::body::to_bytes(body, MAX_APP_BODY).await {
            Ok(b) => Some(b.to_vec()),
            Err(e) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("error=body-too-large detail=\"application {} reads request bodies up to {MAX_APP_BODY} bytes: {e}\"\n", app.name()),
                )
            }
        }
    } else {
        None
    };
    let handle = parts.extensions.get::<SessionHandle>().cloned();
    let mut access = HandleAccess::looked_up(handle).await;
    let path = match parts.extensions.get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri.path().to_owned(),
        None => parts.uri.path().to_owned(),
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
    };
    match app.call(&request, &mut access) {
        Ok(ValveOutcome::Respond(r)) => {
            let mut resp = Response::new(Body::from(r.body));
            *resp.status_mut() =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (k, v) in &r.headers {
                if let (Ok(name), Ok(val)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    resp.headers_mut().append(name, val);
                }
            }
            resp
        }
        Ok(ValveOutcome::Next { .. }) => plain(
            StatusCode::NOT_FOUND,
            format!(
                "error=not-found detail=\"application {} does not answer {}\"\n",
                app.name(),
                request.path
            ),
        ),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error=application-failed detail=\"{e}\"\n"),
        ),
    }
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r
}
