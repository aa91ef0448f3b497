//! Content transfer between this node and its peers: serving verified content to a
//! receiver in a window of chunks, and receiving content in order into the runtime's
//! staging file, then asking the runtime to verify it.
use super::FarmCore;
use crate::artifact::Digest;
use crate::node::Action;
use crate::node_id::NodeId;
use crate::transfer::{Incoming, IncomingState, Outgoing, Pacer};
use crate::wire::Message;
use std::time::Instant;

impl FarmCore {
    /// Starts or resumes receiving `digest` from `source`.
    pub(super) fn fetch(&mut self, now: Instant, digest: Digest, size: u64, source: &NodeId) {
        if self.verified.contains(&digest) || *source == self.me {
            return;
        }
        if let Some(inc) = self.incoming.get_mut(&digest) {
            if inc.size == size {
                if inc.state == IncomingState::Verifying {
                    return;
                }
                let keep = inc
                    .source
                    .as_ref()
                    .is_some_and(|s| self.members.contains(s));
                if !keep {
                    inc.source = Some(source.clone());
                }
                inc.last_progress = now;
                let (to, offset) = (inc.source.clone(), inc.next);
                if let Some(to) = to {
                    self.send(
                        &to,
                        Message::Want {
                            digest,
                            size,
                            offset,
                        },
                    );
                }
                return;
            }
            // Two manifests claim different sizes for one digest: at most one can verify.
            self.incoming.remove(&digest);
        }
        let mut inc = Incoming::new(digest, size, source.clone(), now);
        self.actions.push(Action::StageBegin { digest, size });
        if size == 0 {
            inc.state = IncomingState::Verifying;
            self.actions.push(Action::Verify { digest, size });
        } else {
            self.send(
                source,
                Message::Want {
                    digest,
                    size,
                    offset: 0,
                },
            );
        }
        self.incoming.insert(digest, inc);
    }

    /// The coordinator checks the upload it is about to distribute.
    pub(super) fn verify_upload(&mut self, now: Instant, digest: Digest, size: u64) {
        if self.incoming.contains_key(&digest) {
            return;
        }
        let mut inc = Incoming::new(digest, size, self.me.clone(), now);
        inc.state = IncomingState::Verifying;
        self.incoming.insert(digest, inc);
        self.actions.push(Action::Verify { digest, size });
    }

    pub(super) fn on_want(
        &mut self,
        now: Instant,
        from: NodeId,
        digest: Digest,
        size: u64,
        offset: u64,
    ) {
        if !self.verified.contains(&digest) {
            self.send(&from, Message::NotHere { digest });
            return;
        }
        let key = (from, digest);
        let o = self
            .outgoing
            .entry(key.clone())
            .or_insert_with(|| Outgoing::new(size, offset, now));
        // A Want restarts the window at the receiver's cursor (it saw a stall or a gap).
        o.restart(offset, now);
        self.pump(now, &key);
    }

    pub(super) fn on_chunk_ack(&mut self, now: Instant, from: NodeId, digest: Digest, next: u64) {
        let key = (from, digest);
        if let Some(o) = self.outgoing.get_mut(&key) {
            o.ack(next, now);
            self.pump(now, &key);
        }
    }

    /// Issues the reads of the chunks that may leave for `key.0` now: within the window and,
    /// when pacing is on, within that receiver's token bucket.
    fn pump(&mut self, now: Instant, key: &(NodeId, Digest)) {
        let Some(o) = self.outgoing.get_mut(key) else {
            return;
        };
        if o.done() {
            self.outgoing.remove(key);
            return;
        }
        let (chunk, window) = (self.cfg.chunk_size, self.cfg.window);
        while let Some((offset, len)) = o.peek(chunk, window) {
            if let Some(rate) = self.cfg.transfer_rate {
                let burst = self.cfg.transfer_burst;
                let pacer = self
                    .pacers
                    .entry(key.0.clone())
                    .or_insert_with(|| Pacer::new(rate, burst, now));
                if !pacer.take(now, len) {
                    break;
                }
            }
            o.issue(len);
            self.actions.push(Action::ReadChunk {
                to: key.0.clone(),
                digest: key.1,
                offset,
                len,
            });
        }
    }

    /// Paced transfers whose tokens have come in send their next chunks.
    pub(super) fn pump_paced(&mut self, now: Instant) {
        if self.cfg.transfer_rate.is_none() {
            return;
        }
        let keys: Vec<(NodeId, Digest)> = self.outgoing.keys().cloned().collect();
        for key in &keys {
            self.pump(now, key);
        }
        let outgoing = &self.outgoing;
        self.pacers
            .retain(|n, _| outgoing.keys().any(|(to, _)| to == n));
    }

    /// The earliest time a paced transfer may send its next chunk (None: none is waiting
    /// for tokens; window-bound transfers wait for acknowledgements, not for time).
    pub(super) fn next_paced(&self) -> Option<Instant> {
        self.cfg.transfer_rate?;
        let (chunk, window) = (self.cfg.chunk_size, self.cfg.window);
        self.outgoing
            .iter()
            .filter_map(|((to, _), o)| {
                let (_, len) = o.peek(chunk, window)?;
                Some(self.pacers.get(to)?.ready_at(len))
            })
            .min()
    }

    pub(super) fn chunk_read(
        &mut self,
        _now: Instant,
        to: NodeId,
        digest: Digest,
        offset: u64,
        result: Result<Vec<u8>, String>,
    ) {
        match result {
            Ok(bytes) => {
                if self.outgoing.contains_key(&(to.clone(), digest)) {
                    self.send(
                        &to,
                        Message::Chunk {
                            digest,
                            offset,
                            bytes,
                        },
                    );
                }
            }
            Err(_) => {
                // The content is unreadable here: the receiver asks another holder.
                self.outgoing.remove(&(to.clone(), digest));
                self.send(&to, Message::NotHere { digest });
            }
        }
    }

    pub(super) fn on_not_here(&mut self, from: NodeId, digest: Digest) {
        if let Some(h) = self.holders.get_mut(&digest) {
            h.remove(&from);
        }
        if let Some(inc) = self.incoming.get_mut(&digest) {
            if inc.source.as_ref() == Some(&from) {
                inc.source = None;
            }
        }
    }

    pub(super) fn on_chunk(
        &mut self,
        now: Instant,
        from: NodeId,
        digest: Digest,
        offset: u64,
        bytes: Vec<u8>,
    ) {
        let Some(inc) = self.incoming.get_mut(&digest) else {
            return;
        };
        if inc.state != IncomingState::Receiving {
            return;
        }
        let max_ahead = self.cfg.window as usize * 2;
        let writable = inc.take(offset, bytes, now, max_ahead);
        // Every chunk is answered with the cursor: a duplicate or a gap tells the sender
        // where we are (three such acks in a row make it resend from there).
        let (next, size, complete) = (inc.next, inc.size, inc.complete());
        if complete {
            inc.state = IncomingState::Verifying;
        }
        for (offset, bytes) in writable {
            self.actions.push(Action::WriteChunk {
                digest,
                offset,
                bytes,
            });
        }
        self.send(&from, Message::ChunkAck { digest, next });
        if complete {
            self.actions.push(Action::Verify { digest, size });
        }
    }
}
