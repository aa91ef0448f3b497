//! `[farm.faults]`: fault injection for the multi-process fault tests
//! (`tests/tests/farm_faults.rs`), off by default; never set it on a production node. Each
//! knob breaks one thing at one place, so a test reaches a failure through the real code
//! path (the receiver's size-and-sha256 check, the coordinator's commit window) instead of
//! by timing.
use serde::{Deserialize, Serialize};
use shoal_farm::{DeployId, Message, NodeId};
use std::collections::HashSet;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FarmFaults {
    /// Member names: the first chunk (offset 0) of every artifact this node sends to one of
    /// them has one byte flipped on the way out, as a bad link or disk would. The receiver
    /// writes it, and its size-and-sha256 check must refuse the artifact.
    pub corrupt_chunks_to: Vec<String>,
    /// Holds each rollout coordinated here this long once every member has staged and
    /// before the first Activate leaves the node (the commit window), after publishing the
    /// view (every node `staged` in the API), so a test can kill the coordinator there.
    pub hold_activate_ms: u64,
}

impl FarmFaults {
    pub fn is_off(&self) -> bool {
        *self == FarmFaults::default()
    }

    /// Mangles `msg` on its way to `to` if a knob says so.
    pub(super) fn outgoing(&self, to: &NodeId, msg: &mut Message) {
        if let Message::Chunk { offset, bytes, .. } = msg {
            if *offset == 0 && self.corrupt_chunks_to.contains(&to.0) {
                if let Some(b) = bytes.first_mut() {
                    *b ^= 0xff;
                    tracing::warn!(%to, "farm: [farm.faults] corrupted the first chunk sent to {to}");
                }
            }
        }
    }

    /// How long to hold before sending `msg`: the first Activate of each rollout only.
    pub(super) fn hold(&self, msg: &Message, held: &mut HashSet<DeployId>) -> Option<Duration> {
        match msg {
            Message::Activate { deploy, .. }
                if self.hold_activate_ms > 0 && held.insert(deploy.clone()) =>
            {
                Some(Duration::from_millis(self.hold_activate_ms))
            }
            _ => None,
        }
    }
}
