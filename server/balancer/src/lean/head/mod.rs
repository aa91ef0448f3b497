//! Request and response heads on the lean path: parsed with httparse straight from the
//! connection buffers, and written out again for the next hop without any header map.
//!
//! The rewrite does what the hyper path does: hop-by-hop headers (RFC 9110 §7.6.1, plus
//! those named in `Connection`) are dropped, `X-Forwarded-For` gets the client's address,
//! `X-Forwarded-Proto: http` is added when absent, and responses name their backend in
//! [`crate::BACKEND_HEADER`]. Requests the lean path does not carry (HTTP/1.0, upgrades,
//! `Expect`, chunked or large bodies, absolute-form targets, no `Host`) are handed to the
//! hyper path whole, as [`ReqHead::Fallback`].
//!
//! - `request.rs`: request heads, client to backend;
//! - `response.rs`: response heads, backend to client, and the balancer's own answers;
//! - `syntax.rs`: what both share (limits, header lines, hop-by-hop names).

mod request;
mod response;
mod syntax;

pub(crate) use request::{parse_request, ReqHead, Request, Rules};
pub(crate) use response::{parse_response, write_plain, RespBody, RespHead, Response};

#[cfg(test)]
mod tests;
