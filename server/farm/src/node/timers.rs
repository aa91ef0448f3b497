//! Time-driven work: rollout resends and deadlines, expired reservations, stalled
//! transfers (ask again from the cursor, or from another holder), idle senders, gossip.
use super::FarmCore;
use crate::artifact::Digest;
use crate::node_id::NodeId;
use crate::transfer::IncomingState;
use crate::wire::Message;
use std::time::Instant;

impl FarmCore {
    pub(super) fn timers(&mut self, now: Instant) {
        self.rollout_timers(now);
        self.reservations.retain(|_, r| r.expires > now);
        self.restart_stalled(now);
        self.refetch_pending(now);
        let idle = self.cfg.retry_after * 20;
        self.outgoing.retain(|_, o| now < o.last_activity + idle);
        self.gossip(now);
    }

    /// Who may have `digest`: the coordinators of our reservations, who told us of a
    /// pending entry, and peers that announced it; live ones only.
    fn sources(&self, digest: Digest) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = Vec::new();
        let mut add = |n: &NodeId| {
            if *n != self.me && self.members.contains(n) && !out.contains(n) {
                out.push(n.clone());
            }
        };
        for r in self.reservations.values() {
            if r.digest() == Some(digest) {
                add(&r.coordinator);
            }
        }
        for (e, from) in self.pending.values() {
            if e.manifest().is_some_and(|m| m.manifest.sha256 == digest) {
                add(from);
            }
        }
        for n in self.holders.get(&digest).into_iter().flatten() {
            add(n);
        }
        out
    }

    fn restart_stalled(&mut self, now: Instant) {
        let stalled: Vec<Digest> = self
            .incoming
            .values()
            .filter(|i| {
                i.state == IncomingState::Receiving && now >= i.last_progress + self.cfg.retry_after
            })
            .map(|i| i.digest)
            .collect();
        for digest in stalled {
            let sources = self.sources(digest);
            let Some(inc) = self.incoming.get_mut(&digest) else {
                continue;
            };
            if sources.is_empty() {
                // Nobody needs it or nobody has it: forget the partial transfer.
                self.incoming.remove(&digest);
                self.actions
                    .push(crate::node::Action::StageDiscard { digest });
                continue;
            }
            // Rotate to the next source after the current one (the current may be stuck).
            let pos = inc
                .source
                .as_ref()
                .and_then(|s| sources.iter().position(|x| x == s));
            let next = pos.map_or(0, |p| (p + 1) % sources.len());
            let to = sources[next].clone();
            inc.source = Some(to.clone());
            inc.last_progress = now;
            let (size, offset) = (inc.size, inc.next);
            self.send(
                &to,
                Message::Want {
                    digest,
                    size,
                    offset,
                },
            );
        }
    }

    /// Pending entries whose transfer was dropped (failed verification, lost source).
    fn refetch_pending(&mut self, now: Instant) {
        let todo: Vec<(Digest, u64)> = self
            .pending
            .values()
            .filter_map(|(e, _)| e.manifest())
            .map(|m| (m.manifest.sha256, m.manifest.size))
            .filter(|(d, _)| !self.incoming.contains_key(d) && !self.verified.contains(d))
            .collect();
        for (digest, size) in todo {
            if let Some(src) = self.sources(digest).first().cloned() {
                self.fetch(now, digest, size, &src);
            }
        }
    }
}
