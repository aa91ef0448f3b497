//! The version token: what a client carries beside its session id so that any node can tell
//! whether its copy holds everything the client saw ([`Seen`], see `read_gate.rs`).
//!
//! Form (ASCII, cookie-safe): `1.<version>.<stamp ms>.<writer: 32 hex>.<mac: 32 hex>`, where
//! `mac` is the first 16 bytes of HMAC-SHA256 over the session id and the fields before it,
//! keyed with a key derived from the cluster secret ([`TokenKey`]). A client cannot forge
//! one (make a node wait for a version that never existed, or name a writer to fetch from),
//! a token of another session or another cluster does not verify, and a truncated or
//! altered one does not parse: each is ignored, and the request is served as if it carried
//! none (the newest copy this node has).
use crate::id::SessionId;
use crate::session::{Seen, Stamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shoal_cluster::MemberId;

type HmacSha256 = Hmac<Sha256>;

/// The token format's version (its first field).
const FORMAT: &str = "1";
/// Bytes of the MAC kept in the token (128 bits).
const MAC_BYTES: usize = 16;

/// The key that signs and checks version tokens; every node of a cluster derives the same
/// one from the cluster secret.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from 32 bytes derived from the cluster secret (`ClusterSecret::derive`).
    pub fn new(bytes: [u8; 32]) -> Self {
        TokenKey(bytes)
    }

    fn mac(&self, id: &SessionId, body: &str) -> HmacSha256 {
        // HMAC takes keys of any length: the error arm cannot happen.
        let mut m = HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| HmacSha256::new_from_slice(&[0u8; 32]).expect("32-byte key"));
        m.update(id.as_str().as_bytes());
        m.update(b"|");
        m.update(body.as_bytes());
        m
    }

    /// The token naming `seen` for session `id`.
    pub fn issue(&self, id: &SessionId, seen: &Seen) -> String {
        let body = format!(
            "{FORMAT}.{}.{}.{}",
            seen.version,
            seen.stamp.ts,
            seen.stamp.node.to_hex()
        );
        let tag = self.mac(id, &body).finalize().into_bytes();
        format!("{body}.{}", hex::encode(&tag[..MAC_BYTES]))
    }

    /// What a token says, if it is well formed, of this session, and signed with this key.
    pub fn check(&self, id: &SessionId, token: &str) -> Option<Seen> {
        let (body, tag) = token.rsplit_once('.')?;
        let tag = hex::decode(tag).ok()?;
        if tag.len() != MAC_BYTES {
            return None;
        }
        self.mac(id, body).verify_truncated_left(&tag).ok()?;
        let mut fields = body.split('.');
        if fields.next()? != FORMAT {
            return None;
        }
        let version = fields.next()?.parse().ok()?;
        let ts = fields.next()?.parse().ok()?;
        let node: [u8; 16] = hex::decode(fields.next()?).ok()?.try_into().ok()?;
        if fields.next().is_some() {
            return None;
        }
        Some(Seen {
            version,
            stamp: Stamp {
                ts,
                node: MemberId(node),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> Seen {
        Seen {
            version: 42,
            stamp: Stamp {
                ts: 1_700_000_000_123,
                node: MemberId([7; 16]),
            },
        }
    }

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).expect("an id")
    }

    const A: &str = "0123456789ABCDEF0123456789ABCDEF";
    const B: &str = "FEDCBA9876543210FEDCBA9876543210";

    #[test]
    fn a_token_round_trips() {
        let key = TokenKey::new([1; 32]);
        let t = key.issue(&id(A), &seen());
        assert_eq!(key.check(&id(A), &t), Some(seen()));
    }

    #[test]
    fn forged_truncated_foreign_and_misplaced_tokens_are_refused() {
        let key = TokenKey::new([1; 32]);
        let t = key.issue(&id(A), &seen());
        // Another cluster (another secret), another session.
        assert_eq!(TokenKey::new([2; 32]).check(&id(A), &t), None);
        assert_eq!(key.check(&id(B), &t), None);
        // A client raising the version keeps the old MAC.
        let forged = t.replacen(".42.", ".43.", 1);
        assert_ne!(forged, t);
        assert_eq!(key.check(&id(A), &forged), None);
        // Cut anywhere.
        for n in [0, 1, 5, t.len() / 2, t.len() - 1] {
            assert_eq!(key.check(&id(A), &t[..n]), None, "cut at {n}");
        }
        for junk in ["", ".", "1....", "1.x.y.z.w", "é.1.2.3.4"] {
            assert_eq!(key.check(&id(A), junk), None, "{junk:?}");
        }
    }
}
