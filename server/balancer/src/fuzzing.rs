//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never in the product):
//! the lean path's request-head parser and chunked-body scanner with the default settings,
//! so a target can hold their answers against hyper's for the same bytes.

use crate::config::BalancerConfig;
use crate::lean::fuzz_entry::{parse_request, ChunkedEnd, ReqHead, Rules};

/// What the lean path makes of the request head at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum LeanHead {
    /// More bytes are needed.
    Partial,
    /// Forwarded on the lean path: `head_len` bytes of head, then `body_len` bytes of body;
    /// `forwarded` is the head sent to the backend.
    Ready {
        head_len: usize,
        body_len: usize,
        method: String,
        forwarded: Vec<u8>,
    },
    /// Handed to the hyper path whole.
    Fallback(&'static str),
    /// Answered with this status, then the connection closes.
    Reject(u16),
}

/// [`parse_request`] with [`BalancerConfig::default`]'s rules and a fixed client address.
pub fn lean_request(buf: &[u8]) -> LeanHead {
    let config = BalancerConfig::default();
    let rules = Rules {
        cookie_name: &config.cookie_name,
        session_header: &config.session_header,
        status_path: &config.status_path,
        max_replay_body: config.max_replay_body,
    };
    let (mut out, mut route, mut method) = (Vec::new(), String::new(), String::new());
    match parse_request(buf, &rules, "192.0.2.1", &mut out, &mut route, &mut method) {
        ReqHead::Partial => LeanHead::Partial,
        ReqHead::Ready(r) => LeanHead::Ready {
            head_len: r.head_len,
            body_len: r.body_len,
            method,
            forwarded: out,
        },
        ReqHead::Fallback(why) => LeanHead::Fallback(why),
        ReqHead::Reject(status, _) => LeanHead::Reject(status),
    }
}

/// Where a chunked body that starts at `body[0]` ends, fed in pieces of `step` bytes (0 =
/// all at once), as the relay feeds what each read brought: `Ok(Some(n))` after `n` bytes,
/// `Ok(None)` when more is needed.
pub fn chunked_end(body: &[u8], step: usize) -> Result<Option<usize>, &'static str> {
    let mut scan = ChunkedEnd::default();
    let step = if step == 0 { body.len().max(1) } else { step };
    let mut at = 0;
    for piece in body.chunks(step) {
        if let Some(n) = scan.feed(piece)? {
            return Ok(Some(at + n));
        }
        at += piece.len();
    }
    Ok(None)
}
