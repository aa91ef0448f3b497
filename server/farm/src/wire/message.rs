//! The farm protocol's messages (see the crate docs for the exchange).
use crate::artifact::{Digest, SignedManifest};
use crate::catalog::{DeployId, Entry, Generation, Holder};
use serde::{Deserialize, Serialize};

/// What a rollout changes for its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Deploy(SignedManifest),
    Undeploy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Coordinator → member: stage this change of `name`, based on generation `base`.
    /// Resent to members that have not answered.
    Prepare {
        deploy: DeployId,
        name: String,
        base: Generation,
        change: Change,
    },
    /// Member → coordinator: the change is staged (content verified), reserved for `deploy`.
    Staged { deploy: DeployId },
    /// Member → coordinator: refused or failed; the reason names the artifact and the node.
    /// `conflict`: another rollout of the name holds this node (the typed reason of a 409).
    Failed {
        deploy: DeployId,
        reason: String,
        conflict: Option<Holder>,
    },
    /// Coordinator → member: the rollout is committed; make `entry` current.
    Activate { deploy: DeployId, entry: Entry },
    /// Member → coordinator: `entry` of `deploy` is current here since `at_ms` (wall clock
    /// of the member, ms since the Unix epoch): the coordinator reports the activation skew.
    Activated { deploy: DeployId, at_ms: u64 },
    /// Coordinator → member: the rollout is aborted; drop the reservation.
    Abort { deploy: DeployId },
    /// Receiver → holder: send the bytes of `digest` from `offset` on (start or resume).
    Want {
        digest: Digest,
        size: u64,
        offset: u64,
    },
    /// Holder → receiver: the holder does not have verified content for `digest`.
    NotHere { digest: Digest },
    /// Holder → receiver: bytes `[offset, offset + bytes.len())` of `digest`.
    Chunk {
        digest: Digest,
        offset: u64,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Receiver → holder: everything below `next` is written (cumulative acknowledgement).
    ChunkAck { digest: Digest, next: u64 },
    /// Anti-entropy: the sender's current entries. `reply` asks nothing back.
    Catalog { entries: Vec<Entry>, reply: bool },
}
