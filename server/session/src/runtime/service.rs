//! `SessionService`: the runtime around one context's sans-io manager. Requests call
//! `find`/`create` and, at the end, `end_request`, which sends the replication messages and
//! in sync mode waits for the replicas' acknowledgements. The registry's pump
//! (`registry.rs`) feeds it incoming messages, membership events and sweeper ticks.
use super::async_queue::AsyncQueue;
use super::link::{ClusterLink, Completion, SendResults};
use super::persistent::PersistentService;
use super::write_behind::WriteBehind;
use crate::error::SessionError;
use crate::id::SessionId;
use crate::manager::{
    Lookup, ManagerConfig, ManagerKind, Outgoing, PartitionPolicy, RequestEnd, SessionManager,
};
use crate::message::SessionMessage;
use crate::quorum::Quorum;
use crate::read_gate::{ReadGate, ReadStep};
use crate::session::{Millis, Seen, Session};
use crate::stats::{ManagerStats, RywTimes};
use crate::token::TokenKey;
use futures::future::BoxFuture;
use shoal_cluster::MemberId;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, Notify};

/// Wall-clock milliseconds: session times are compared across nodes.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What `dispatch` did: synchronous sends to await, and whether the asynchronous queue is
/// over its bound.
#[derive(Default)]
struct Dispatched {
    sync: Vec<BoxFuture<'static, SendResults>>,
    full: bool,
}

pub struct SessionService {
    context: String,
    /// This node's name, cached: every response names it.
    route: String,
    config: ManagerConfig,
    manager: Mutex<Box<dyn SessionManager>>,
    link: Arc<dyn ClusterLink>,
    /// Asynchronous sends, in order, bounded in bytes (see `dispatch`).
    ordered: AsyncQueue,
    /// Woken after every incoming message, for requests waiting on a fetched value.
    changed: Notify,
    /// Read-your-writes: requests waiting for a newer copy of a session, woken by the
    /// messages about it (one shard per session hash, see [`Self::shard`]): a waiter costs
    /// no CPU until its session changes.
    ryw_wake: [Notify; WAKE_SHARDS],
    ryw_times: RywTimes,
    ryw_waits: AtomicU64,
    ryw_bad_tokens: AtomicU64,
    /// The registry's version-token key (`None`: tokens off).
    token_key: Arc<std::sync::RwLock<Option<TokenKey>>>,
    ready: watch::Sender<bool>,
    replicated_requests: AtomicU64,
    replication_us: AtomicU64,
    replication_failures: AtomicU64,
    filtered_requests: AtomicU64,
    /// `manager = "persistent"`: where the context's sessions live. Its requests go there;
    /// `manager` then holds none and only answers the cluster (state transfers, views).
    persistent: Option<Arc<PersistentService>>,
    /// A replicated context with a store: the changes this node serves are saved there
    /// behind the requests (see `write_behind.rs`), and a miss is looked up there.
    write_behind: Option<Arc<WriteBehind>>,
    /// The node's view of the expected members (split-brain protection); `None`: never
    /// partitioned (a service built outside a registry).
    quorum: Option<Arc<Mutex<Quorum>>>,
    /// `partition = "majority"`: this node lost the majority and has not caught up since
    /// (see [`Self::partition_gate`]).
    partitioned: AtomicBool,
    /// Some expected member is out of sight (told to the manager, see `set_apart`).
    apart: AtomicBool,
    /// While partitioned: when the majority came back (ms since the epoch, 0: not back).
    majority_back: AtomicU64,
    /// This node has seen a majority since it started: only then is losing it a partition to
    /// catch up from. A node starting before the others (no majority yet) made no change to
    /// give up and refuses sessions until it sees a majority, then serves at once (a late
    /// joiner still waits for its state transfer: the manager's readiness).
    had_majority: AtomicBool,
}

/// Shards of the read-your-writes wake-ups (a message wakes the waiters of one shard):
/// enough that a wake-up rarely reaches a request waiting on another session.
const WAKE_SHARDS: usize = 1024;

/// A node back from a partition serves again once it caught up with every expected member,
/// or, if some stay out of sight (crashed, still cut off), with those it sees once this long
/// passed since the majority came back: a member it does not see yet may still be
/// reconnecting, and acknowledges writes without it until then.
const CATCH_UP_GRACE_MS: u64 = 5_000;

impl SessionService {
    /// Must run inside a tokio runtime (spawns the ordered sender task).
    pub fn new(manager: Box<dyn SessionManager>, link: Arc<dyn ClusterLink>) -> Self {
        let ready = watch::Sender::new(manager.is_ready());
        SessionService {
            ordered: AsyncQueue::new(manager.config().async_queue_bytes, link.clone()),
            context: manager.context().to_owned(),
            route: link.local().name,
            config: manager.config().clone(),
            manager: Mutex::new(manager),
            link,
            changed: Notify::new(),
            ryw_wake: std::array::from_fn(|_| Notify::new()),
            ryw_times: RywTimes::default(),
            ryw_waits: AtomicU64::new(0),
            ryw_bad_tokens: AtomicU64::new(0),
            token_key: Arc::default(),
            ready,
            replicated_requests: AtomicU64::new(0),
            replication_us: AtomicU64::new(0),
            replication_failures: AtomicU64::new(0),
            filtered_requests: AtomicU64::new(0),
            persistent: None,
            write_behind: None,
            quorum: None,
            partitioned: AtomicBool::new(false),
            apart: AtomicBool::new(false),
            majority_back: AtomicU64::new(0),
            had_majority: AtomicBool::new(false),
        }
    }

    /// The version-token key, shared by the node's contexts.
    pub(crate) fn with_token_key(mut self, key: Arc<std::sync::RwLock<Option<TokenKey>>>) -> Self {
        self.token_key = key;
        self
    }

    /// Read-your-writes: what a client's version token for session `id` says it saw;
    /// `None` when tokens are off here or the token does not verify (forged, truncated,
    /// another session's or cluster's: counted, and the request is served without it).
    pub fn check_token(&self, id: &SessionId, token: &str) -> Option<Seen> {
        if !self.config.tokens() {
            return None;
        }
        let key = self.token_key.read().unwrap_or_else(|p| p.into_inner());
        let seen = key.as_ref()?.check(id, token);
        if seen.is_none() {
            self.ryw_bad_tokens.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(context = %self.context, session = %id, "version token refused; serving without it");
        }
        seen
    }

    /// Read-your-writes: the version token naming `seen` for session `id`, when tokens are
    /// on here.
    pub fn issue_token(&self, id: &SessionId, seen: &Seen) -> Option<String> {
        if !self.config.tokens() {
            return None;
        }
        let key = self.token_key.read().unwrap_or_else(|p| p.into_inner());
        key.as_ref().map(|k| k.issue(id, seen))
    }

    /// The node's view of the expected members, shared by its contexts.
    pub(crate) fn with_quorum(mut self, quorum: Arc<Mutex<Quorum>>) -> Self {
        self.quorum = Some(quorum);
        self
    }

    /// Split-brain protection applies: `partition = "majority"` on a replicated context
    /// (a persistent context's store is its single source of truth).
    fn guards_majority(&self) -> bool {
        self.config.partition_policy() == PartitionPolicy::Majority
            && self.config.manager != ManagerKind::Persistent
            && self.quorum.is_some()
    }

    /// The one question the request path asks before it serves a session (one it presents,
    /// or one it created): `Err` (503 with the reason and `Retry-After`) while this node
    /// sees no majority of the expected members, and after the majority comes back until
    /// it caught up with the members it met (their state fetched, its own unacknowledged
    /// changes given up), so it serves no stale session after a heal.
    pub fn partition_gate(&self) -> Result<(), SessionError> {
        if !self.guards_majority() {
            return Ok(());
        }
        let Some(status) = self.quorum_now() else {
            return Ok(());
        };
        let why = if !status.has_majority() {
            format!("partitioned: it {status}")
        } else if self.partitioned.load(Ordering::Acquire) {
            format!("catching up with the cluster after a partition ({status})")
        } else {
            return Ok(());
        };
        Err(SessionError::NoQuorum {
            node: self.route.clone(),
            context: self.context.clone(),
            why,
        })
    }

    /// The quorum with the channel's view of now as the members seen (it runs ahead of the
    /// membership events the pump feeds the quorum with).
    fn quorum_now(&self) -> Option<crate::quorum::QuorumStatus> {
        let q = self.quorum.as_ref()?;
        let live: Vec<std::net::SocketAddr> = self.link.members().iter().map(|m| m.addr).collect();
        let status = q
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .status_with_live(live.into_iter());
        Some(status)
    }

    /// Why this context serves no session now (readiness and health), if it does not.
    pub fn partition_state(&self) -> Option<String> {
        self.partition_gate().err().map(|e| e.to_string())
    }

    /// Follows the quorum: partitioned when the majority is lost; serving again once it is
    /// back and the manager caught up. Called by the pump after membership changes, ticks
    /// and (while partitioned) messages.
    pub(crate) fn update_partition(&self) {
        let status = match &self.quorum {
            Some(q) => q.lock().unwrap_or_else(|p| p.into_inner()).status(),
            None => return,
        };
        let apart = status.enforced && status.seen < status.expected;
        if self.apart.swap(apart, Ordering::AcqRel) != apart {
            self.lock().set_apart(apart);
        }
        if !self.guards_majority() {
            return;
        }
        let was = self.partitioned.load(Ordering::Acquire);
        if !status.has_majority() {
            self.majority_back.store(0, Ordering::Release);
        }
        if status.has_majority() {
            self.had_majority.store(true, Ordering::Release);
        }
        if !status.has_majority() && !was && self.had_majority.load(Ordering::Acquire) {
            self.run(|m| m.set_partitioned(true, now_ms()));
            self.partitioned.store(true, Ordering::Release);
            tracing::warn!(context = %self.context, node = %self.route,
                "partitioned: this node {status}; it serves no session until it sees a majority again and caught up (partition = \"majority\")");
        } else if status.has_majority() && was {
            let now = now_ms();
            let back = match self.majority_back.load(Ordering::Acquire) {
                0 => {
                    self.majority_back.store(now, Ordering::Release);
                    now
                }
                t => t,
            };
            let everyone = status.seen >= status.expected;
            let caught_up = (everyone || now >= back + CATCH_UP_GRACE_MS) && {
                let m = self.lock();
                !m.reconciling() && m.is_ready()
            };
            if caught_up {
                self.run(|m| m.set_partitioned(false, now_ms()));
                self.partitioned.store(false, Ordering::Release);
                tracing::info!(context = %self.context, node = %self.route,
                    "caught up after a partition: this node {status}; serving sessions again");
            }
        }
    }

    /// The context keeps its sessions in `persistent` (a persistent context).
    pub(crate) fn with_persistent(mut self, persistent: Arc<PersistentService>) -> Self {
        self.persistent = Some(persistent);
        self
    }

    /// The context saves what it serves to a store, behind the requests.
    pub(crate) fn with_write_behind(mut self, wb: Arc<WriteBehind>) -> Self {
        self.write_behind = Some(wb);
        self
    }

    /// The write-behind queue of a replicated context with a store (stats, flush).
    pub fn write_behind(&self) -> Option<&Arc<WriteBehind>> {
        self.write_behind.as_ref()
    }

    /// Enqueues the removals the manager made (invalidation, expiry as primary). True: the
    /// write-behind queue is over a bound.
    fn enqueue_removed(&self, m: &mut dyn SessionManager) -> bool {
        let Some(wb) = &self.write_behind else {
            return false;
        };
        let mut full = false;
        for (id, version) in m.take_removed() {
            full |= wb.remove(id, version);
        }
        full
    }

    /// The persistent runtime of a persistent context (its requests go there).
    pub fn persistent(&self) -> Option<&Arc<PersistentService>> {
        self.persistent.as_ref()
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The route of this node (suffix of session ids).
    pub fn route(&self) -> String {
        self.route.clone()
    }

    pub fn link(&self) -> &Arc<dyn ClusterLink> {
        &self.link
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn SessionManager>> {
        self.manager.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read access to the manager (stats, tests).
    pub fn with_manager<R>(&self, f: impl FnOnce(&dyn SessionManager) -> R) -> R {
        f(self.lock().as_ref())
    }

    /// The state transfer finished and, for a persistent context, the store check passed.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow() && self.persistent.as_ref().is_none_or(|p| p.is_checked())
    }

    /// Waits until the state transfer finished (and the store check passed); false on
    /// timeout or a failed store check.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        let mut rx = self.ready.subscribe();
        let transferred = tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        match &self.persistent {
            Some(p) if transferred => p
                .wait_checked(timeout.saturating_sub(started.elapsed()))
                .await
                .is_ok(),
            _ => transferred,
        }
    }

    /// Sends while the manager lock is held, so messages leave in the order they were made.
    /// Asynchronous sends go to the ordered sender task (their futures are polled one after
    /// the other, in call order, whether the link enqueues at call time or at first poll);
    /// the futures of synchronous sends are returned to be awaited. `Dispatched::full`: the
    /// asynchronous queue is over its bound, a request should wait for room.
    fn dispatch(&self, out: Vec<Outgoing>) -> Dispatched {
        let mut d = Dispatched::default();
        for o in out {
            let bytes = o.payload.len();
            let fut = self.link.send(&o.to, o.payload, o.sync);
            if o.sync {
                d.sync.push(fut);
            } else {
                d.full |= self.ordered.push(bytes, fut);
            }
        }
        d
    }

    /// Synchronous sends nobody waits for (transfer, repair, re-replication).
    fn background(sync: Vec<BoxFuture<'static, SendResults>>) {
        for fut in sync {
            tokio::spawn(async move {
                for (to, r) in fut.await {
                    if let Err(e) = r {
                        tracing::debug!(member = %to, "session message not acknowledged: {e}");
                    }
                }
            });
        }
    }

    fn run(&self, f: impl FnOnce(&mut dyn SessionManager) -> Vec<Outgoing>) {
        let mut m = self.lock();
        let out = f(m.as_mut());
        // Never waits here (the pump runs this): the requests feel the backpressure.
        let _ = self.enqueue_removed(m.as_mut());
        Self::background(self.dispatch(out).sync);
        let ready = m.is_ready();
        drop(m);
        self.ready
            .send_if_modified(|r| std::mem::replace(r, ready) != ready);
    }

    pub fn create(&self) -> Session {
        self.lock().create(now_ms())
    }

    /// The session, fetching its value from another node if needed (BackupManager).
    pub async fn find(&self, id: &SessionId) -> Option<Session> {
        let deadline = Instant::now() + Duration::from_millis(self.config.fetch_timeout_ms);
        loop {
            // The guard must not live across the await below (the future must be Send).
            let lookup = {
                let mut m = self.lock();
                match m.find(id, now_ms()) {
                    Lookup::Pending(out) => {
                        Self::background(self.dispatch(out).sync);
                        None
                    }
                    other => Some(other),
                }
            };
            match lookup {
                Some(Lookup::Found(s)) => return Some(s),
                Some(_) => return self.load_from_store(id).await,
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(20)), self.changed.notified())
                    .await;
        }
    }

    /// Read-your-writes (see `read_gate.rs`): the session, at least as new as `seen` (what
    /// the client's version token says it saw) when a copy that new is reachable; else the
    /// newest copy (the loss is counted and logged). Without `seen`, or with tokens off,
    /// [`Self::find`].
    pub async fn find_seen(&self, id: &SessionId, seen: Option<Seen>) -> Option<Session> {
        let Some(seen) = seen.filter(|_| self.config.tokens()) else {
            return self.find(id).await;
        };
        let started = Instant::now();
        let (wait, fetch) = (self.config.read_wait_ms, self.config.fetch_timeout_ms);
        let mut gate = ReadGate::new(id.clone(), seen, now_ms(), wait, fetch);
        let wake = &self.ryw_wake[Self::shard(id)];
        // Bounded: each round waits for a message or the gate's deadline, and the gate
        // ends at its last deadline; the count only guards against a clock gone wrong.
        for _ in 0..100_000 {
            // Registered before looking, so a message applied in between still wakes it.
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = {
                let mut m = self.lock();
                let mut step = gate.poll(m.as_mut(), now_ms());
                if let ReadStep::Wait { out, .. } = &mut step {
                    Self::background(self.dispatch(std::mem::take(out)).sync);
                }
                step
            };
            let until = match step {
                ReadStep::Serve(s) => {
                    self.note_gate(&gate, started);
                    return Some(s);
                }
                ReadStep::Lost(s) => {
                    self.note_gate(&gate, started);
                    return match s {
                        Some(s) => Some(s),
                        None => self.load_from_store(id).await,
                    };
                }
                ReadStep::Wait { until, .. } => until,
            };
            let left = Duration::from_millis(until.saturating_sub(now_ms()).max(1));
            let _ = tokio::time::timeout(left, notified).await;
        }
        self.find(id).await
    }

    /// Counts a request the read gate held.
    fn note_gate(&self, gate: &ReadGate, started: Instant) {
        if gate.waited() {
            self.ryw_waits.fetch_add(1, Ordering::Relaxed);
            self.ryw_times.record(started.elapsed());
        }
    }

    /// What a client sees of session `id` now (for its next version token).
    pub fn seen(&self, id: &SessionId) -> Option<Seen> {
        self.lock().session(id).map(Seen::of)
    }

    /// The wake-up shard of session `id`.
    fn shard(id: &SessionId) -> usize {
        let h = id.as_str().bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        h % WAKE_SHARDS
    }

    /// Wakes the requests waiting on `id`, or on any session when `None`.
    fn wake(&self, id: Option<&SessionId>) {
        match id {
            Some(id) => self.ryw_wake[Self::shard(id)].notify_waiters(),
            None => self.ryw_wake.iter().for_each(Notify::notify_waiters),
        }
    }

    /// Cold start (write-behind): a session no member holds is loaded from the store and
    /// adopted by the manager, unless it removed that id (tombstone) or holds a newer one.
    async fn load_from_store(&self, id: &SessionId) -> Option<Session> {
        let wb = self.write_behind.as_ref()?;
        let loaded = match wb.load(id, now_ms()).await {
            Ok(s) => s?,
            Err(e) => {
                tracing::warn!(context = %self.context, session = %id, "store load: {e}");
                return None;
            }
        };
        let mut m = self.lock();
        if m.adopt(loaded, now_ms()) {
            wb.note_adopted();
        }
        match m.find(id, now_ms()) {
            Lookup::Found(s) => Some(s),
            _ => None,
        }
    }

    /// Applies the request's changes, replicates them and, for sync messages, waits until
    /// every live replica processed them.
    pub async fn end_request(&self, end: RequestEnd) -> Result<(), SessionError> {
        if end.id.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let id = end.id.clone();
        let (Dispatched { sync: waits, full }, store_full) = {
            let mut m = self.lock();
            // Only a context with a store needs to know what the request changed.
            let before = self
                .write_behind
                .as_ref()
                .and(id.as_ref())
                .and_then(|i| m.session(i))
                .map(|s| (s.version, s.is_new));
            let (invalidate, accessed) = (end.invalidate, end.accessed);
            let out = m.end_request(end, now_ms())?;
            let mut store_full = false;
            if let (Some(wb), Some(i)) = (&self.write_behind, &id) {
                store_full |= self.enqueue_removed(m.as_mut());
                if !invalidate {
                    if let Some(s) = m.session(i) {
                        let changed = before.is_none_or(|(v, new)| new || v != s.version);
                        if changed {
                            store_full |= wb.save(s.clone());
                        } else if accessed {
                            store_full |= wb.touch(i.clone(), s.version, s.last_access);
                        }
                    }
                }
            }
            (self.dispatch(out), store_full)
        };
        if full {
            self.ordered.wait_for_room().await;
        }
        if store_full {
            if let Some(wb) = &self.write_behind {
                wb.wait_for_room().await;
            }
        }
        let majority = self.guards_majority();
        if waits.is_empty() && !majority {
            return Ok(());
        }
        let replicated = !waits.is_empty();
        let mut failed = Vec::new();
        for fut in waits {
            for (to, r) in fut.await {
                if let Err(e) = r {
                    failed.push((to, e));
                }
            }
        }

        // `partition = "majority"`: members that vanished during the send count as done
        // (below), but if that leaves this node without a majority, nobody may hold this
        // write: not acknowledged (and given up at the heal, see `Entry::unacked`).
        if majority && self.quorum_now().is_some_and(|q| !q.has_majority()) {
            let why = self
                .partition_gate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            failed.push((self.link.local().id, why));
        }
        // A member that is gone no longer counts: its copy went with it. Not under
        // `partition = "majority"`: a member that vanished during the send may be alive on
        // the other side of a partition, holding an older copy it still serves (an old
        // BackupManager primary that missed the new location), so every replica in the
        // view at send time must acknowledge.
        if !failed.is_empty() && !majority {
            let mut live: Vec<MemberId> = self.link.members().iter().map(|m| m.id).collect();
            live.push(self.link.local().id);
            failed.retain(|(to, _)| live.contains(to));
        }
        if replicated {
            self.replicated_requests.fetch_add(1, Ordering::Relaxed);
            self.replication_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        if failed.is_empty() {
            return Ok(());
        }
        self.replication_failures.fetch_add(1, Ordering::Relaxed);
        if let Some(id) = &id {
            self.lock().replication_failed(id);
        }
        let names: Vec<String> = failed.iter().map(|(m, _)| format!("{m:?}")).collect();
        Err(SessionError::ReplicationFailed {
            members: names.join(","),
            reason: failed[0].1.clone(),
        })
    }

    /// Counts a request the ReplicationValve's URL filter matched.
    pub fn note_filtered(&self) {
        self.filtered_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> ManagerStats {
        let mut s = self.lock().stats();
        s.replicated_requests = self.replicated_requests.load(Ordering::Relaxed);
        s.replication_time_ms_total = self.replication_us.load(Ordering::Relaxed) / 1000;
        s.replication_failures = self.replication_failures.load(Ordering::Relaxed);
        s.filtered_requests = self.filtered_requests.load(Ordering::Relaxed);
        s.async_queue_bytes = self.ordered.bytes() as u64;
        s.async_queue_full = self.ordered.full();
        s.ryw_waits = self.ryw_waits.load(Ordering::Relaxed);
        s.ryw_bad_tokens = self.ryw_bad_tokens.load(Ordering::Relaxed);
        self.ryw_times.fill(&mut s);
        if let Some(p) = &self.persistent {
            let st = p.status();
            s.active_sessions = st.stats.in_memory;
            s.conflicts += st.stats.conflicts;
            s.sessions_expired += st.stats.expired + st.stats.store_expired;
            s.store = Some(st);
        }
        s.write_behind = self.write_behind.as_ref().map(|w| w.stats());
        s
    }

    pub(crate) fn start(&self, members: &[MemberId]) {
        self.run(|m| m.start(members, now_ms()));
    }

    pub(crate) fn on_message(&self, from: MemberId, msg: SessionMessage, done: Option<Completion>) {
        if let SessionMessage::Moved {
            old_id,
            new_id,
            version,
        } = msg
        {
            if let Some(p) = &self.persistent {
                p.on_moved(old_id, new_id, version);
            }
            if let Some(done) = done {
                done.complete(Ok(()));
            }
            return;
        }
        let about = msg.session_id().cloned();
        let mut m = self.lock();
        let r = m.handle_message(from, msg, now_ms());
        Self::background(self.dispatch(r.out).sync);
        let ready = m.is_ready();
        drop(m);
        self.ready
            .send_if_modified(|x| std::mem::replace(x, ready) != ready);
        if let Some(done) = done {
            done.complete(r.ack);
        }
        if self.partitioned.load(Ordering::Relaxed) {
            self.update_partition();
        }
        self.changed.notify_waiters();
        self.wake(about.as_ref());
    }

    pub(crate) fn on_member(&self, member: MemberId, added: bool) {
        let now = now_ms();
        self.run(|m| {
            if added {
                m.member_added(member, now)
            } else {
                m.member_removed(member, now)
            }
        });
        self.changed.notify_waiters();
        self.wake(None);
    }

    pub(crate) fn tick(&self) {
        self.run(|m| m.handle_timeout(now_ms()));
        self.update_partition();
        self.changed.notify_waiters();
    }
}
