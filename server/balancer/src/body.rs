//! The hyper body type on both sides of the hyper path (and of the health probes), and the
//! balancer's own plain-text answers in it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// Body type on both sides of the proxy.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, hyper::Error>;

pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn plain(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(format!("shoal-balancer: {message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
