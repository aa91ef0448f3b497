//! Public types of the core's API: configuration, the actions the runtime carries out,
//! the events it reports, and the per-node progress of a rollout.
use crate::artifact::{Digest, TrustPolicy};
use crate::catalog::{DeployId, Generation, Slot};
use crate::node_id::NodeId;
use crate::wire::{Change, Message};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct FarmConfig {
    /// Grows across restarts of this node (e.g. process start time in ms): deploy ids
    /// started here never repeat.
    pub incarnation: u64,
    /// Bytes per chunk (64 KiB: large enough to keep a link busy with a small window,
    /// small enough not to hold a session-replication frame behind it for long).
    pub chunk_size: u64,
    /// Chunks in flight per receiver above its acknowledgement (flow control).
    pub window: u64,
    /// Resend period for unanswered Prepare / Activate, and the stall time after which a
    /// receiver asks again from its cursor (or another holder).
    pub retry_after: Duration,
    /// A rollout whose live members have not all staged by then is aborted everywhere.
    pub stage_deadline: Duration,
    /// A member drops a reservation its coordinator neither activated nor aborted by then
    /// (the coordinator died); longer than `stage_deadline` so a live coordinator decides first.
    pub reservation_ttl: Duration,
    /// Anti-entropy: one member gets this node's catalog per period (round robin).
    pub sync_interval: Duration,
    /// A rollout starts only on a node that sees at least this many members, itself
    /// included. Set it to a majority of the cluster so that a partitioned minority (or a
    /// node that just rejoined and sees nobody yet) cannot commit a version the majority
    /// never staged. 1 disables the check.
    pub min_members: usize,
    pub trust: TrustPolicy,
}

impl Default for FarmConfig {
    fn default() -> Self {
        FarmConfig {
            incarnation: 0,
            chunk_size: 64 << 10,
            window: 8,
            retry_after: Duration::from_millis(500),
            stage_deadline: Duration::from_secs(60),
            reservation_ttl: Duration::from_secs(90),
            sync_interval: Duration::from_secs(2),
            min_members: 1,
            trust: TrustPolicy::default(),
        }
    }
}

impl FarmConfig {
    /// Checks the relations the protocol relies on; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_size == 0 || self.chunk_size > 1 << 20 {
            return Err(format!(
                "chunk_size ({} bytes) must be between 1 byte and 1 MiB",
                self.chunk_size
            ));
        }
        if self.window == 0 {
            return Err("window must be at least 1 chunk".into());
        }
        if self.retry_after.is_zero() || self.sync_interval.is_zero() {
            return Err("retry_after and sync_interval must be greater than 0 ms".into());
        }
        if self.reservation_ttl <= self.stage_deadline {
            return Err(format!(
                "reservation_ttl ({} ms) must be longer than stage_deadline ({} ms), or members drop staged content a live coordinator is about to activate",
                self.reservation_ttl.as_millis(),
                self.stage_deadline.as_millis()
            ));
        }
        Ok(())
    }
}

/// What the runtime must do. Storage actions for one digest come in order
/// (`StageBegin`, `WriteChunk`s by increasing offset, `Verify`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `msg` (encode with [`crate::encode`]) to `to`, best effort.
    Send {
        to: NodeId,
        msg: Message,
    },
    /// Create (or truncate) the staging file for `digest`.
    StageBegin {
        digest: Digest,
        size: u64,
    },
    /// Write bytes at `offset` of the staging file (offsets arrive contiguous and rising).
    WriteChunk {
        digest: Digest,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// Check that the staged file (or, on the coordinator, the uploaded file) is exactly
    /// `size` bytes with sha256 `digest`, make it durable under its digest, and answer with
    /// `handle_verified`. Only then may it be activated.
    Verify {
        digest: Digest,
        size: u64,
    },
    /// Read `len` bytes at `offset` of the verified content `digest` and answer with
    /// `handle_chunk_read` (for sending to `to`).
    ReadChunk {
        to: NodeId,
        digest: Digest,
        offset: u64,
        len: u64,
    },
    /// Make `slot.current` live on this node (atomically: requests in flight finish on the
    /// old version), keep `slot.previous` for rollback, and persist the catalog. A `Removed`
    /// target undeploys.
    Apply {
        slot: Slot,
    },
    Event(Event),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A rollout coordinated here has ended.
    RolloutFinished {
        deploy: DeployId,
        name: String,
        outcome: Outcome,
    },
    /// This node has the cluster's current set (it may serve and report ready).
    Ready,
    /// An entry offered by a peer was refused here (signature policy); the reason names it.
    Refused { from: NodeId, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every live member staged; the change is current at `generation`.
    Activated { generation: Generation },
    /// Nobody activated; each failure names the node and the reason.
    Aborted { failures: Vec<(NodeId, String)> },
}

impl Outcome {
    /// One line for an API error: "node b: app@2 (…): sha256 mismatch; node c: …".
    pub fn summary(&self) -> String {
        match self {
            Outcome::Activated { generation } => format!("active at generation {generation}"),
            Outcome::Aborted { failures } => failures
                .iter()
                .map(|(n, r)| format!("node {n}: {r}"))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// Where one member stands in a rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Prepare sent, content being transferred or verified.
    Staging,
    Staged,
    Failed(String),
    /// Left the cluster during the rollout: not waited for (it converges when it returns).
    Excluded,
    Activated,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeProgress {
    pub state: NodeState,
    /// Bytes the member has acknowledged (for a progress bar).
    pub bytes_staged: u64,
    /// Bytes sent so far (reads issued), ≥ `bytes_staged`.
    pub bytes_sent: u64,
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The coordinator checks its own copy (upload) first.
    LocalCheck,
    /// Members fetch and verify.
    Staging,
    /// Activate sent; waiting for every member to confirm.
    Committing,
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutStatus {
    pub deploy: DeployId,
    pub name: String,
    /// What the rollout changes (the manifest it deploys, or an undeploy).
    pub change: Change,
    pub base: Generation,
    pub phase: Phase,
    pub outcome: Option<Outcome>,
    pub nodes: BTreeMap<NodeId, NodeProgress>,
}
