//! Member identity.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// 16 random bytes chosen at process start: a restarted node is a new member (new incarnation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberId(pub [u8; 16]);

impl MemberId {
    pub fn random(rng: &mut impl rand::RngCore) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        MemberId(b)
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..8])
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// What a node tells the others about itself (in handshakes and beacons).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    /// The node's route (jvmRoute), e.g. `node1`; also the suffix of its session ids.
    pub name: String,
    /// Where its TCP receiver listens.
    pub addr: SocketAddr,
    /// Cluster partition: members of other domains are ignored by the DomainFilter.
    pub domain: String,
    /// Start time in ms since the Unix epoch; with `id` it tells a restart from a reconnect.
    pub incarnation: u64,
    /// Small metadata, e.g. `contexts = "/app,/shop"`, `role = "balancer"`.
    pub meta: BTreeMap<String, String>,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} ({:?})", self.name, self.addr, self.id)
    }
}
