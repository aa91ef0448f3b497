//! Coordinator side: one rollout per name at a time. Stage on every live member (this
//! node first, checking its upload), then compare-and-set the generation and Activate
//! everywhere; any failure or the deadline before that point aborts everywhere.
use super::types::{Event, NodeProgress, NodeState, Outcome, Phase, RolloutStatus};
use super::FarmCore;
use crate::artifact::Digest;
use crate::catalog::{DeployId, Entry, Generation, Holder, Target};
use crate::error::FarmError;
use crate::node_id::NodeId;
use crate::transfer::Outgoing;
use crate::wire::{Change, Message};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Rollout {
    deploy: DeployId,
    name: String,
    base: Generation,
    change: Change,
    phase: Phase,
    /// Staging must be complete by then.
    deadline: Instant,
    /// Last (re)send of Prepare or Activate.
    last_sent: Instant,
    /// Every member live at the start, this node included.
    nodes: BTreeMap<NodeId, NodeState>,
    /// Each member's activation instant as it reported it (its wall clock, ms).
    activated_ms: BTreeMap<NodeId, u64>,
    /// The rollout of the same name that made a member refuse this one.
    conflict: Option<Holder>,
    outcome: Option<Outcome>,
}

impl Rollout {
    fn digest_size(&self) -> Option<(Digest, u64)> {
        match &self.change {
            Change::Deploy(sm) => Some((sm.manifest.sha256, sm.manifest.size)),
            Change::Undeploy => None,
        }
    }

    fn prepare(&self) -> Message {
        Message::Prepare {
            deploy: self.deploy.clone(),
            name: self.name.clone(),
            base: self.base,
            change: self.change.clone(),
        }
    }

    fn entry(&self) -> Entry {
        Entry {
            name: self.name.clone(),
            generation: self.base + 1,
            deploy: self.deploy.clone(),
            target: match &self.change {
                Change::Deploy(sm) => Target::Deployed(sm.clone()),
                Change::Undeploy => Target::Removed,
            },
        }
    }

    fn waiting(&self, state: &NodeState) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub(super) fn status(&self, outgoing: &BTreeMap<(NodeId, Digest), Outgoing>) -> RolloutStatus {
        let (digest, size) = self.digest_size().map_or((None, 0), |(d, s)| (Some(d), s));
        let nodes = self
            .nodes
            .iter()
            .map(|(n, s)| {
                let done = matches!(s, NodeState::Staged | NodeState::Activated);
                let o = digest.and_then(|d| outgoing.get(&(n.clone(), d)));
                let staged = if done { size } else { o.map_or(0, |o| o.acked) };
                let sent = if done { size } else { o.map_or(0, |o| o.next) };
                let p = NodeProgress {
                    state: s.clone(),
                    bytes_staged: staged,
                    bytes_sent: sent.max(staged),
                    size,
                    activated_ms: self.activated_ms.get(n).copied(),
                };
                (n.clone(), p)
            })
            .collect();
        RolloutStatus {
            deploy: self.deploy.clone(),
            name: self.name.clone(),
            change: self.change.clone(),
            base: self.base,
            phase: self.phase,
            version: super::member::holder(&self.deploy, &self.change).version,
            outcome: self.outcome.clone(),
            nodes,
        }
    }
}

impl FarmCore {
    pub(super) fn start(
        &mut self,
        now: Instant,
        name: &str,
        change: Change,
    ) -> Result<DeployId, FarmError> {
        if !self.ready {
            return Err(FarmError::NotReady);
        }
        let sees = self.members.len() + 1;
        if sees < self.cfg.min_members {
            return Err(FarmError::NoQuorum {
                sees,
                needs: self.cfg.min_members,
            });
        }
        if let Some(r) = self.rollouts.get(name).filter(|r| r.phase != Phase::Done) {
            return Err(FarmError::Conflict {
                name: name.into(),
                holder: super::member::holder(&r.deploy, &r.change),
            });
        }
        if let Some(r) = self.reservations.get(name).filter(|r| r.expires > now) {
            return Err(FarmError::Conflict {
                name: name.into(),
                holder: r.holder(),
            });
        }
        if self.pending.contains_key(name) {
            return Err(FarmError::NotReady);
        }
        let deploy = DeployId {
            origin: self.me.clone(),
            incarnation: self.cfg.incarnation,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let mut nodes: BTreeMap<NodeId, NodeState> = self
            .members
            .iter()
            .map(|m| (m.clone(), NodeState::Staging))
            .collect();
        nodes.insert(self.me.clone(), NodeState::Staging);
        let r = Rollout {
            deploy: deploy.clone(),
            name: name.into(),
            base: self.catalog.generation(name),
            change,
            phase: Phase::LocalCheck,
            deadline: now + self.cfg.stage_deadline,
            last_sent: now,
            nodes,
            activated_ms: BTreeMap::new(),
            conflict: None,
            outcome: None,
        };
        let msg = r.prepare();
        self.rollouts.insert(name.into(), r);
        let me = self.me.clone();
        self.send(&me, msg);
        Ok(deploy)
    }

    fn rollout_of(&mut self, deploy: &DeployId) -> Option<&mut Rollout> {
        self.rollouts.values_mut().find(|r| r.deploy == *deploy)
    }

    pub(super) fn on_staged(&mut self, now: Instant, from: NodeId, deploy: DeployId) {
        let me = self.me.clone();
        let Some(r) = self.rollout_of(&deploy) else {
            return;
        };
        if !matches!(r.phase, Phase::LocalCheck | Phase::Staging) {
            return;
        }
        if let Some(s) = r.nodes.get_mut(&from) {
            if *s == NodeState::Staging {
                *s = NodeState::Staged;
            }
        }
        let name = r.name.clone();
        if from == me && r.phase == Phase::LocalCheck {
            r.phase = Phase::Staging;
            r.last_sent = now;
            let msg = r.prepare();
            let others: Vec<NodeId> = r.nodes.keys().filter(|n| **n != me).cloned().collect();
            for n in others {
                self.send(&n, msg.clone());
            }
        }
        self.advance(now, &name);
    }

    pub(super) fn on_failed(
        &mut self,
        now: Instant,
        from: NodeId,
        deploy: DeployId,
        reason: String,
        conflict: Option<Holder>,
    ) {
        let Some(r) = self.rollout_of(&deploy) else {
            return;
        };
        if !matches!(r.phase, Phase::LocalCheck | Phase::Staging) {
            return;
        }
        if let Some(s) = r.nodes.get_mut(&from) {
            *s = NodeState::Failed(reason);
        }
        if r.conflict.is_none() {
            r.conflict = conflict;
        }
        let name = r.name.clone();
        self.abort(now, &name);
    }

    pub(super) fn on_activated(
        &mut self,
        now: Instant,
        from: NodeId,
        deploy: DeployId,
        at_ms: u64,
    ) {
        let Some(r) = self.rollout_of(&deploy) else {
            return;
        };
        if r.phase != Phase::Committing {
            return;
        }
        if let Some(s) = r.nodes.get_mut(&from) {
            *s = NodeState::Activated;
            r.activated_ms.entry(from).or_insert(at_ms);
        }
        let name = r.name.clone();
        self.advance(now, &name);
    }

    /// A member left: the rollout stops waiting for it.
    pub(super) fn exclude(&mut self, now: Instant, peer: &NodeId) {
        let mut touched = Vec::new();
        for r in self.rollouts.values_mut() {
            if r.phase == Phase::Done {
                continue;
            }
            if let Some(s) = r.nodes.get_mut(peer) {
                if matches!(s, NodeState::Staging | NodeState::Staged)
                    || r.phase == Phase::Committing
                {
                    *s = NodeState::Excluded;
                    touched.push(r.name.clone());
                }
            }
        }
        for name in touched {
            self.advance(now, &name);
        }
    }

    /// Commits when every remaining member staged; finishes when every one activated.
    fn advance(&mut self, now: Instant, name: &str) {
        let Some(r) = self.rollouts.get(name) else {
            return;
        };
        let settled = |ok: &NodeState| {
            r.nodes
                .values()
                .all(|s| s == ok || *s == NodeState::Excluded)
        };
        match r.phase {
            Phase::Staging if settled(&NodeState::Staged) => self.commit(now, name),
            Phase::Committing if settled(&NodeState::Activated) => self.finish_activated(name),
            _ => {}
        }
    }

    /// The compare-and-set: only if this node still runs the base generation.
    fn commit(&mut self, now: Instant, name: &str) {
        let here = self.catalog.current(name).cloned();
        let me = self.me.clone();
        let Some(r) = self.rollouts.get_mut(name) else {
            return;
        };
        let here_gen = here.as_ref().map_or(0, |e| e.generation);
        if here_gen != r.base {
            let reason = format!(
                "{name}: stale base at commit, the rollout was based on generation {} but {} became current meanwhile",
                r.base,
                here.map_or("nothing".into(), |e| e.describe())
            );
            r.nodes.insert(me, NodeState::Failed(reason));
            return self.abort(now, name);
        }
        r.phase = Phase::Committing;
        r.last_sent = now;
        let msg = Message::Activate {
            deploy: r.deploy.clone(),
            entry: r.entry(),
        };
        let to: Vec<NodeId> = r.waiting(&NodeState::Staged);
        for n in to {
            self.send(&n, msg.clone());
        }
    }

    fn finish_activated(&mut self, name: &str) {
        let Some(r) = self.rollouts.get_mut(name) else {
            return;
        };
        r.phase = Phase::Done;
        let outcome = Outcome::Activated {
            generation: r.base + 1,
        };
        r.outcome = Some(outcome.clone());
        let e = Event::RolloutFinished {
            deploy: r.deploy.clone(),
            name: name.into(),
            outcome,
        };
        self.event(e);
    }

    /// Nobody activates: every member drops its reservation (or lets it expire).
    fn abort(&mut self, _now: Instant, name: &str) {
        let Some(r) = self.rollouts.get_mut(name) else {
            return;
        };
        r.phase = Phase::Done;
        let failures: Vec<(NodeId, String)> = r
            .nodes
            .iter()
            .filter_map(|(n, s)| match s {
                NodeState::Failed(reason) => Some((n.clone(), reason.clone())),
                _ => None,
            })
            .collect();
        let outcome = Outcome::Aborted {
            failures,
            conflict: r.conflict.clone(),
        };
        r.outcome = Some(outcome.clone());
        let deploy = r.deploy.clone();
        let to: Vec<NodeId> = r.nodes.keys().cloned().collect();
        for n in to {
            self.send(
                &n,
                Message::Abort {
                    deploy: deploy.clone(),
                },
            );
        }
        self.event(Event::RolloutFinished {
            deploy,
            name: name.into(),
            outcome,
        });
    }

    /// Resends, and the staging deadline.
    pub(super) fn rollout_timers(&mut self, now: Instant) {
        let retry = self.cfg.retry_after;
        let late = self.cfg.stage_deadline;
        let me = self.me.clone();
        let mut to_abort = Vec::new();
        let mut to_finish = Vec::new();
        let mut sends = Vec::new();
        for r in self.rollouts.values_mut() {
            match r.phase {
                Phase::LocalCheck | Phase::Staging if now >= r.deadline => {
                    for s in r.nodes.values_mut() {
                        if *s == NodeState::Staging {
                            *s = NodeState::Failed(format!(
                                "{}: not staged by the deadline ({} ms)",
                                r.name,
                                late.as_millis()
                            ));
                        }
                    }
                    to_abort.push(r.name.clone());
                }
                Phase::Staging if now >= r.last_sent + retry => {
                    r.last_sent = now;
                    for n in r.waiting(&NodeState::Staging) {
                        if n != me {
                            sends.push((n, r.prepare()));
                        }
                    }
                }
                Phase::Committing if now >= r.deadline + late => to_finish.push(r.name.clone()),
                Phase::Committing if now >= r.last_sent + retry => {
                    r.last_sent = now;
                    let msg = Message::Activate {
                        deploy: r.deploy.clone(),
                        entry: r.entry(),
                    };
                    for n in r.waiting(&NodeState::Staged) {
                        sends.push((n, msg.clone()));
                    }
                }
                _ => {}
            }
        }
        for (n, m) in sends {
            self.send(&n, m);
        }
        for name in to_abort {
            self.abort(now, &name);
        }
        // Members that never confirmed converge through the catalog exchange.
        for name in to_finish {
            self.finish_activated(&name);
        }
    }
}
