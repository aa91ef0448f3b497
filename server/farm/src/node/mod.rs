//! The farm core of one node: coordinator of the rollouts started here, member of every
//! rollout, holder and receiver of content, and keeper of the node's catalog. Sans-io: the
//! runtime feeds it time, messages, membership and storage results through `handle_*`, and
//! carries out the [`Action`]s drained with [`FarmCore::take_actions`].
mod adopt;
mod member;
mod rollout;
mod stream;
mod sync;
mod timers;
mod types;

pub use types::{
    Action, Event, FarmConfig, NodeProgress, NodeState, Outcome, Phase, RolloutStatus,
};

use crate::artifact::{Digest, SignedManifest};
use crate::catalog::{Catalog, DeployId, Entry};
use crate::error::FarmError;
use crate::node_id::NodeId;
use crate::transfer::{Incoming, Outgoing, Pacer};
use crate::wire::{Change, Message};
use member::Reservation;
use rollout::Rollout;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

pub struct FarmCore {
    me: NodeId,
    cfg: FarmConfig,
    catalog: Catalog,
    /// Digests whose content the runtime verified and holds (staged or active).
    verified: BTreeSet<Digest>,
    /// Live peers, as reported by the runtime (this node excluded).
    members: BTreeSet<NodeId>,
    /// Peers whose catalog reached us since start: readiness needs all current members.
    heard: BTreeSet<NodeId>,
    /// The runtime finished its start-up discovery (`handle_joined`): the members
    /// reported so far are the initial view. Not ready before.
    joined: bool,
    /// Latched once the node has converged after start.
    ready: bool,
    /// Which peers announced an entry with this digest: where to fetch from.
    holders: BTreeMap<Digest, BTreeSet<NodeId>>,
    /// Member side: per name, the rollout this node has staged (or is staging) for.
    reservations: BTreeMap<String, Reservation>,
    /// Entries ahead of ours, waiting for their content; with who told us.
    pending: BTreeMap<String, (Entry, NodeId)>,
    /// Activate messages answered once the entry is applied here.
    owed_activated: BTreeMap<DeployId, (NodeId, String, crate::catalog::Generation)>,
    incoming: BTreeMap<Digest, Incoming>,
    outgoing: BTreeMap<(NodeId, Digest), Outgoing>,
    /// Token buckets per receiver (`transfer_rate`), shared by its transfers.
    pacers: BTreeMap<NodeId, Pacer>,
    /// Coordinator side: the running rollout per name, then its last status.
    rollouts: BTreeMap<String, Rollout>,
    next_seq: u64,
    next_sync: Instant,
    sync_cursor: usize,
    actions: Vec<Action>,
    /// The `now` of [`FarmCore::new`], the instant of `cfg.clock_origin_ms`.
    started: Instant,
    /// Messages to this node itself (the coordinator is also a member).
    loopback: VecDeque<Message>,
}

impl FarmCore {
    /// `catalog` and `verified` are what the runtime persisted (empty on first start):
    /// the slots last applied, and the digests with complete verified content on disk.
    pub fn new(
        me: NodeId,
        cfg: FarmConfig,
        catalog: Catalog,
        verified: impl IntoIterator<Item = Digest>,
        now: Instant,
    ) -> Self {
        FarmCore {
            me,
            next_sync: now + cfg.sync_interval,
            cfg,
            catalog,
            verified: verified.into_iter().collect(),
            members: BTreeSet::new(),
            heard: BTreeSet::new(),
            joined: false,
            ready: false,
            holders: BTreeMap::new(),
            reservations: BTreeMap::new(),
            pending: BTreeMap::new(),
            owed_activated: BTreeMap::new(),
            incoming: BTreeMap::new(),
            outgoing: BTreeMap::new(),
            pacers: BTreeMap::new(),
            rollouts: BTreeMap::new(),
            next_seq: 1,
            sync_cursor: 0,
            actions: Vec::new(),
            started: now,
            loopback: VecDeque::new(),
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    /// A decoded message from `from` (decode with [`crate::decode`]; drop frames that fail).
    pub fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        self.dispatch(now, from, msg);
        self.settle(now);
    }
    /// A peer is reachable (joined, restarted or a partition healed).
    pub fn handle_member_up(&mut self, now: Instant, peer: NodeId) {
        self.member_up(now, peer);
        self.settle(now);
    }
    /// The channel finished joining the cluster: every peer it found has been reported
    /// with `handle_member_up`. Readiness is decided from then on.
    pub fn handle_joined(&mut self, now: Instant) {
        self.joined = true;
        self.settle(now);
    }
    /// A peer left or is unreachable: no rollout waits for it any more.
    pub fn handle_member_down(&mut self, now: Instant, peer: NodeId) {
        self.member_down(now, peer);
        self.settle(now);
    }
    /// Answer to `Action::Verify`.
    pub fn handle_verified(&mut self, now: Instant, digest: Digest, result: Result<(), String>) {
        self.verified_result(now, digest, result);
        self.settle(now);
    }
    /// Answer to `Action::ReadChunk`.
    pub fn handle_chunk_read(
        &mut self,
        now: Instant,
        to: NodeId,
        digest: Digest,
        offset: u64,
        result: Result<Vec<u8>, String>,
    ) {
        self.chunk_read(now, to, digest, offset, result);
        self.settle(now);
    }
    /// Call at least every `retry_after / 2` (resends, stalls, deadlines, gossip), and at
    /// [`FarmCore::poll_timeout`] (paced chunks).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.timers(now);
        self.pump_paced(now);
        self.settle(now);
    }
    /// When pacing (`transfer_rate`) next lets a chunk leave: call `handle_timeout` then
    /// (besides the periodic calls). None while no paced transfer waits for its bucket.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_paced()
    }

    // ---- commands -----------------------------------------------------------------------

    /// Starts a deploy of `manifest` from this node; its content must already be stored
    /// here under its digest (the upload), it is verified first. The outcome arrives as
    /// `Event::RolloutFinished`.
    pub fn deploy(&mut self, now: Instant, sm: SignedManifest) -> Result<DeployId, FarmError> {
        self.cfg.trust.check(&sm).map_err(FarmError::Refused)?;
        if sm.manifest.name.is_empty() {
            return Err(FarmError::Invalid("the artifact name is empty".into()));
        }
        let name = sm.manifest.name.clone();
        let id = self.start(now, &name, Change::Deploy(sm))?;
        self.settle(now);
        Ok(id)
    }
    /// Removes `name` everywhere (or nowhere).
    pub fn undeploy(&mut self, now: Instant, name: &str) -> Result<DeployId, FarmError> {
        match self.catalog.current(name).and_then(Entry::manifest) {
            Some(_) => {}
            None => return Err(FarmError::NotDeployed { name: name.into() }),
        }
        let id = self.start(now, name, Change::Undeploy)?;
        self.settle(now);
        Ok(id)
    }
    /// Makes the previous version current again, everywhere or nowhere, as a new generation.
    pub fn rollback(&mut self, now: Instant, name: &str) -> Result<DeployId, FarmError> {
        let prev = self
            .catalog
            .get(name)
            .and_then(|s| s.previous.clone())
            .ok_or_else(|| FarmError::NoPrevious { name: name.into() })?;
        let change = match prev.target {
            crate::catalog::Target::Deployed(m) => Change::Deploy(m),
            crate::catalog::Target::Removed => Change::Undeploy,
        };
        let id = self.start(now, name, change)?;
        self.settle(now);
        Ok(id)
    }

    // ---- queries ------------------------------------------------------------------------

    pub fn me(&self) -> &NodeId {
        &self.me
    }
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    /// True once the node holds the cluster's current set (latched).
    pub fn is_ready(&self) -> bool {
        self.ready
    }
    /// True while the node has heard the catalog of every current member since it joined
    /// them and holds every entry they announced ahead of its own (not latched: a healed
    /// partition or a new member makes it false until the exchange is done).
    pub fn in_sync(&self) -> bool {
        self.pending.is_empty() && self.members.iter().all(|m| self.heard.contains(m))
    }
    /// The running or last finished rollout of `name` coordinated here.
    pub fn rollout(&self, name: &str) -> Option<RolloutStatus> {
        self.rollouts.get(name).map(|r| r.status(&self.outgoing))
    }
    /// Digests the node needs to keep: current, previous and staged content. The runtime
    /// may delete any other verified content.
    pub fn referenced(&self) -> BTreeSet<Digest> {
        let mut out = BTreeSet::new();
        for s in self.catalog.slots() {
            for e in std::iter::once(&s.current).chain(s.previous.as_ref()) {
                if let Some(m) = e.manifest() {
                    out.insert(m.manifest.sha256);
                }
            }
        }
        for r in self.reservations.values() {
            if let Some(d) = r.digest() {
                out.insert(d);
            }
        }
        out
    }

    // ---- outputs ------------------------------------------------------------------------

    /// Everything to do since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    // ---- internals shared by the submodules ---------------------------------------------

    fn send(&mut self, to: &NodeId, msg: Message) {
        if *to == self.me {
            self.loopback.push_back(msg);
        } else {
            self.actions.push(Action::Send {
                to: to.clone(),
                msg,
            });
        }
    }

    /// This node's wall clock at `now` (ms since the Unix epoch).
    fn wall_ms(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.started).as_millis() as u64;
        self.cfg.clock_origin_ms.saturating_add(elapsed)
    }

    fn event(&mut self, e: Event) {
        self.actions.push(Action::Event(e));
    }

    fn dispatch(&mut self, now: Instant, from: NodeId, msg: Message) {
        match msg {
            Message::Prepare {
                deploy,
                name,
                base,
                change,
            } => self.on_prepare(now, from, deploy, name, base, change),
            Message::Staged { deploy } => self.on_staged(now, from, deploy),
            Message::Failed {
                deploy,
                reason,
                conflict,
            } => self.on_failed(now, from, deploy, reason, conflict),
            Message::Activate { deploy, entry } => self.on_activate(now, from, deploy, entry),
            Message::Activated { deploy, at_ms } => self.on_activated(now, from, deploy, at_ms),
            Message::Abort { deploy } => self.on_abort(deploy),
            Message::Want {
                digest,
                size,
                offset,
            } => self.on_want(now, from, digest, size, offset),
            Message::NotHere { digest } => self.on_not_here(from, digest),
            Message::Chunk {
                digest,
                offset,
                bytes,
            } => self.on_chunk(now, from, digest, offset, bytes),
            Message::ChunkAck { digest, next } => self.on_chunk_ack(now, from, digest, next),
            Message::Catalog { entries, reply } => self.on_catalog(now, from, entries, reply),
        }
    }

    /// Delivers messages to self, then checks readiness.
    fn settle(&mut self, now: Instant) {
        while let Some(msg) = self.loopback.pop_front() {
            let me = self.me.clone();
            self.dispatch(now, me, msg);
        }
        self.check_ready();
    }
}
