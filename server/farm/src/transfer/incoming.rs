//! The receiver side of one transfer: bytes are accepted strictly in order (so the runtime
//! appends to one staging file and memory stays bounded by a chunk), and the cursor is the
//! resume point after loss, a stall or a change of holder.
use crate::artifact::Digest;
use crate::node_id::NodeId;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IncomingState {
    Receiving,
    /// Every byte is written; the runtime is checking size and sha256.
    Verifying,
}

#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// Bytes [0, next) are written.
    pub(crate) next: u64,
    /// Whom we ask for the rest; None after it said NotHere or left.
    pub(crate) source: Option<NodeId>,
    pub(crate) state: IncomingState,
    /// Last time a chunk was accepted (or the transfer was (re)started): stall detection.
    pub(crate) last_progress: Instant,
}

impl Incoming {
    pub(crate) fn new(digest: Digest, size: u64, source: NodeId, now: Instant) -> Self {
        Incoming {
            digest,
            size,
            next: 0,
            source: Some(source),
            state: IncomingState::Receiving,
            last_progress: now,
        }
    }

    /// Accepts the chunk if it is the next one and stays within the declared size.
    pub(crate) fn accept(&mut self, offset: u64, len: u64, now: Instant) -> bool {
        let fits = offset.checked_add(len).is_some_and(|end| end <= self.size);
        if self.state != IncomingState::Receiving || offset != self.next || len == 0 || !fits {
            return false;
        }
        self.next += len;
        self.last_progress = now;
        true
    }

    pub(crate) fn complete(&self) -> bool {
        self.next == self.size
    }
}
