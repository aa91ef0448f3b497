//! What request and response heads share: the size limits, header lines, hop-by-hop names
//! and `Content-Length` values.

use crate::headers::HOP_BY_HOP;

/// Largest request or response head accepted (hyper's default buffer limit is larger, but
/// no shoal client sends heads anywhere near this).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Distinct header names listed in one `Connection` header that the lean path handles.
pub(super) const MAX_CONNECTION_TOKENS: usize = 8;

pub(super) fn is_hop_by_hop(name: &str, tokens: &[&[u8]]) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || tokens
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
}

pub(super) fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn parse_length(value: &[u8]) -> Option<usize> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > 15 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}
