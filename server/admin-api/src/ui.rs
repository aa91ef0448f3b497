//! The admin UI (`admin-ui/`) and the API docs page, embedded in the binary: no build step,
//! no CDN, served without a token (they hold no data; they call the API with the token the
//! operator types in).

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};

use crate::error::ApiError;

macro_rules! asset {
    ($file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../admin-ui/",
            $file
        ))
    };
}

/// (file name, content type, content) of every UI file.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        asset!("index.html"),
    ),
    ("app.css", "text/css; charset=utf-8", asset!("app.css")),
    ("app.js", "text/javascript; charset=utf-8", asset!("app.js")),
    (
        "core.js",
        "text/javascript; charset=utf-8",
        asset!("core.js"),
    ),
    (
        "cluster.js",
        "text/javascript; charset=utf-8",
        asset!("cluster.js"),
    ),
    (
        "sessions.js",
        "text/javascript; charset=utf-8",
        asset!("sessions.js"),
    ),
    (
        "traffic.js",
        "text/javascript; charset=utf-8",
        asset!("traffic.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        asset!("chart.js"),
    ),
    (
        "plugins.js",
        "text/javascript; charset=utf-8",
        asset!("plugins.js"),
    ),
    (
        "deployments.js",
        "text/javascript; charset=utf-8",
        asset!("deployments.js"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        asset!("docs.js"),
    ),
    ("docs.html", "text/html; charset=utf-8", asset!("docs.html")),
];

/// `/`, `/ui/`, `/ui/{file}` and `/api/docs`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset_response("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| async move { asset_response(&file) }),
        )
        .route("/api/docs", get(|| async { asset_response("docs.html") }))
}

fn asset_response(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
                ),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::not_found(format!("no UI file `{name}`; the UI starts at /ui/"))
            .into_response(),
    }
}
