//! What the API reads of the farm without asking the driver: the local catalog, the
//! catalogs peers last sent, the rollouts coordinated here, local failures, readiness.
//! Published by the driver after each step; and the notices it emits (admin events).
use shoal_farm::{Entry, NodeId, RolloutStatus, Slot};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct FarmView {
    pub me: String,
    /// Latched once the node converged after start.
    pub ready: bool,
    /// Heard every member's catalog and holds what they announced ahead of it.
    pub in_sync: bool,
    pub catalog: Vec<Slot>,
    /// The current entries each live peer last announced.
    pub peers: BTreeMap<NodeId, Vec<Entry>>,
    /// Why a slot could not be made live here (per name; cleared when one is).
    pub failures: BTreeMap<String, String>,
    /// The running or last rollout of each name started on this node.
    pub rollouts: BTreeMap<String, RolloutStatus>,
    /// When each of those rollouts was first published (ms since the epoch).
    pub rollout_started_ms: BTreeMap<String, u64>,
    /// When each name's current slot was applied here (ms since the epoch).
    pub applied_ms: BTreeMap<String, u64>,
}

impl FarmView {
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.catalog.iter().find(|s| s.current.name == name)
    }
}

/// Something the admin event stream shows.
#[derive(Clone, Debug)]
pub enum Notice {
    /// A slot was made live (or failed to) on this node.
    Applied {
        name: String,
        what: String,
        result: Result<(), String>,
    },
    /// A peer offered an entry this node's signature policy refuses.
    Refused { from: String, reason: String },
}
