//! Member side of a rollout: checks a Prepare (signature, compare-and-set on the
//! generation, conflicting reservations), stages the content and answers Staged or
//! Failed; drops the reservation on Abort or when it expires.
use super::FarmCore;
use crate::artifact::Digest;
use crate::catalog::{DeployId, Generation, Holder};
use crate::node_id::NodeId;
use crate::wire::{Change, Message};
use std::time::Instant;

/// This node's promise to one rollout: it staged (or is staging) the change and refuses
/// other rollouts of the name until Activate, Abort or `expires`.
#[derive(Debug)]
pub(super) struct Reservation {
    pub(super) deploy: DeployId,
    pub(super) coordinator: NodeId,
    pub(super) change: Change,
    pub(super) staged: bool,
    pub(super) expires: Instant,
}

impl Reservation {
    pub(super) fn digest(&self) -> Option<Digest> {
        match &self.change {
            Change::Deploy(sm) => Some(sm.manifest.sha256),
            Change::Undeploy => None,
        }
    }

    pub(super) fn holder(&self) -> Holder {
        holder(&self.deploy, &self.change)
    }
}

/// `deploy` of `change` as the typed reason of a conflict.
pub(super) fn holder(deploy: &DeployId, change: &Change) -> Holder {
    Holder {
        deploy: deploy.clone(),
        version: match change {
            Change::Deploy(sm) => Some(sm.manifest.version.clone()),
            Change::Undeploy => None,
        },
    }
}

impl FarmCore {
    pub(super) fn on_prepare(
        &mut self,
        now: Instant,
        from: NodeId,
        deploy: DeployId,
        name: String,
        base: Generation,
        change: Change,
    ) {
        if let Some(r) = self.reservations.get(&name) {
            if r.deploy == deploy {
                // A resend: answer again if staged; a transfer in progress drives itself.
                if r.staged {
                    self.send(&from, Message::Staged { deploy });
                }
                return;
            }
            if r.expires > now {
                // Two rollouts of one name at once: the smaller rollout id wins, an order
                // every node agrees on, so exactly one of them can stage everywhere.
                let wins = deploy < r.deploy && self.check_prepare(&name, base, &change).is_ok();
                if !wins {
                    let reason = format!(
                        "{name}: conflict, this node is staged for rollout {} of the same name",
                        r.deploy
                    );
                    let conflict = Some(r.holder());
                    self.send(
                        &from,
                        Message::Failed {
                            deploy,
                            reason,
                            conflict,
                        },
                    );
                    return;
                }
                self.preempt(&name, &deploy, &change);
            }
            self.reservations.remove(&name);
        }
        if self
            .catalog
            .current(&name)
            .is_some_and(|c| c.deploy == deploy)
        {
            // Already activated (the Activate overtook a resent Prepare).
            self.send(&from, Message::Staged { deploy });
            return;
        }
        if let Err(reason) = self.check_prepare(&name, base, &change) {
            self.send(
                &from,
                Message::Failed {
                    deploy,
                    reason,
                    conflict: None,
                },
            );
            return;
        }
        let staged = match &change {
            Change::Undeploy => true,
            Change::Deploy(sm) => self.verified.contains(&sm.manifest.sha256),
        };
        if let Change::Deploy(sm) = &change {
            let (digest, size) = (sm.manifest.sha256, sm.manifest.size);
            if !staged && from == self.me {
                self.verify_upload(now, digest, size);
            } else if !staged {
                self.fetch(now, digest, size, &from);
            }
        }
        self.reservations.insert(
            name,
            Reservation {
                deploy: deploy.clone(),
                coordinator: from.clone(),
                change,
                staged,
                expires: now + self.cfg.reservation_ttl,
            },
        );
        if staged {
            self.send(&from, Message::Staged { deploy });
        }
    }

    /// Why this node refuses to stage the change (the reason names the artifact).
    fn check_prepare(&self, name: &str, base: Generation, change: &Change) -> Result<(), String> {
        let what = match change {
            Change::Deploy(sm) => {
                if sm.manifest.name != name {
                    return Err(format!(
                        "{}: the manifest is named {:?} but the rollout is for {name:?}",
                        sm.manifest, sm.manifest.name
                    ));
                }
                self.cfg.trust.check(sm)?;
                sm.manifest.to_string()
            }
            Change::Undeploy => format!("undeploy of {name}"),
        };
        let here = self.catalog.generation(name);
        if here != base {
            let current = self
                .catalog
                .current(name)
                .map_or("nothing".to_string(), |c| c.describe());
            return Err(format!(
                "{what}: stale base, the rollout is based on generation {base} of {name:?} but this node runs {current}; retry the deploy"
            ));
        }
        if let Some((p, _)) = self.pending.get(name) {
            return Err(format!(
                "{what}: this node is still fetching {}; retry in a moment",
                p.describe()
            ));
        }
        Ok(())
    }

    /// The reservation of `name` gives way to `winner` (a smaller rollout id): its
    /// coordinator is told, and aborts. Safe even if this node had answered Staged: the
    /// loser cannot have committed, because committing needs the winner's coordinator
    /// staged for it, and that node has held the winner's own reservation since the
    /// winner started (it refuses the loser, which is larger).
    fn preempt(&mut self, name: &str, winner: &DeployId, change: &Change) {
        let Some(r) = self.reservations.remove(name) else {
            return;
        };
        let reason = format!(
            "{name}: conflict, this node went to rollout {winner} of the same name (of two at once, the smaller rollout id wins)"
        );
        self.send(
            &r.coordinator,
            Message::Failed {
                deploy: r.deploy,
                reason,
                conflict: Some(holder(winner, change)),
            },
        );
    }

    pub(super) fn on_abort(&mut self, deploy: DeployId) {
        self.reservations.retain(|_, r| r.deploy != deploy);
    }

    /// The runtime checked a staged or uploaded file: release whoever waited for it.
    pub(super) fn verified_result(
        &mut self,
        now: Instant,
        digest: Digest,
        result: Result<(), String>,
    ) {
        self.incoming.remove(&digest);
        match result {
            Ok(()) => {
                self.verified.insert(digest);
                let mut staged = Vec::new();
                for r in self.reservations.values_mut() {
                    if !r.staged && r.digest() == Some(digest) {
                        r.staged = true;
                        staged.push((r.coordinator.clone(), r.deploy.clone()));
                    }
                }
                for (to, deploy) in staged {
                    self.send(&to, Message::Staged { deploy });
                }
                let ready: Vec<_> = self
                    .pending
                    .values()
                    .filter(|(e, _)| e.manifest().is_some_and(|m| m.manifest.sha256 == digest))
                    .map(|(e, _)| e.clone())
                    .collect();
                for e in ready {
                    self.apply(now, e);
                }
            }
            Err(reason) => {
                let failed: Vec<String> = self
                    .reservations
                    .iter()
                    .filter(|(_, r)| !r.staged && r.digest() == Some(digest))
                    .map(|(n, _)| n.clone())
                    .collect();
                for name in failed {
                    if let Some(r) = self.reservations.remove(&name) {
                        let what = match &r.change {
                            Change::Deploy(sm) => sm.manifest.to_string(),
                            Change::Undeploy => name.clone(),
                        };
                        let reason = format!("{what}: verification failed: {reason}");
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
                // Pending adoptions fetch again (from another holder) on the next timer.
            }
        }
    }
}
