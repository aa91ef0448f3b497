//! Membership and convergence: the catalog exchange (on join, periodically round robin,
//! and answered once), and readiness — a node is ready when it has heard the catalog of
//! every current member and holds everything they announced that is ahead of it.
use super::types::Event;
use super::FarmCore;
use crate::catalog::Entry;
use crate::node_id::NodeId;
use crate::wire::Message;
use std::time::Instant;

impl FarmCore {
    pub(super) fn member_up(&mut self, _now: Instant, peer: NodeId) {
        if peer == self.me {
            return;
        }
        self.members.insert(peer.clone());
        self.push_catalog(&peer, false);
    }

    pub(super) fn member_down(&mut self, now: Instant, peer: NodeId) {
        self.members.remove(&peer);
        // The coordinator of a rollout staged here left, maybe inside its commit window:
        // the survivors exchange catalogs at once, so if Activate reached any of them,
        // every staged one adopts the entry from it now (roll forward), instead of at the
        // next anti-entropy round; if it reached none, the reservations expire.
        if self.reservations.values().any(|r| r.coordinator == peer) {
            let members: Vec<NodeId> = self.members.iter().cloned().collect();
            for m in members {
                self.push_catalog(&m, false);
            }
        }
        self.heard.remove(&peer);
        self.outgoing.retain(|(to, _), _| *to != peer);
        for h in self.holders.values_mut() {
            h.remove(&peer);
        }
        for inc in self.incoming.values_mut() {
            if inc.source.as_ref() == Some(&peer) {
                inc.source = None;
            }
        }
        self.exclude(now, &peer);
    }

    pub(super) fn on_catalog(
        &mut self,
        now: Instant,
        from: NodeId,
        entries: Vec<Entry>,
        reply: bool,
    ) {
        if from == self.me {
            return;
        }
        self.heard.insert(from.clone());
        for e in entries {
            self.offer(now, e, &from);
        }
        if !reply {
            self.push_catalog(&from, true);
        }
    }

    fn push_catalog(&mut self, to: &NodeId, reply: bool) {
        let entries = self.catalog.currents();
        self.send(to, Message::Catalog { entries, reply });
    }

    /// One member per period gets our catalog; while not ready, every member not heard yet.
    pub(super) fn gossip(&mut self, now: Instant) {
        if now < self.next_sync {
            return;
        }
        self.next_sync = now + self.cfg.sync_interval;
        let members: Vec<NodeId> = self.members.iter().cloned().collect();
        if members.is_empty() {
            return;
        }
        if !self.ready {
            let unheard: Vec<NodeId> = members
                .iter()
                .filter(|m| !self.heard.contains(*m))
                .cloned()
                .collect();
            for m in unheard {
                self.push_catalog(&m, false);
            }
        }
        self.sync_cursor = (self.sync_cursor + 1) % members.len();
        let to = members[self.sync_cursor].clone();
        self.push_catalog(&to, false);
    }

    pub(super) fn check_ready(&mut self) {
        if self.ready || !self.joined {
            return;
        }
        if self.in_sync() {
            self.ready = true;
            self.event(Event::Ready);
        }
    }
}
