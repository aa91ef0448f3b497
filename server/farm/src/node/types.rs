//! Public types of the core's API: configuration, the actions the runtime carries out,
//! the events it reports, and the per-node progress of a rollout.
use crate::artifact::{Digest, TrustPolicy};
use crate::catalog::{DeployId, Generation, Holder, Slot};
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
    /// Chunks in flight per receiver above its acknowledgement (flow control). It also
    /// bounds how many chunk bytes can queue ahead of a session-replication frame on the
    /// link to a receiver: `window × chunk_size`.
    pub window: u64,
    /// Pacing: at most this many bytes per second leave for each receiver (a token bucket
    /// holding `transfer_burst` bytes); `None` sends as fast as acknowledgements return.
    /// Deploy traffic then cannot take the link or the CPUs that session replication needs.
    pub transfer_rate: Option<u64>,
    /// The token bucket's size: bytes that may leave at once after a pause (≥ `chunk_size`).
    pub transfer_burst: u64,
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
    /// Wall-clock ms (since the Unix epoch) at the `now` given to [`FarmCore::new`]: a
    /// member reports its activation instant as this plus the time elapsed since, so the
    /// coordinator can report the skew between the first and the last node's activation.
    ///
    /// [`FarmCore::new`]: super::FarmCore::new
    pub clock_origin_ms: u64,
}

impl Default for FarmConfig {
    fn default() -> Self {
        FarmConfig {
            incarnation: 0,
            chunk_size: 64 << 10,
            window: 8,
            transfer_rate: None,
            transfer_burst: 4 * (64 << 10),
            retry_after: Duration::from_millis(500),
            stage_deadline: Duration::from_secs(60),
            reservation_ttl: Duration::from_secs(90),
            sync_interval: Duration::from_secs(2),
            min_members: 1,
            trust: TrustPolicy::default(),
            clock_origin_ms: 0,
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
        if let Some(rate) = self.transfer_rate {
            if self.transfer_burst < self.chunk_size {
                return Err(format!(
                    "transfer_burst ({} bytes) must hold at least one chunk ({} bytes)",
                    self.transfer_burst, self.chunk_size
                ));
            }
            // Slower than a chunk per stall period, receivers would take the pace for a stall.
            let floor = (self.chunk_size as f64 * 2.0 / self.retry_after.as_secs_f64().max(1e-3))
                .ceil() as u64;
            if rate < floor {
                return Err(format!(
                    "transfer_rate ({rate} bytes/s) is below {floor} bytes/s (two chunks per retry_after of {} ms): receivers would take the pacing for a stall; raise the rate or lower chunk_size",
                    self.retry_after.as_millis()
                ));
            }
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
    /// Delete the staging file of `digest`: its transfer was abandoned (no live member
    /// holds the content and no reservation or pending entry needs it, e.g. its
    /// coordinator died mid-transfer).
    StageDiscard {
        digest: Digest,
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
    /// Nobody activated; each failure names the node and the reason. `conflict`: the
    /// rollout of the same name that held a member (two deploys at once; HTTP 409).
    Aborted {
        failures: Vec<(NodeId, String)>,
        conflict: Option<Holder>,
    },
}

impl Outcome {
    /// One line for an API error: "node b: app@2 (…): sha256 mismatch; node c: …".
    pub fn summary(&self) -> String {
        match self {
            Outcome::Activated { generation } => format!("active at generation {generation}"),
            Outcome::Aborted { failures, .. } => failures
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
    /// When the member made the change current (its wall clock, ms since the Unix epoch),
    /// as it reported in `Activated`.
    pub activated_ms: Option<u64>,
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
    /// The version it deploys (`None` for an undeploy).
    pub version: Option<String>,
    pub outcome: Option<Outcome>,
    pub nodes: BTreeMap<NodeId, NodeProgress>,
}

impl RolloutStatus {
    /// This rollout as the typed reason of a conflict with another.
    pub fn holder(&self) -> Holder {
        Holder {
            deploy: self.deploy.clone(),
            version: self.version.clone(),
        }
    }

    /// The spread between the first and the last member's activation instant (each by its
    /// own clock), once every member that was not excluded has reported one; `None` before
    /// or for an aborted rollout.
    pub fn activation_skew_ms(&self) -> Option<u64> {
        if !matches!(self.outcome, Some(Outcome::Activated { .. })) {
            return None;
        }
        let mut at = Vec::new();
        for p in self.nodes.values() {
            match (&p.state, p.activated_ms) {
                (NodeState::Excluded, _) => {}
                (_, Some(ms)) => at.push(ms),
                (_, None) => return None,
            }
        }
        Some(at.iter().max()? - at.iter().min()?)
    }
}
