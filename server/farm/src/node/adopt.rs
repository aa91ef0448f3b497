//! Making an entry current here: from a coordinator's Activate or from a peer's catalog.
//! An entry is adopted only if it is ahead of ours in (generation, deploy id) order, its
//! manifest passes this node's signature policy, and its content is verified here
//! (fetched first if needed). That single rule is how a late joiner, a restarted node and
//! both sides of a healed partition converge.
use super::FarmCore;
use crate::catalog::{DeployId, Entry, Target};
use crate::node::types::Event;
use crate::node::Action;
use crate::node_id::NodeId;
use crate::wire::Message;
use std::cmp::Ordering;
use std::time::Instant;

impl FarmCore {
    pub(super) fn on_activate(
        &mut self,
        now: Instant,
        from: NodeId,
        deploy: DeployId,
        entry: Entry,
    ) {
        if entry.deploy != deploy {
            return;
        }
        self.owed_activated
            .insert(deploy, (from.clone(), entry.name.clone(), entry.generation));
        self.offer(now, entry, &from);
        self.pay_owed(now);
    }

    /// Considers `entry`, announced by `from`, for adoption.
    pub(super) fn offer(&mut self, now: Instant, entry: Entry, from: &NodeId) {
        if !self.catalog.is_newer(&entry) {
            return;
        }
        if let Some((p, _)) = self.pending.get(&entry.name) {
            if entry.order(p) != Ordering::Greater {
                return;
            }
        }
        let sm = match &entry.target {
            Target::Removed => None,
            Target::Deployed(sm) => Some(sm.clone()),
        };
        let Some(sm) = sm else {
            return self.apply(now, entry);
        };
        let refusal = if sm.manifest.name != entry.name {
            Some(format!(
                "{}: the manifest is named {:?} but the entry is for {:?}",
                sm.manifest, sm.manifest.name, entry.name
            ))
        } else {
            self.cfg.trust.check(&sm).err()
        };
        if let Some(reason) = refusal {
            self.event(Event::Refused {
                from: from.clone(),
                reason,
            });
            return;
        }
        let digest = sm.manifest.sha256;
        if *from != self.me {
            self.holders.entry(digest).or_default().insert(from.clone());
        }
        if self.verified.contains(&digest) {
            self.apply(now, entry);
        } else {
            self.pending
                .insert(entry.name.clone(), (entry, from.clone()));
            self.fetch(now, digest, sm.manifest.size, from);
        }
    }

    /// Makes `entry` current (its content is verified, or it is a removal).
    pub(super) fn apply(&mut self, now: Instant, entry: Entry) {
        let name = entry.name.clone();
        if let Some(r) = self.reservations.remove(&name) {
            if r.deploy != entry.deploy {
                let reason = format!(
                    "{name}: superseded, this node moved to {} meanwhile",
                    entry.describe()
                );
                self.send(
                    &r.coordinator,
                    Message::Failed {
                        deploy: r.deploy,
                        reason,
                        conflict: None,
                    },
                );
            }
        }
        if self
            .pending
            .get(&name)
            .is_some_and(|(p, _)| p.order(&entry) != Ordering::Greater)
        {
            self.pending.remove(&name);
        }
        let slot = self.catalog.install(entry);
        self.actions.push(Action::Apply { slot });
        self.pay_owed(now);
    }

    /// Answers Activate messages whose entry (or a later one) is now current here, with
    /// this node's activation instant (the runtime applies before it sends the answer).
    fn pay_owed(&mut self, now: Instant) {
        let mut done: Vec<DeployId> = Vec::new();
        for (d, (_, name, generation)) in &self.owed_activated {
            let reached = self
                .catalog
                .current(name)
                .is_some_and(|c| (c.generation, &c.deploy) >= (*generation, d));
            if reached {
                done.push(d.clone());
            }
        }
        let at_ms = self.wall_ms(now);
        for d in done {
            if let Some((to, _, _)) = self.owed_activated.remove(&d) {
                self.send(&to, Message::Activated { deploy: d, at_ms });
            }
        }
    }
}
