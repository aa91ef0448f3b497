//! Session ids: 128 bits from a CSPRNG, hex encoded (url- and cookie-safe), and the cookie
//! value `<id>.<route>` (Tomcat's jvmRoute suffix) that lets a balancer stay sticky.
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Length of an id in hex characters (16 random bytes).
pub const ID_HEX_LEN: usize = 32;

/// The route-free session id. It never changes for the life of a session: a route change
/// (JvmRouteBinderValve) only changes the suffix, so a stale cookie still finds the session.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(String);

impl SessionId {
    /// A new id. `rng` must be a CSPRNG in production (`StdRng::from_entropy()`, ChaCha);
    /// tests pass a seeded one for repeatable runs.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        SessionId(hex::encode_upper(b))
    }

    /// Accepts only well-formed ids (untrusted input from cookies and headers).
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == ID_HEX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
        ok.then(|| SessionId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full id as clients see it: `<id>.<route>`.
    pub fn with_route(&self, route: &str) -> String {
        if route.is_empty() {
            self.0.clone()
        } else {
            format!("{}.{}", self.0, route)
        }
    }
}

/// Splits a cookie/header value `<id>[.<route>]`; `None` when the id part is malformed.
pub fn parse_full_id(value: &str) -> Option<(SessionId, Option<String>)> {
    let value = value.trim();
    match value.split_once('.') {
        Some((id, route)) => Some((SessionId::parse(id)?, Some(route.to_owned()))),
        None => Some((SessionId::parse(value)?, None)),
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.0[..8.min(self.0.len())])
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let id = SessionId::generate(&mut rng);
        assert_eq!(id.as_str().len(), ID_HEX_LEN);
        let full = id.with_route("node1");
        assert_eq!(
            parse_full_id(&full),
            Some((id.clone(), Some("node1".into())))
        );
        assert_eq!(parse_full_id(id.as_str()), Some((id, None)));
        assert_eq!(parse_full_id("../etc/passwd.node1"), None);
        assert_eq!(parse_full_id(""), None);
        assert_ne!(SessionId::generate(&mut rng), SessionId::generate(&mut rng));
    }
}
