//! Response heads on the lean path: how the body is framed (RFC 9112 §6.3), whether the
//! backend connection can be reused, and the head the client gets.

use super::syntax::{header, is_hop_by_hop, parse_length, MAX_CONNECTION_TOKENS, MAX_HEAD};
use crate::headers::BACKEND_HEADER;

const MAX_RESPONSE_HEADERS: usize = 64;

/// How the body after a response head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespBody {
    Empty,
    Length(u64),
    Chunked,
    /// No length and not chunked: the body ends when the backend closes.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response {
    pub head_len: usize,
    pub body: RespBody,
    /// 1xx: another head follows on the same request.
    pub interim: bool,
    /// The backend keeps the connection open after this response.
    pub reusable: bool,
    /// The client connection is closed after this response (`Connection: close` sent).
    pub close_client: bool,
    /// A `503` with `x-shoal-refused`: the node ran nothing; try another (see `retry.rs`).
    pub refused: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RespHead {
    Partial,
    Ready(Response),
    /// The backend's answer cannot be relayed; the reason goes into the 502 and the stats.
    Bad(String),
}

/// Parses the response head at the start of `buf` for a request that was a HEAD
/// (`head_request`) and wants the connection kept (`client_keep_alive`); on `Ready`, `out`
/// holds the head to send to the client, naming `route` as the backend.
pub(crate) fn parse_response(
    buf: &[u8],
    head_request: bool,
    client_keep_alive: bool,
    route: &str,
    out: &mut Vec<u8>,
) -> RespHead {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut res = httparse::Response::new(&mut slots);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return RespHead::Partial,
        Ok(_) => return RespHead::Bad(format!("response head larger than {MAX_HEAD} bytes")),
        Err(e) => return RespHead::Bad(format!("malformed response head ({e})")),
    };
    let (Some(version), Some(code)) = (res.version, res.code) else {
        return RespHead::Bad("response head without version or status".into());
    };
    if code == 101 {
        return RespHead::Bad("101 Switching Protocols to a request that asked for none".into());
    }
    let headers: &[httparse::Header<'_>] = res.headers;
    let mut tokens: [&[u8]; MAX_CONNECTION_TOKENS] = [&[]; MAX_CONNECTION_TOKENS];
    let (mut count, mut backend_close) = (0, version == 0);
    let (mut chunked, mut length) = (false, None);
    let mut refused = false;
    for h in headers {
        if code == 503
            && h.name
                .eq_ignore_ascii_case(shoal_cluster::roles::REFUSED_HEADER)
        {
            refused = true;
        }
        if h.name.eq_ignore_ascii_case("connection") {
            for t in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if t.eq_ignore_ascii_case(b"close") {
                    backend_close = true;
                } else if !t.is_empty() && count < MAX_CONNECTION_TOKENS {
                    tokens[count] = t;
                    count += 1;
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return RespHead::Bad("transfer-encoding other than chunked".into());
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_length(h.value) else {
                return RespHead::Bad("invalid Content-Length".into());
            };
            if length.is_some_and(|l| l != n) {
                return RespHead::Bad("conflicting Content-Length headers".into());
            }
            length = Some(n);
        }
    }
    let interim = (100..200).contains(&code);
    let body = if interim || head_request || code == 204 || code == 304 {
        RespBody::Empty
    } else if chunked {
        RespBody::Chunked
    } else if let Some(n) = length {
        RespBody::Length(n as u64)
    } else {
        RespBody::UntilClose
    };
    let close_client = !interim && (!client_keep_alive || body == RespBody::UntilClose);
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_code(out, code);
    out.push(b' ');
    out.extend_from_slice(res.reason.unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers {
        let framing = chunked && h.name.eq_ignore_ascii_case("content-length");
        if framing
            || is_hop_by_hop(h.name, &tokens[..count])
            || h.name.eq_ignore_ascii_case(BACKEND_HEADER)
        {
            continue;
        }
        header(out, h.name.as_bytes(), h.value);
    }
    if !interim {
        if chunked && !head_request {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        header(out, BACKEND_HEADER.as_bytes(), route.as_bytes());
        if close_client {
            out.extend_from_slice(b"connection: close\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    RespHead::Ready(Response {
        head_len,
        body,
        interim,
        reusable: !backend_close && body != RespBody::UntilClose,
        close_client,
        refused,
    })
}

fn push_code(out: &mut Vec<u8>, code: u16) {
    let code = code.min(999);
    out.extend_from_slice(&[
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]);
}

/// Appends the balancer's own response: `body` as the given content type.
pub(crate) fn write_plain(
    out: &mut Vec<u8>,
    code: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    close: bool,
    extra: Option<(&str, &str)>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_code(out, code);
    out.push(b' ');
    let reason = hyper::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    header(out, b"content-type", content_type.as_bytes());
    header(out, b"content-length", body.len().to_string().as_bytes());
    if let Some((name, value)) = extra {
        header(out, name.as_bytes(), value.as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
}
