//! The task that owns a node's [`FarmCore`]: a dedicated thread (storage is blocking I/O and
//! its actions must run in order) fed by one queue of inputs — decoded messages from the
//! channel, membership, commands from the API — and a timer; it carries out the core's
//! actions (send, stage, write, verify, read, apply) and publishes a [`FarmView`] for the
//! API after each step.
use super::admit::admit;
use super::application::Applications;
use super::apply::apply;
use super::bundle::Bundles;
use super::content::ContentStore;
use super::frame::frame;
use super::metrics::FarmMetrics;
use super::view::{FarmView, Notice};
use crate::plugins::Plugins;
use shoal_cluster::{MemberId, SendOptions};
use shoal_farm::FarmFaults;
use shoal_farm::{
    Action, Change, DeployId, Digest, Entry, Event, FarmCore, FarmError, Message, NodeId, Outcome,
    SignedManifest, Slot,
};
use shoal_net::Channel;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot, watch};

/// The outcome of a command, once its rollout ends.
pub type Started = Result<oneshot::Receiver<Outcome>, FarmError>;

pub enum Input {
    /// A farm frame as received (decoded here, off the channel's thread).
    Frame {
        from: MemberId,
        payload: Vec<u8>,
    },
    Up {
        name: NodeId,
        id: MemberId,
    },
    Down(NodeId),
    Joined,
    /// A deploy of an upload (`Farm::deploy`): its staging file was hashed as received.
    Deploy {
        sm: SignedManifest,
        reply: oneshot::Sender<Started>,
    },
    Undeploy {
        name: String,
        reply: oneshot::Sender<Started>,
    },
    Rollback {
        name: String,
        reply: oneshot::Sender<Started>,
    },
}

/// Manifests seen in a Prepare (or deployed here), checked by `admit` when their content
/// is verified. Bounded: an artifact whose content was already here is never verified.
const PREPARED_MAX: usize = 256;

pub struct Driver {
    pub core: FarmCore,
    pub store: ContentStore,
    /// Where applications' static-file bundles are unpacked.
    pub bundles: Bundles,
    pub plugins: Arc<Plugins>,
    pub apps: Arc<Applications>,
    pub channel: Channel,
    pub rx: Receiver<Input>,
    pub view: Arc<Mutex<FarmView>>,
    pub metrics: Arc<FarmMetrics>,
    pub ready: watch::Sender<bool>,
    pub notices: broadcast::Sender<Notice>,
    pub tick: Duration,
    pub ids: HashMap<NodeId, MemberId>,
    pub waiters: HashMap<DeployId, oneshot::Sender<Outcome>>,
    pub prepared: HashMap<Digest, SignedManifest>,
    /// Highest chunk offset sent per receiver and digest (a lower one is a resend).
    pub sent_high: HashMap<(NodeId, Digest), u64>,
    /// Names of the rollouts started here (their status is published).
    pub coordinated: std::collections::BTreeSet<String>,
    pub finished: Vec<(oneshot::Sender<Outcome>, Outcome)>,
    /// `[farm.faults]` (tests only), and per rollout the Activates it counted.
    pub faults: FarmFaults,
    pub held: HashMap<DeployId, u32>,
    /// Rollouts admitted here although their content was already held (bounded like
    /// `prepared`): a resent Prepare is not checked again.
    pub admitted: std::collections::HashSet<DeployId>,
}

impl Driver {
    /// Makes the persisted deployments live again (no hooks), before any input: the node
    /// reports ready only afterwards. Runs on the farm thread (applications compile there).
    pub fn reapply(&mut self) {
        let slots: Vec<Slot> = self.core.catalog().slots().cloned().collect();
        for slot in &slots {
            if let Err(e) = apply(
                &self.plugins,
                &self.apps,
                &self.store,
                &self.bundles,
                slot,
                false,
            ) {
                tracing::error!(
                    "farm: {} could not be made live again: {e}",
                    slot.current.describe()
                );
                if let Ok(mut v) = self.view.lock() {
                    v.failures.insert(slot.current.name.clone(), e);
                }
            }
        }
    }

    pub fn run(mut self) {
        let mut next_tick = Instant::now() + self.tick;
        loop {
            // The periodic timers, or sooner the next paced chunks (`transfer_rate`), at most
            // one wake-up a millisecond (the bucket holds 10 ms: the rate is kept).
            let wake = self.core.poll_timeout().map_or(next_tick, |p| {
                p.max(Instant::now() + Duration::from_millis(1))
                    .min(next_tick)
            });
            let wait = wake.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(input) => self.input(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.core.handle_timeout(now);
                next_tick = now + self.tick;
            } else if self.core.poll_timeout().is_some_and(|p| now >= p) {
                self.core.handle_timeout(now);
            }
            self.run_actions();
            self.publish();
            for (w, outcome) in self.finished.drain(..) {
                let _ = w.send(outcome);
            }
        }
    }

    fn input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Frame { from, payload } => {
                let msg = match super::frame::unframe(&payload) {
                    Ok(msg) => msg,
                    Err(e) => {
                        FarmMetrics::inc(&self.metrics.decode_failures);
                        tracing::warn!(from = %from.to_hex(), "farm: dropped a frame: {e}");
                        return;
                    }
                };
                drop(payload);
                let Some(from) = self.name_of(from) else {
                    FarmMetrics::inc(&self.metrics.decode_failures);
                    return;
                };
                match &msg {
                    Message::Prepare {
                        deploy,
                        change: Change::Deploy(sm),
                        ..
                    } => {
                        let admitted = match self.admitted.contains(deploy) {
                            true => Ok(()),
                            false => self.admit_held(sm),
                        };
                        if let Err(reason) = admitted {
                            tracing::warn!(%from, "farm: {reason}");
                            let failed = Message::Failed {
                                deploy: deploy.clone(),
                                reason,
                                conflict: None,
                            };
                            self.send(from, failed);
                            return;
                        }
                        if self.admitted.len() >= PREPARED_MAX {
                            self.admitted.clear();
                        }
                        self.admitted.insert(deploy.clone());
                        self.remember(sm.clone())
                    }
                    Message::Want { digest, offset, .. } => {
                        tracing::debug!(%from, "farm: {from} asks for {digest:?} from offset {offset}");
                    }
                    Message::NotHere { digest } => {
                        tracing::debug!(%from, "farm: {from} does not hold {digest:?}");
                    }
                    Message::Catalog { entries, .. } => {
                        if let Ok(mut v) = self.view.lock() {
                            v.peers.insert(from.clone(), entries.clone());
                        }
                    }
                    _ => {}
                }
                self.core.handle_message(now, from, msg);
            }
            Input::Up { name, id } => {
                self.ids.insert(name.clone(), id);
                self.core.handle_member_up(now, name);
            }
            Input::Down(name) => {
                self.ids.remove(&name);
                self.sent_high.retain(|(n, _), _| *n != name);
                if let Ok(mut v) = self.view.lock() {
                    v.peers.remove(&name);
                }
                self.core.handle_member_down(now, name);
            }
            Input::Joined => self.core.handle_joined(now),
            Input::Deploy { sm, reply } => {
                if let Err(reason) = self.admit_held(&sm) {
                    return self.refuse(reason, reply);
                }
                // Its content is an upload hashed as it was received (`upload::receive`).
                self.store.vouch(sm.manifest.sha256, sm.manifest.size);
                self.remember(sm.clone());
                self.coordinated.insert(sm.manifest.name.clone());
                let r = self.core.deploy(now, sm);
                self.started(r, reply);
            }
            Input::Undeploy { name, reply } => {
                self.coordinated.insert(name.clone());
                let r = self.core.undeploy(now, &name);
                self.started(r, reply);
            }
            Input::Rollback { name, reply } => {
                // The previous version is held here: admitted again, as the members do
                // when they get its Prepare.
                let previous = self
                    .core
                    .catalog()
                    .get(&name)
                    .and_then(|s| s.previous.clone());
                if let Some(sm) = previous.as_ref().and_then(Entry::manifest) {
                    if let Err(reason) = self.admit_held(sm) {
                        return self.refuse(reason, reply);
                    }
                }
                self.coordinated.insert(name.clone());
                let r = self.core.rollback(now, &name);
                self.started(r, reply);
            }
        }
    }

    /// The member name of a sender (the farm names nodes by member name).
    fn name_of(&self, id: MemberId) -> Option<NodeId> {
        if let Some((n, _)) = self.ids.iter().find(|(_, i)| **i == id) {
            return Some(n.clone());
        }
        self.channel
            .members()
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| NodeId::new(m.name))
    }

    /// Admission (`admit`: deploy hooks, test instantiation with this manifest's
    /// configuration, context and place) of a rollout whose content this node already holds:
    /// the core stages such content at once, without the `Verify` that admits new content,
    /// so a new name, version or metadata for known bytes is checked here. New content: Ok
    /// (admitted when verified).
    fn admit_held(&self, sm: &SignedManifest) -> Result<(), String> {
        let path = self.store.content_path(&sm.manifest.sha256);
        if !path.is_file() {
            return Ok(());
        }
        admit(&self.plugins, &self.apps, &self.bundles, sm, &path)
            .map_err(|e| format!("{}: refused here: {e}", sm.manifest))
    }

    /// A rollout this node will not start: its own admission refused the change.
    fn refuse(&mut self, reason: String, reply: oneshot::Sender<Started>) {
        let me = self.core.me();
        let why = format!("node {me}: {reason}; nothing was activated");
        self.started(Err(FarmError::Refused(why)), reply);
    }

    fn remember(&mut self, sm: SignedManifest) {
        if self.prepared.len() >= PREPARED_MAX {
            self.prepared.clear();
        }
        self.prepared.insert(sm.manifest.sha256, sm);
    }

    fn started(&mut self, r: Result<DeployId, FarmError>, reply: oneshot::Sender<Started>) {
        let answer = r.map(|id| {
            let (tx, rx) = oneshot::channel();
            self.waiters.insert(id, tx);
            rx
        });
        let _ = reply.send(answer);
    }

    /// Carries out actions until the core has none left (answers produce more).
    fn run_actions(&mut self) {
        let mut applied = false;
        loop {
            let actions = self.core.take_actions();
            if actions.is_empty() {
                break;
            }
            for a in actions {
                applied |= self.action(a);
            }
        }
        if applied {
            if let Err(e) = self.store.save_catalog(self.core.catalog()) {
                tracing::error!("farm: {e}; the deployed set may not survive a restart");
            }
            let referenced = self.core.referenced();
            self.store.collect_garbage(&referenced);
            self.bundles.collect_garbage(&referenced);
        }
    }

    /// Returns true for an `Apply`.
    fn action(&mut self, a: Action) -> bool {
        let now = Instant::now();
        match a {
            Action::Send { to, msg } => self.send(to, msg),
            Action::StageBegin { digest, .. } => {
                if let Err(e) = self.store.stage_begin(digest) {
                    tracing::warn!("farm: {e}");
                }
            }
            Action::StageDiscard { digest } => self.store.discard(digest),
            Action::WriteChunk {
                digest,
                offset,
                bytes,
            } => {
                FarmMetrics::add(&self.metrics.bytes_received, bytes.len() as u64);
                if let Err(e) = self.store.write_chunk(digest, offset, &bytes) {
                    tracing::warn!("farm: {e}");
                }
            }
            Action::Verify { digest, size } => {
                let r = self.verify(digest, size);
                if let Err(e) = &r {
                    FarmMetrics::inc(&self.metrics.verify_failures);
                    tracing::warn!("farm: content {digest:?} refused here: {e}");
                }
                self.core.handle_verified(now, digest, r);
            }
            Action::ReadChunk {
                to,
                digest,
                offset,
                len,
            } => {
                let r = self.store.read_chunk(digest, offset, len);
                self.core.handle_chunk_read(now, to, digest, offset, r);
            }
            Action::Apply { slot } => {
                let me = self.core.me().clone();
                if let Some(h) = self.faults.hold_apply(&me, &slot, &mut self.held) {
                    self.hold(h);
                }
                self.apply(&slot);
                return true;
            }
            Action::Event(e) => self.event(e),
        }
        false
    }

    fn verify(&mut self, digest: Digest, size: u64) -> Result<(), String> {
        let path = self.store.check(digest, size)?;
        if let Some(sm) = self.prepared.remove(&digest) {
            if let Err(e) = admit(&self.plugins, &self.apps, &self.bundles, &sm, &path) {
                self.store.discard(digest);
                return Err(e);
            }
        }
        self.store.commit(digest)
    }

    fn apply(&mut self, slot: &Slot) {
        let name = slot.current.name.clone();
        let r = apply(
            &self.plugins,
            &self.apps,
            &self.store,
            &self.bundles,
            slot,
            true,
        );
        let what = slot.current.describe();
        match &r {
            Ok(()) => tracing::info!("farm: {what} is live on this node"),
            Err(e) => {
                FarmMetrics::inc(&self.metrics.apply_failures);
                tracing::error!("farm: {what} could not be made live here: {e}");
            }
        }
        if let Ok(mut v) = self.view.lock() {
            v.applied_ms
                .insert(name.clone(), shoal_admin::dto::now_ms());
            match &r {
                Ok(()) => v.failures.remove(&name),
                Err(e) => v.failures.insert(name.clone(), e.clone()),
            };
        }
        let _ = self.notices.send(Notice::Applied {
            name,
            what,
            result: r,
        });
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::RolloutFinished {
                deploy,
                name,
                outcome,
            } => {
                let c = match outcome {
                    Outcome::Activated { .. } => &self.metrics.deploys_activated,
                    Outcome::Aborted { .. } => &self.metrics.deploys_aborted,
                };
                FarmMetrics::inc(c);
                let skew = self
                    .core
                    .rollout(&name)
                    .and_then(|r| r.activation_skew_ms());
                if let Some(ms) = skew {
                    self.metrics.observe_skew(ms);
                    tracing::info!(%name, %deploy, "farm: activation skew {ms} ms");
                }
                tracing::info!(%name, %deploy, "farm: rollout finished: {}", outcome.summary());
                if let Some(w) = self.waiters.remove(&deploy) {
                    // Answered after the view is published, so the caller reads the result.
                    self.finished.push((w, outcome));
                }
            }
            Event::Ready => {
                tracing::info!("farm: this node holds the cluster's deployments");
                // The API shows the converged set from the moment the node says ready.
                self.publish();
                let _ = self.ready.send(true);
            }
            Event::Refused { from, reason } => {
                tracing::warn!(%from, "farm: an entry offered by a peer was refused here: {reason}");
                let _ = self.notices.send(Notice::Refused {
                    from: from.to_string(),
                    reason,
                });
            }
        }
    }

    /// Best effort, no acknowledgement, in call order (chunks never wait for an ack, so
    /// session replication keeps its place on the links; the core's window bounds them).
    fn send(&mut self, to: NodeId, mut msg: Message) {
        if let Some(h) = self.faults.hold_send(&msg, &mut self.held) {
            self.hold(h);
        }
        self.faults.outgoing(&to, &mut msg);
        // The core stamps Activated when it decides to apply; the Apply it queued before
        // this Send has run by now (a component may take a while to swap in), so the
        // instant reported to the coordinator is when the version went live here.
        if let Message::Activated { at_ms, .. } = &mut msg {
            *at_ms = shoal_admin::dto::now_ms();
            // This node's API shows the version before the coordinator hears it is live
            // here: once the deploy answers 201, every member's view has it.
            self.publish();
        }
        if let Message::Chunk {
            digest,
            offset,
            bytes,
        } = &msg
        {
            FarmMetrics::inc(&self.metrics.chunks_sent);
            FarmMetrics::add(&self.metrics.bytes_sent, bytes.len() as u64);
            let high = self.sent_high.entry((to.clone(), *digest)).or_insert(0);
            if *offset < *high || (*offset == 0 && *high > 0) {
                FarmMetrics::inc(&self.metrics.chunks_resent);
            }
            *high = (*high).max(*offset + bytes.len() as u64);
        }
        if let Message::Want { digest, offset, .. } = &msg {
            tracing::debug!(%to, "farm: asking {to} for {digest:?} from offset {offset}");
        }
        let Some(id) = self.ids.get(&to).copied() else {
            tracing::debug!(%to, "farm: no member id for {to} yet: message dropped (resent on the next timer)");
            return;
        };
        // The future only reports the outcome: dropping it keeps the send.
        drop(self.channel.send_now(&[id], frame(&msg), SendOptions(0)));
    }

    /// `[farm.faults] hold_activate_ms`: publishes the view, says where, and holds the
    /// farm thread (a test kills the node meanwhile).
    fn hold(&mut self, (deploy, hold): (DeployId, std::time::Duration)) {
        self.publish();
        tracing::warn!(
            "farm: [farm.faults] holding rollout {deploy} at {} for {} ms",
            self.faults.hold_at.name(),
            hold.as_millis()
        );
        std::thread::sleep(hold);
    }

    fn publish(&mut self) {
        let ready = self.core.is_ready();
        let catalog: Vec<Slot> = self.core.catalog().slots().cloned().collect();
        let Ok(mut v) = self.view.lock() else {
            return;
        };
        v.ready = ready;
        v.in_sync = self.core.in_sync();
        v.catalog = catalog;
        for n in &self.coordinated {
            if let Some(r) = self.core.rollout(n) {
                if v.rollouts.get(n).is_none_or(|old| old.deploy != r.deploy) {
                    v.rollout_started_ms
                        .insert(n.clone(), shoal_admin::dto::now_ms());
                }
                v.rollouts.insert(n.clone(), r);
            }
        }
    }
}
