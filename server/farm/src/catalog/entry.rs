//! One committed change of one name: deploy of a manifest, or removal.
use crate::artifact::SignedManifest;
use crate::node_id::NodeId;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// Per-name counter of committed changes; 0 = never deployed. A deploy based on
/// generation `g` commits as `g + 1` (compare-and-set: stale bases are refused).
pub type Generation = u64;

/// Names one rollout attempt cluster-wide. `incarnation` comes from the runtime (it must
/// grow across restarts of a node, e.g. start time in ms), so ids never repeat.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeployId {
    pub origin: NodeId,
    pub incarnation: u64,
    pub seq: u64,
}

impl fmt::Debug for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.{}", self.origin, self.incarnation, self.seq)
    }
}

impl fmt::Display for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The rollout holding a name when another is refused (the typed reason of a conflict):
/// its id (which names the coordinating node) and the version it deploys (`None` for an
/// undeploy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub deploy: DeployId,
    pub version: Option<String>,
}

/// What a committed change makes live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Deployed(SignedManifest),
    /// Undeployed: a tombstone, kept so a node that was down learns of the removal.
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub generation: Generation,
    pub deploy: DeployId,
    pub target: Target,
}

impl Entry {
    pub fn manifest(&self) -> Option<&SignedManifest> {
        match &self.target {
            Target::Deployed(m) => Some(m),
            Target::Removed => None,
        }
    }
    /// Convergence order: higher generation wins; at equal generation (two sides of a
    /// partition committed different changes) the higher deploy id wins.
    pub fn order(&self, other: &Entry) -> Ordering {
        (self.generation, &self.deploy).cmp(&(other.generation, &other.deploy))
    }
    /// `name@version gen 3` or `name removed gen 3`, for messages.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Deployed(m) => format!(
                "{}@{} (generation {})",
                self.name, m.manifest.version, self.generation
            ),
            Target::Removed => format!("{} removed (generation {})", self.name, self.generation),
        }
    }
}
