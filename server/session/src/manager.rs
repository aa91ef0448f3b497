//! The `SessionManager` trait both managers implement, their configuration, and `Core`, the
//! state and helpers they share (store, members, id generation, counters, message encoding).
use crate::error::SessionError;
use crate::id::SessionId;
use crate::message::{self, SessionMessage};
use crate::session::{DeltaOp, Millis, Session, SessionLimits};
use crate::stats::{ManagerStats, MessageCounters};
use crate::store::{Entry, Store};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use shoal_cluster::MemberId;
use std::collections::BTreeSet;

/// A message to send. `sync`: the caller must wait until every destination has *processed*
/// it (the runtime sends it with SYNCHRONIZED_ACK) before answering the request.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub to: Vec<MemberId>,
    pub payload: Vec<u8>,
    pub sync: bool,
}

/// Result of processing one incoming message. `ack` is what a SYNCHRONIZED_ACK sender gets
/// back: `Err` when the replica did not apply the write (conflict), so it is not acknowledged.
#[derive(Debug)]
pub struct Received {
    pub out: Vec<Outgoing>,
    pub ack: Result<(), String>,
}

impl Default for Received {
    fn default() -> Self {
        Received {
            out: Vec::new(),
            ack: Ok(()),
        }
    }
}

/// Result of looking a session up for a request.
#[derive(Debug)]
pub enum Lookup {
    Found(Session),
    Missing,
    /// The value lives elsewhere and is being fetched (BackupManager proxy, or a state
    /// transfer still running): send `out`, wait for incoming messages, ask again.
    Pending(Vec<Outgoing>),
}

/// What a request did to its session; handed to the manager at the end of the request.
#[derive(Clone, Debug, Default)]
pub struct RequestEnd {
    pub id: Option<SessionId>,
    pub ops: Vec<DeltaOp>,
    pub invalidate: bool,
    /// The session was used (read or written) by the request.
    pub accessed: bool,
    /// False for requests matched by the ReplicationValve filter: apply locally only.
    pub replicate: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerKind {
    /// All-to-all: every node holds every session (Tomcat's DeltaManager).
    #[default]
    Delta,
    /// Primary + N backups, proxies elsewhere (Tomcat's BackupManager).
    Backup,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationMode {
    /// The response waits until replicas applied the change (channelSendOptions=6).
    #[default]
    Sync,
    /// The response does not wait; versions still keep replicas in order.
    Async,
}

/// Per-context session manager settings (the `[http.contexts.session]` table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerConfig {
    pub manager: ManagerKind,
    pub replication: ReplicationMode,
    /// BackupManager: number of backups per session (Tomcat: always 1).
    pub backups: usize,
    /// Default max inactive interval for new sessions, seconds (Tomcat: 30 min). 0 = never.
    pub max_inactive_secs: u32,
    /// Send the whole session instead of a delta whenever it changed (useDirtyFlag=false).
    pub replicate_whole_session: bool,
    /// Sessions per ALL_SESSION_DATA batch (Tomcat's sendAllSessionsSize).
    pub send_all_sessions_size: usize,
    /// Wait this long for one member's state before asking the next (Tomcat: 60 s, no retry).
    pub state_transfer_timeout_secs: u64,
    /// Out-of-order deltas wait this long for the gap to fill, then the session is fetched.
    pub gap_timeout_ms: u64,
    /// How long a request waits for a session value fetched from another node.
    pub fetch_timeout_ms: u64,
    /// How often the expiry sweeper runs.
    pub sweep_interval_ms: u64,
    /// Asynchronous replication: bytes of messages made but not yet taken by the channel.
    /// A request that finds more queued waits until the queue drains below this
    /// (backpressure; counted in `ManagerStats::async_queue_full`), so a node producing
    /// faster than its replicas take does not grow without bound. Nothing is dropped.
    pub async_queue_bytes: usize,
    pub limits: SessionLimits,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            manager: ManagerKind::Delta,
            replication: ReplicationMode::Sync,
            backups: 1,
            max_inactive_secs: 1800,
            replicate_whole_session: false,
            send_all_sessions_size: 1000,
            state_transfer_timeout_secs: 60,
            gap_timeout_ms: 2000,
            fetch_timeout_ms: 2000,
            sweep_interval_ms: 1000,
            async_queue_bytes: 4 << 20,
            limits: SessionLimits::default(),
        }
    }
}

pub trait SessionManager: Send {
    fn kind(&self) -> ManagerKind;
    fn context(&self) -> &str;
    fn config(&self) -> &ManagerConfig;
    /// Called once with the members present at start; DeltaManager begins a state transfer.
    fn start(&mut self, members: &[MemberId], now: Millis) -> Vec<Outgoing>;
    /// False while a state transfer runs: requests should wait.
    fn is_ready(&self) -> bool;
    /// A new session (stored locally; replicated by `end_request`).
    fn create(&mut self, now: Millis) -> Session;
    fn find(&mut self, id: &SessionId, now: Millis) -> Lookup;
    /// Applies the request's changes and returns the messages that replicate them.
    fn end_request(&mut self, end: RequestEnd, now: Millis) -> Result<Vec<Outgoing>, SessionError>;
    fn handle_message(&mut self, from: MemberId, msg: SessionMessage, now: Millis) -> Received;
    fn member_added(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing>;
    fn member_removed(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing>;
    /// Sweeper and timers: expiry, state-transfer deadline, gap repair.
    fn handle_timeout(&mut self, now: Millis) -> Vec<Outgoing>;
    /// The local value of a session, without side effects (stats, tests, checkers).
    fn session(&self, id: &SessionId) -> Option<&Session>;
    fn session_ids(&self) -> Vec<SessionId>;
    fn stats(&self) -> ManagerStats;

    /// A synchronous replication of `id` was not acknowledged by every replica: its next
    /// change goes out as the whole session, so replicas that missed a version catch up
    /// without a gap.
    fn replication_failed(&mut self, id: &SessionId) {
        if let Some(e) = self.core_mut().store.entries.get_mut(id) {
            e.resync = true;
        }
    }

    fn core_mut(&mut self) -> &mut Core;
    /// Where a session lives as far as this node knows: `(primary, backups)`. `None` when
    /// unknown or when every member holds it (DeltaManager). For the admin API.
    fn placement(&self, _id: &SessionId) -> Option<(MemberId, Vec<MemberId>)> {
        None
    }

    /// Decodes and handles a payload from the channel.
    fn handle_payload(&mut self, from: MemberId, payload: &[u8], now: Millis) -> Received {
        match message::decode(payload) {
            Ok(env) if env.context == self.context() => self.handle_message(from, env.msg, now),
            Ok(env) => Received {
                out: vec![],
                ack: Err(format!(
                    "message for context {} sent to {}",
                    env.context,
                    self.context()
                )),
            },
            Err(e) => Received {
                out: vec![],
                ack: Err(e.to_string()),
            },
        }
    }
}

/// Builds the manager `config.manager` names.
pub fn build_manager(
    context: &str,
    local: MemberId,
    route: &str,
    config: ManagerConfig,
    rng: StdRng,
) -> Box<dyn SessionManager> {
    let core = Core::new(context, local, route, config, rng);
    match core.cfg.manager {
        ManagerKind::Delta => Box::new(crate::delta::DeltaManager::new(core)),
        ManagerKind::Backup => Box::new(crate::backup::BackupManager::new(core)),
    }
}

/// State and helpers common to both managers.
pub struct Core {
    pub ctx: String,
    pub local: MemberId,
    pub route: String,
    pub cfg: ManagerConfig,
    pub rng: StdRng,
    pub store: Store,
    /// Other members (never contains `local`).
    pub members: BTreeSet<MemberId>,
    pub stats: ManagerStats,
    pub counters: MessageCounters,
    pub next_request: u64,
}

impl Core {
    pub fn new(
        context: &str,
        local: MemberId,
        route: &str,
        cfg: ManagerConfig,
        rng: StdRng,
    ) -> Self {
        Core {
            ctx: context.to_owned(),
            local,
            route: route.to_owned(),
            cfg,
            rng,
            store: Store::default(),
            members: BTreeSet::new(),
            stats: ManagerStats::default(),
            counters: MessageCounters::default(),
            next_request: 1,
        }
    }

    pub fn sync(&self) -> bool {
        self.cfg.replication == ReplicationMode::Sync
    }

    /// Expiry, the same for both managers: a primary expires a session idle past its max
    /// inactive interval and tells everyone; a replica drops one idle past twice that
    /// (Tomcat's rule), silently, so a session in use elsewhere never expires here.
    pub fn sweep(&mut self, now: Millis) -> Vec<Outgoing> {
        let mut expired = Vec::new();
        let mut dropped = Vec::new();
        for (id, e) in &self.store.entries {
            if e.primary && e.session.idle_beyond(now, 1) {
                expired.push((id.clone(), e.session.version));
            } else if !e.primary && e.session.idle_beyond(now, 2) {
                dropped.push((id.clone(), e.session.version));
            }
        }
        let mut out = Vec::new();
        for (id, version) in expired {
            self.store.remove(&id, version, now);
            self.stats.sessions_expired += 1;
            let (to, sync) = (self.all_members(), self.sync());
            out.extend(self.msg(to, &SessionMessage::Expired { id, version }, sync));
        }
        for (id, version) in dropped {
            self.store.remove(&id, version, now);
            self.stats.sessions_expired += 1;
        }
        out
    }

    /// Encodes `msg` for `to` and counts it; `None` when there is nobody to send to.
    pub fn msg(&mut self, to: Vec<MemberId>, msg: &SessionMessage, sync: bool) -> Option<Outgoing> {
        if to.is_empty() {
            return None;
        }
        self.counters.sent[msg.kind().index()] += 1;
        Some(Outgoing {
            to,
            payload: message::encode(&self.ctx, msg),
            sync,
        })
    }

    /// Ack for a write this replica could not apply yet (it is fetching the session): an
    /// error in sync mode, so the write is not acknowledged to the client.
    pub fn unapplied_ack(&self) -> Result<(), String> {
        if self.sync() {
            Err("missing earlier versions of this session; fetching it".into())
        } else {
            Ok(())
        }
    }

    pub fn all_members(&self) -> Vec<MemberId> {
        self.members.iter().copied().collect()
    }

    pub fn count_received(&mut self, msg: &SessionMessage) {
        self.counters.received[msg.kind().index()] += 1;
    }

    pub fn create(&mut self, now: Millis) -> Session {
        let id = SessionId::generate(&mut self.rng);
        let s = Session::new(
            id.clone(),
            self.route.clone(),
            now,
            self.cfg.max_inactive_secs,
            self.local,
        );
        let mut e = Entry::replica(s.clone());
        e.primary = true;
        self.store.entries.insert(id, Box::new(e));
        self.stats.sessions_created += 1;
        s
    }

    /// ACCESSED is sent for an unchanged session once a quarter of its max inactive interval
    /// has passed since this node last replicated it, so replicas (which expire at 2x the
    /// interval) never expire a session in use, without a message per read.
    pub fn access_due(e: &Entry, now: Millis) -> bool {
        let quarter = u64::from(e.session.max_inactive_secs) * 250;
        // A session that never expires needs no keep-alive.
        quarter > 0 && now.saturating_sub(e.last_replicated) >= quarter
    }

    /// Validates `ops` against the limits and applies them to the stored session.
    pub fn apply_request(
        &mut self,
        id: &SessionId,
        ops: &[crate::session::DeltaOp],
        now: Millis,
    ) -> Result<(), SessionError> {
        let limits = self.cfg.limits.clone();
        let Some(e) = self.store.entries.get_mut(id) else {
            return Err(SessionError::NotFound(id.to_string()));
        };
        if let Err(err) = e.session.check_ops(ops, &limits) {
            self.stats.rejected_by_limits += 1;
            return Err(err);
        }
        e.session.apply_ops(ops);
        e.session.last_access = now;
        Ok(())
    }

    pub fn fill_stats(&self, mut s: ManagerStats) -> ManagerStats {
        self.counters.fill(&mut s);
        s.active_sessions = self.store.len() as u64;
        s
    }

    pub fn purge(&mut self, now: Millis) {
        let ttl = (u64::from(self.cfg.max_inactive_secs) * 2000).max(300_000);
        self.store.purge_tombstones(now, ttl);
    }
}
