//! Session ids: 128 bits from a CSPRNG, hex encoded (url- and cookie-safe), and the cookie
//! value `<id>.<route>` (Tomcat's jvmRoute suffix) that lets a balancer stay sticky.
use rand::RngCore;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Length of an id in hex characters (16 random bytes).
pub(crate) const ID_HEX_LEN: usize = 32;

/// The route-free session id. It never changes for the life of a session: a route change
/// (JvmRouteBinderValve) only changes the suffix, so a stale cookie still finds the session.
///
/// Held inline as its 32 ASCII hex digits (no heap allocation: every node keeps every
/// session of a DeltaManager context, each id twice). Only [`SessionId::generate`] and
/// [`SessionId::parse`] make one, so the bytes are always upper-case hex. On the wire it
/// is a string, as before.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; ID_HEX_LEN]);

impl SessionId {
    /// A new id. `rng` must be a CSPRNG in production (`StdRng::from_entropy()`, ChaCha);
    /// tests pass a seeded one for repeatable runs.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        let mut out = [0u8; ID_HEX_LEN];
        // Infallible: the output is exactly twice the input.
        let _ = hex::encode_to_slice(b, &mut out);
        out.make_ascii_uppercase();
        SessionId(out)
    }

    /// Accepts only well-formed ids (untrusted input from cookies and headers).
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == ID_HEX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
        let mut out = [0u8; ID_HEX_LEN];
        if ok {
            out.copy_from_slice(s.as_bytes());
        }
        ok.then_some(SessionId(out))
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII hex (see the type docs), so this never takes the fallback.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The full id as clients see it: `<id>.<route>`.
    pub fn with_route(&self, route: &str) -> String {
        if route.is_empty() {
            self.as_str().to_owned()
        } else {
            format!("{}.{}", self.as_str(), route)
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
        f.write_str(&self.as_str()[..8])
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Same wire form as the former `struct SessionId(String)`.
        s.serialize_newtype_struct("SessionId", self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "SessionId")]
        struct Wire(String);
        let Wire(s) = Wire::deserialize(d)?;
        SessionId::parse(&s).ok_or_else(|| {
            D::Error::custom(format!(
                "malformed session id {s:?} (expected {ID_HEX_LEN} upper-case hex digits)"
            ))
        })
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

    #[test]
    fn wire_form_is_a_string_and_garbage_is_refused() {
        #[derive(Serialize)]
        struct Old(String);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let id = SessionId::generate(&mut rng);
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&id, cfg).unwrap_or_else(|e| panic!("{e}"));
        let old = Old(id.as_str().to_owned());
        assert_eq!(
            bytes,
            bincode::serde::encode_to_vec(&old, cfg).unwrap_or_else(|e| panic!("{e}"))
        );
        let (back, _): (SessionId, usize) =
            bincode::serde::decode_from_slice(&bytes, cfg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, id);
        let bad = bincode::serde::encode_to_vec(Old("not-an-id".into()), cfg)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = bincode::serde::decode_from_slice::<SessionId, _>(&bad, cfg)
            .err()
            .unwrap_or_else(|| panic!("decoded garbage"));
        assert!(err.to_string().contains("malformed session id"), "{err}");
        assert_eq!(
            serde_json::to_string(&id).unwrap_or_else(|e| panic!("{e}")),
            format!("\"{id}\"")
        );
    }
}
