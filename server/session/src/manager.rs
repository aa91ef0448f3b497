//! The `SessionManager` trait every manager implements, what goes in and out of it
//! ([`Outgoing`], [`Received`], [`Lookup`], [`RequestEnd`]) and its configuration
//! ([`ManagerConfig`]). It knows no manager: the factory (`factory.rs`) picks one, and the
//! state they share is `Core` (`core.rs`).
use crate::error::SessionError;
use crate::id::SessionId;
use crate::message::{self, SessionMessage};
use crate::persistent::PersistentConfig;
use crate::session::{DeltaOp, Millis, Seen, Session, SessionLimits};
use crate::stats::ManagerStats;
use serde::{Deserialize, Serialize};
use shoal_cluster::MemberId;
use shoal_store::StoreConfig;

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
    /// Memory in front of a store (Tomcat's PersistentManager, or its PersistentValve with
    /// `persistent.mode = "per-request"`): see `persistent/mod.rs`.
    Persistent,
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
    /// `manager = "persistent"`: Tomcat's PersistentManager attributes (the
    /// `[http.contexts.session.persistent]` table).
    pub persistent: PersistentConfig,
    /// `manager = "persistent"`: where sessions are kept (the `[http.contexts.session.store]`
    /// table, shoal-store's settings). Absent: SQLite at [`DEFAULT_STORE_PATH`].
    pub store: Option<StoreConfig>,
    /// `manager = "delta"` or `"backup"` with `store` set: the bounds of the write-behind
    /// queue that saves the sessions this node serves to the store (see
    /// `runtime/write_behind.rs`). Ignored without a store.
    pub write_behind: WriteBehindConfig,
    /// What a node does when it cannot see a majority of the expected members (a network
    /// partition): `majority` stops serving session requests there; `available` (the
    /// default) keeps serving on every side and
    /// reconciles on heal, reporting each conflict. See [`PartitionPolicy`].
    pub partition: Option<PartitionPolicy>,
    /// Asynchronous replication (DeltaManager, BackupManager): every response that read or
    /// changed a session carries a version token, and a request presenting one is served
    /// only from a copy at least that new (read-your-writes, monotonic reads and writes on
    /// any node; see `read_gate.rs`). Off: tokens are neither issued nor checked, and a
    /// request may see an older copy than its previous one saw (a sticky balancer then
    /// still loses nothing).
    pub read_your_writes: bool,
    /// How long a request whose node's copy is older than its token waits for the
    /// replication on its way before it fetches the session from its writer.
    pub read_wait_ms: u64,
}

/// Split-brain policy of a context (`partition = "majority" | "available"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionPolicy {
    /// A node that sees no majority of the expected members answers 503 (with the reason
    /// and `Retry-After`) to every request that presents or creates a session, and, once
    /// it sees a majority again, catches up before it serves: no acknowledged write is lost
    /// and no stale session is served across a partition and its heal.
    Majority,
    /// Every side keeps serving; on heal each session is reconciled by the conflict rule
    /// (higher `(version, stamp time, writer)` wins) and every session whose losing side had
    /// acknowledged writes is reported (event, counter, warn log).
    Available,
}

/// The write-behind queue of a replicated context with a store (the
/// `[http.contexts.session.write_behind]` table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriteBehindConfig {
    /// Most sessions waiting to be saved (one entry per session: later changes coalesce).
    /// A request that would add one more waits for room (backpressure, counted).
    pub max_sessions: usize,
    /// Most bytes (attribute sizes) waiting to be saved; same backpressure.
    pub max_bytes: usize,
    /// Longest wait between retries while the store fails (starts at 50 ms, doubles).
    pub retry_max_ms: u64,
    /// How long a change waits in the queue before it is written (Hazelcast's
    /// `write-delay-seconds`, Redisson's `writeBehindDelay`): changes to one session within
    /// this window coalesce into one store write, so a busy session costs the store at most
    /// one write per window. The lag, and what a kill -9 of every node can lose, grows by as
    /// much. 0 writes as soon as the writer is free.
    pub write_delay_ms: u64,
}

impl Default for WriteBehindConfig {
    fn default() -> Self {
        WriteBehindConfig {
            max_sessions: 10_000,
            max_bytes: 64 << 20,
            retry_max_ms: 2_000,
            write_delay_ms: 20,
        }
    }
}

/// The store of a persistent context that names none: SQLite in this file, relative to the
/// node's working directory (shoal has no data-directory setting yet). Nodes started from
/// one directory on one machine share it, which SQLite (WAL) allows.
pub const DEFAULT_STORE_PATH: &str = "data/sessions.db";

impl ManagerConfig {
    /// The store of a persistent context: the configured one, else SQLite at
    /// [`DEFAULT_STORE_PATH`].
    pub fn store_config(&self) -> StoreConfig {
        self.store.clone().unwrap_or_else(|| {
            StoreConfig::Sqlite(shoal_store::SqlConfig {
                path: Some(DEFAULT_STORE_PATH.into()),
                ..Default::default()
            })
        })
    }
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
            persistent: PersistentConfig::default(),
            store: None,
            write_behind: WriteBehindConfig::default(),
            partition: None,
            read_your_writes: true,
            read_wait_ms: 100,
        }
    }
}

impl ManagerConfig {
    /// The split-brain policy: as set, else `available` (for now: under `majority` a
    /// two-node cluster stops serving sessions at its first failure, and the start-up and
    /// rolling-restart behaviour of `majority` is not yet proven by the whole suite).
    pub fn partition_policy(&self) -> PartitionPolicy {
        self.partition.unwrap_or(PartitionPolicy::Available)
    }

    /// Version tokens are issued and checked: `read_your_writes` on a replicated context
    /// whose responses do not wait for the replicas (async). Not yet for a persistent
    /// context (its store's compare-and-set orders its writes; a store that lags is not
    /// covered).
    pub fn tokens(&self) -> bool {
        self.read_your_writes
            && self.replication == ReplicationMode::Async
            && self.manager != ManagerKind::Persistent
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

    /// Read-your-writes (see `read_gate.rs`): a copy of `id` at least as new as `seen` is on
    /// its way to this node (its writer is a live member that replicates it here), so a
    /// request may wait for it before fetching.
    fn expects_replication(&self, id: &SessionId, seen: &Seen) -> bool;

    /// Read-your-writes: asks for the whole session `id`, from the writer of `seen` if it
    /// is a live member, else from every member (the newest surviving copy wins).
    fn fetch_seen(&mut self, id: &SessionId, seen: &Seen, now: Millis) -> Vec<Outgoing>;

    /// Read-your-writes: every member the last [`Self::fetch_seen`] of `id` asked answered.
    fn fetch_settled(&self, id: &SessionId) -> bool;

    /// Read-your-writes: no reachable copy of `id` holds what a client saw (`seen`); the
    /// newest here is `have`. Counted (`ManagerStats::ryw_lost`) and logged with the id,
    /// unless the session was removed since.
    fn note_lost(&mut self, id: &SessionId, seen: &Seen, have: Option<u64>);

    /// A synchronous replication of `id` was not acknowledged by every replica: its next
    /// change goes out as the whole session, so replicas that missed a version catch up
    /// without a gap.
    fn replication_failed(&mut self, id: &SessionId);

    /// Split-brain protection (`partition = "majority"`): `true` when this node lost the
    /// majority of the expected members, `false` once it caught up after seeing them again.
    /// While partitioned a manager gives up its unacknowledged changes to the members it
    /// meets and waits for their state before [`Self::reconciling`] turns false.
    fn set_partitioned(&mut self, _partitioned: bool, _now: Millis) -> Vec<Outgoing> {
        Vec::new()
    }

    /// Some expected member is out of sight (`true`) or every one is seen again (`false`):
    /// changes made while apart are reported if a heal discards them
    /// (`ManagerStats::partition_conflicts`).
    fn set_apart(&mut self, _apart: bool) {}

    /// Still catching up with the members met since the majority came back (their digest
    /// or locations, and the sessions fetched from them). The runtime serves no session
    /// until it is false.
    fn reconciling(&self) -> bool {
        false
    }

    /// Where a session lives as far as this node knows: `(primary, backups)`. `None` when
    /// unknown or when every member holds it (DeltaManager). For the admin API.
    fn placement(&self, _id: &SessionId) -> Option<(MemberId, Vec<MemberId>)> {
        None
    }

    /// Write-behind cold start: accepts `session`, loaded from the context's store, if this
    /// manager neither holds one that ranks as high nor remembers removing it (any
    /// tombstone). The next change of an adopted session goes to the other members whole.
    /// True if adopted. Managers without a store refuse.
    #[doc(hidden)]
    fn adopt(&mut self, _session: Session, _now: Millis) -> bool {
        false
    }

    /// Write-behind: the sessions this node removed since the last call (invalidated, or
    /// expired as their primary), with the version they were removed at. Recorded only
    /// when the context has a store.
    #[doc(hidden)]
    fn take_removed(&mut self) -> Vec<(SessionId, u64)> {
        Vec::new()
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
