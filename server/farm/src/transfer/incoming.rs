//! The receiver side of one transfer: bytes are written strictly in order (the runtime
//! appends to one staging file); chunks that overtake a missing one wait in a small
//! buffer (at most `max_ahead` chunks, so memory stays bounded), and the cursor is the
//! resume point after loss, a stall or a change of holder.
use crate::artifact::Digest;
use crate::node_id::NodeId;
use std::collections::BTreeMap;
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
    /// Chunks that arrived before the one at `next`, by offset.
    ahead: BTreeMap<u64, Vec<u8>>,
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
            ahead: BTreeMap::new(),
        }
    }

    /// Takes a chunk and returns the chunks that can now be written, in order. A chunk
    /// past the declared size, empty, or already written is ignored.
    pub(crate) fn take(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        now: Instant,
        max_ahead: usize,
    ) -> Vec<(u64, Vec<u8>)> {
        let len = bytes.len() as u64;
        let fits = offset.checked_add(len).is_some_and(|end| end <= self.size);
        if self.state != IncomingState::Receiving || len == 0 || !fits || offset < self.next {
            return Vec::new();
        }
        if offset > self.next {
            if self.ahead.len() < max_ahead {
                self.ahead.entry(offset).or_insert(bytes);
            }
            return Vec::new();
        }
        let mut out = vec![(offset, bytes)];
        self.next += len;
        while let Some(b) = self.ahead.remove(&self.next) {
            let at = self.next;
            self.next += b.len() as u64;
            out.push((at, b));
        }
        let next = self.next;
        self.ahead.retain(|o, _| *o >= next);
        self.last_progress = now;
        out
    }

    pub(crate) fn complete(&self) -> bool {
        self.next == self.size
    }
}
