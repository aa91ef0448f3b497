//! The headers both paths treat specially: the one the balancer adds to every response it
//! relays, and those it never forwards.

/// Response header naming the backend that answered (tests and operators read it).
pub const BACKEND_HEADER: &str = "x-shoal-backend";

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1).
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
