//! Cluster authentication: every node holds the cluster secret; handshakes and beacons carry
//! HMAC-SHA256 proofs over fresh nonces, so a node without the secret can neither join nor
//! inject messages (a connection that has not completed the handshake may only handshake).
use crate::member::Member;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret. An empty secret is allowed only for loopback demos (see README).
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterSecret({} bytes)", self.0.len())
    }
}

impl ClusterSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        ClusterSecret(bytes.into())
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // new_from_slice accepts any key length for HMAC; the error arm cannot happen.
        let mut m = match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return [0u8; 32],
        };
        for p in parts {
            m.update(&(p.len() as u32).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    fn member_bytes(member: &Member) -> Vec<u8> {
        bincode::serde::encode_to_vec(member, bincode::config::standard()).unwrap_or_default()
    }

    /// Connector's proof: binds the acceptor's challenge, its own nonce and its identity.
    pub fn hello_proof(&self, challenge: &[u8; 16], nonce: &[u8; 16], member: &Member) -> [u8; 32] {
        self.mac(&[
            b"shoal-hello-v1",
            challenge,
            nonce,
            &Self::member_bytes(member),
        ])
    }

    /// Acceptor's proof: binds the connector's nonce, the challenge and the acceptor's identity.
    pub fn ack_proof(&self, challenge: &[u8; 16], nonce: &[u8; 16], member: &Member) -> [u8; 32] {
        self.mac(&[
            b"shoal-ack-v1",
            nonce,
            challenge,
            &Self::member_bytes(member),
        ])
    }

    /// Beacon proof (multicast): binds the beacon body and its timestamp.
    pub fn beacon_proof(&self, body: &[u8]) -> [u8; 32] {
        self.mac(&[b"shoal-beacon-v1", body])
    }

    /// A key for another use of the secret (`purpose` names it, e.g. the session version
    /// tokens): every node derives the same one, and it reveals nothing of the secret.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        self.mac(&[b"shoal-derive-v1", purpose])
    }

    /// Constant-time comparison of two proofs.
    pub fn verify(expected: &[u8; 32], got: &[u8; 32]) -> bool {
        expected
            .iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}
