//! Request heads on the lean path: parsed with httparse straight from the client's buffer,
//! checked for what the lean path carries, and written out again for the backend.

use std::mem::MaybeUninit;

use super::syntax::{header, is_hop_by_hop, parse_length, MAX_CONNECTION_TOKENS, MAX_HEAD};
use crate::pick;

pub(super) const MAX_HEADERS: usize = 100;

/// The per-request settings the head code needs from the config.
pub(crate) struct Rules<'a> {
    pub cookie_name: &'a str,
    pub session_header: &'a str,
    pub status_path: &'a str,
    pub max_replay_body: usize,
}

/// A request head the lean path forwards: everything later steps need, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub head_len: usize,
    pub body_len: usize,
    pub keep_alive: bool,
    pub head_method: bool,
    /// For the balancer's own status endpoint, not for a backend.
    pub status: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReqHead {
    Partial,
    Ready(Request),
    /// Valid, but for the hyper path; the reason is for debug logs.
    Fallback(&'static str),
    /// Answer with this status and message, then close.
    Reject(u16, String),
}

/// Parses the request head at the start of `buf`. On `Ready`, `out` holds the head to send
/// upstream, `route` the sticky route ("" when none) and `method` the method.
pub(crate) fn parse_request(
    buf: &[u8],
    rules: &Rules<'_>,
    peer_ip: &str,
    out: &mut Vec<u8>,
    route: &mut String,
    method: &mut String,
) -> ReqHead {
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return ReqHead::Partial,
        Ok(_) => return too_large(),
        Err(httparse::Error::TooManyHeaders) => {
            return ReqHead::Reject(
                431,
                format!("more than {MAX_HEADERS} request headers; send fewer"),
            )
        }
        Err(e) => {
            return ReqHead::Reject(
                400,
                format!("malformed request head ({e}); the client must send HTTP/1.1"),
            )
        }
    };
    let (Some(m), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return ReqHead::Fallback("HTTP/1.0 request");
    };
    if !path.starts_with('/') || m == "CONNECT" {
        return ReqHead::Fallback("request target not in origin form");
    }
    let headers: &[httparse::Header<'_>] = req.headers;
    let scan = match scan_request(headers, rules) {
        Ok(s) => s,
        Err(Scan::Fallback(why)) => return ReqHead::Fallback(why),
        Err(Scan::Reject(why)) => return ReqHead::Reject(400, why),
    };
    let target = path.split('?').next().unwrap_or(path);
    let status = !rules.status_path.is_empty() && target == rules.status_path;
    route.clear();
    if let Some(r) = request_route(headers, path, rules) {
        route.push_str(r);
    }
    method.clear();
    method.push_str(m);
    out.clear();
    write_request(out, m, path, headers, &scan.tokens[..scan.count], peer_ip);
    ReqHead::Ready(Request {
        head_len,
        body_len: scan.content_length,
        keep_alive: scan.keep_alive,
        head_method: m == "HEAD",
        status,
    })
}

fn too_large() -> ReqHead {
    ReqHead::Reject(
        431,
        format!("request head larger than {MAX_HEAD} bytes; send smaller cookies or headers"),
    )
}

/// What one pass over the request headers found.
struct RequestScan<'b> {
    tokens: [&'b [u8]; MAX_CONNECTION_TOKENS],
    count: usize,
    keep_alive: bool,
    content_length: usize,
}

enum Scan {
    Fallback(&'static str),
    Reject(String),
}

fn scan_request<'b>(
    headers: &[httparse::Header<'b>],
    rules: &Rules<'_>,
) -> Result<RequestScan<'b>, Scan> {
    let mut s = RequestScan {
        tokens: [&[]; MAX_CONNECTION_TOKENS],
        count: 0,
        keep_alive: true,
        content_length: 0,
    };
    let (mut host, mut length_seen) = (false, false);
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    s.keep_alive = false;
                } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                    if s.count == MAX_CONNECTION_TOKENS {
                        return Err(Scan::Fallback("many Connection tokens"));
                    }
                    s.tokens[s.count] = token;
                    s.count += 1;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if length_seen {
                return Err(Scan::Fallback("several Content-Length headers"));
            }
            length_seen = true;
            s.content_length = parse_length(h.value)
                .ok_or_else(|| Scan::Reject("invalid Content-Length header".into()))?;
            if s.content_length > rules.max_replay_body {
                return Err(Scan::Fallback("body larger than max_replay_body"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Scan::Fallback("Transfer-Encoding request body"));
        } else if name.eq_ignore_ascii_case("upgrade") || name.eq_ignore_ascii_case("expect") {
            return Err(Scan::Fallback("Upgrade or Expect header"));
        } else if name.eq_ignore_ascii_case("host") {
            host = true;
        }
    }
    if !host {
        return Err(Scan::Fallback("no Host header"));
    }
    Ok(s)
}

/// The sticky route, in the order of [`pick::session_route`]: cookie, header, path.
fn request_route<'b>(
    headers: &[httparse::Header<'b>],
    path: &'b str,
    rules: &Rules<'_>,
) -> Option<&'b str> {
    let mut from_header = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("cookie") {
            let found = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| pick::cookie_route(v, rules.cookie_name));
            if found.is_some() {
                return found;
            }
        } else if from_header.is_none() && h.name.eq_ignore_ascii_case(rules.session_header) {
            from_header = std::str::from_utf8(h.value).ok();
        }
    }
    from_header
        .and_then(|v| pick::route_of(v.trim()))
        .or_else(|| pick::path_param_route(path, rules.cookie_name))
}

fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    headers: &[httparse::Header<'_>],
    tokens: &[&[u8]],
    peer_ip: &str,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut proto = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("x-forwarded-for") || is_hop_by_hop(h.name, tokens) {
            continue;
        }
        proto |= h.name.eq_ignore_ascii_case("x-forwarded-proto");
        header(out, h.name.as_bytes(), h.value);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for h in headers {
        if h.name.eq_ignore_ascii_case("x-forwarded-for") {
            out.extend_from_slice(h.value.trim_ascii());
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(peer_ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !proto {
        out.extend_from_slice(b"x-forwarded-proto: http\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
