//! `WriteBehind`: the store behind a replicated context (`manager = "delta"` or `"backup"`
//! with `store` set), so that stopping or killing every node loses at most the measured lag.
//!
//! - **Enqueue** (hot path, `SessionService::end_request` and the sweeper tick): the node
//!   that served a request enqueues the session's new value (or, for a read, a touch of its
//!   last access; for an invalidation or a primary's expiry, its removal) under one short
//!   lock. One entry per session: later changes coalesce into it by the managers' rank
//!   (`(version, stamp)`; a removal at `v` hides versions `<= v`), and the entry keeps the
//!   time of its *first* enqueue, so a session written continuously still reaches the
//!   store within the lag. No store I/O in the request.
//! - **Bounds**: `write_behind.max_sessions` entries and `max_bytes` attribute bytes. A
//!   request that finds the queue over a bound waits for room (backpressure, counted in
//!   `full_waits`); nothing is dropped.
//! - **Writer**: one background task, oldest entry first, each entry once it is
//!   `write_delay_ms` old (changes within that window coalesce: a busy session costs at most
//!   one store write per window; a flush writes at once). When the oldest entry is due, the
//!   writer takes it with every entry due within the next quarter of the delay (up to
//!   [`WRITE_BATCH`]) and writes them concurrently: one wake-up per batch instead of one per
//!   entry, and on a pipelining store (Redis) one round trip for the batch. Saves are compare-and-set on the
//!   row version (`Expect::Version(prev stored)` or `Absent`); the row version of a session
//!   at version `v` is `v + 1` (a new session is version 0, and a row version is never 0).
//!   On a conflict it loads the row and retries only if its own session ranks higher; it
//!   never overwrites a newer row, and never re-creates a row removed under it (another
//!   node's invalidation). While the store fails the entry goes back (merged with anything
//!   newer) and the task retries with backoff (50 ms doubling to `retry_max_ms`).
//! - **Lag** = the age of the oldest change not yet in the store (queued or being written):
//!   `WriteBehindStats::lag_ms`. 0 when the queue is empty. In sync mode, once the lag has
//!   passed after an acknowledged request, its change survives the loss of every node.
//! - **Cold start rule** (documented simplification): any node whose context has a store
//!   loads a session from the store on a miss (`SessionService::find`), unless its manager
//!   remembers removing that id (a tombstone) or the row is expired, and adopts it into the
//!   manager if it ranks higher than what it holds; its next change goes to the other
//!   members whole. So a cluster that starts with no member holding state serves its
//!   sessions from the store, and a running cluster pays one store read per unknown id.
//! - **Stop**: [`WriteBehind::flush`] waits (with a deadline) until the queue is empty.
//!
//! Data is `persistent::record`'s stored form, so a persistent context and a replicated one
//! read the same rows.
use crate::id::SessionId;
use crate::manager::WriteBehindConfig;
use crate::persistent::record::{self, Record};
use crate::session::{Millis, Session};
use crate::stats::WriteBehindStats;
use shoal_store::{Cas, Expect, Store, StoredSession};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Entries written concurrently at most.
pub(crate) const WRITE_BATCH: usize = 32;

#[derive(Clone, Debug)]
enum Op {
    Save(Box<Session>),
    /// The session was read, not changed: record its last access at this version.
    Touch {
        version: u64,
        last_access: Millis,
    },
    /// Removed at `version` (hides versions `<= version`).
    Remove(u64),
}

impl Op {
    fn bytes(&self) -> usize {
        match self {
            Op::Save(s) => s.attribute_bytes() + 64,
            _ => 64,
        }
    }

    /// The coalesced op of `old` then `new`: the later state by rank.
    fn merge(old: Op, new: Op) -> Op {
        match (old, new) {
            (Op::Save(a), Op::Save(b)) => {
                let (mut win, lose) = if b.rank() >= a.rank() { (b, a) } else { (a, b) };
                win.last_access = win.last_access.max(lose.last_access);
                Op::Save(win)
            }
            (Op::Save(mut a), Op::Touch { last_access, .. })
            | (Op::Touch { last_access, .. }, Op::Save(mut a)) => {
                a.last_access = a.last_access.max(last_access);
                Op::Save(a)
            }
            (Op::Save(s), Op::Remove(r)) | (Op::Remove(r), Op::Save(s)) => {
                if s.version > r {
                    Op::Save(s)
                } else {
                    Op::Remove(r)
                }
            }
            (
                Op::Touch {
                    version: v1,
                    last_access: a1,
                },
                Op::Touch {
                    version: v2,
                    last_access: a2,
                },
            ) => Op::Touch {
                version: v1.max(v2),
                last_access: a1.max(a2),
            },
            (
                Op::Touch {
                    version,
                    last_access,
                },
                Op::Remove(r),
            )
            | (
                Op::Remove(r),
                Op::Touch {
                    version,
                    last_access,
                },
            ) => {
                if version > r {
                    Op::Touch {
                        version,
                        last_access,
                    }
                } else {
                    Op::Remove(r)
                }
            }
            (Op::Remove(a), Op::Remove(b)) => Op::Remove(a.max(b)),
        }
    }
}

/// The row version of a session at `version` (rows start at 1, sessions at 0).
fn row_version(version: u64) -> u64 {
    version.saturating_add(1)
}

struct Pending {
    op: Op,
    seq: u64,
    since: Instant,
    bytes: usize,
}

#[derive(Default)]
struct State {
    pending: HashMap<SessionId, Pending>,
    /// seq -> id, oldest first (a coalesced entry keeps its first seq).
    order: BTreeMap<u64, SessionId>,
    next_seq: u64,
    bytes: usize,
    /// The entries being written: first enqueue time per id.
    inflight: HashMap<SessionId, Instant>,
    last_error: Option<String>,
    /// The last store operation failed and none has succeeded since: the store counts as
    /// down (health and the admin API show it degraded).
    failing: bool,
}

impl State {
    /// Inserts or coalesces; `seq`/`since` of an older entry win.
    fn put(&mut self, id: SessionId, op: Op, seq: u64, since: Instant) {
        let (op, seq, since) = match self.pending.remove(&id) {
            Some(old) => {
                self.bytes -= old.bytes;
                self.order.remove(&old.seq);
                let (s, t) = if old.seq <= seq {
                    (old.seq, old.since)
                } else {
                    (seq, since)
                };
                (Op::merge(old.op, op), s, t)
            }
            None => (op, seq, since),
        };
        let bytes = op.bytes();
        self.bytes += bytes;
        self.order.insert(seq, id.clone());
        self.pending.insert(
            id,
            Pending {
                op,
                seq,
                since,
                bytes,
            },
        );
    }

    fn pop(&mut self) -> Option<(SessionId, Pending)> {
        let (_, id) = self.order.pop_first()?;
        let p = self.pending.remove(&id)?;
        self.bytes -= p.bytes;
        self.inflight.insert(id.clone(), p.since);
        Some((id, p))
    }

    /// First enqueue time of the entry the writer takes next.
    fn first_since(&self) -> Option<Instant> {
        let (_, id) = self.order.first_key_value()?;
        self.pending.get(id).map(|p| p.since)
    }

    fn len(&self) -> usize {
        self.pending.len() + self.inflight.len()
    }

    fn oldest(&self) -> Option<Instant> {
        let queued = self
            .order
            .first_key_value()
            .and_then(|(_, id)| self.pending.get(id))
            .map(|p| p.since);
        match (queued, self.inflight.values().min().copied()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    touches: AtomicU64,
    removes: AtomicU64,
    conflicts: AtomicU64,
    stale_skipped: AtomicU64,
    errors: AtomicU64,
    full_waits: AtomicU64,
    loads: AtomicU64,
    adopted: AtomicU64,
}

struct Inner {
    app: String,
    route: String,
    store: Arc<dyn Store>,
    cfg: WriteBehindConfig,
    state: Mutex<State>,
    /// Wakes the writer (notify_one keeps a permit: no lost wake-up).
    work: Notify,
    /// Woken after every write: requests waiting for room, flushes.
    progress: Notify,
    /// The store check passed (the writer writes only after it).
    checked: tokio::sync::watch::Sender<bool>,
    /// Flushes waiting: the writer ignores `write_delay_ms` while any is.
    flushers: std::sync::atomic::AtomicUsize,
    /// Wakes a writer waiting out `write_delay_ms` when a flush starts.
    flush_now: Notify,
    n: Counters,
    latency: crate::stats::LatencyCounter,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn over(&self, st: &State) -> bool {
        st.pending.len() > self.cfg.max_sessions || st.bytes > self.cfg.max_bytes
    }
}

/// One replicated context's write-behind queue and its writer task.
pub struct WriteBehind {
    inner: Arc<Inner>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind")
            .field("app", &self.inner.app)
            .field("store", &self.inner.store.describe())
            .finish()
    }
}

impl WriteBehind {
    /// Starts the writer task (it checks the store first, retrying). Must run inside a tokio
    /// runtime.
    pub(crate) fn start(
        app: &str,
        route: &str,
        store: Arc<dyn Store>,
        cfg: WriteBehindConfig,
    ) -> Arc<Self> {
        let inner = Arc::new(Inner {
            app: app.to_owned(),
            route: route.to_owned(),
            store,
            cfg,
            state: Mutex::new(State::default()),
            work: Notify::new(),
            progress: Notify::new(),
            checked: tokio::sync::watch::Sender::new(false),
            flushers: Default::default(),
            flush_now: Notify::new(),
            n: Counters::default(),
            latency: Default::default(),
        });
        let task = tokio::spawn(writer(inner.clone()));
        Arc::new(WriteBehind {
            inner,
            task: Mutex::new(Some(task)),
        })
    }

    fn enqueue(&self, id: SessionId, op: Op) -> bool {
        let mut st = self.inner.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.put(id, op, seq, Instant::now());
        let full = self.inner.over(&st);
        drop(st);
        self.inner.work.notify_one();
        full
    }

    /// A request changed (or created) `session`: save it. True: the queue is over a bound,
    /// the request should [`Self::wait_for_room`].
    pub(crate) fn save(&self, session: Session) -> bool {
        self.enqueue(session.id.clone(), Op::Save(Box::new(session)))
    }

    /// A request read `id` at `version` without changing it.
    pub(crate) fn touch(&self, id: SessionId, version: u64, last_access: Millis) -> bool {
        self.enqueue(
            id,
            Op::Touch {
                version,
                last_access,
            },
        )
    }

    /// `id` was removed here at `version` (invalidation, or expiry as its primary).
    pub(crate) fn remove(&self, id: SessionId, version: u64) -> bool {
        self.enqueue(id, Op::Remove(version))
    }

    /// Waits until the queue is within its bounds (counted in `full_waits`).
    pub(crate) async fn wait_for_room(&self) {
        self.inner.n.full_waits.fetch_add(1, Ordering::Relaxed);
        loop {
            let notified = self.inner.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.inner.over(&self.inner.lock()) {
                return;
            }
            notified.await;
        }
    }

    /// Waits for the store check (the writer retries it with backoff): on `timeout`, the
    /// last error (naming the store, and the table or column for a schema problem).
    pub async fn wait_checked(&self, timeout: Duration) -> Result<(), String> {
        let mut rx = self.inner.checked.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            return Ok(());
        }
        let last = self.inner.lock().last_error.clone();
        Err(format!(
            "write-behind store {}: not checked after {} ms: {}",
            self.inner.store.describe(),
            timeout.as_millis(),
            last.as_deref().unwrap_or("no answer")
        ))
    }

    /// Waits until every queued change is in the store, or `deadline` passes (false).
    pub async fn flush(&self, deadline: Duration) -> bool {
        /// Counts this flush while it runs (the writer skips its delay meanwhile).
        struct Flushing<'a>(&'a Inner);
        impl Drop for Flushing<'_> {
            fn drop(&mut self) {
                self.0.flushers.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.inner.flushers.fetch_add(1, Ordering::SeqCst);
        let _flushing = Flushing(&self.inner);
        self.inner.flush_now.notify_one();
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.inner.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.lock().len() == 0 {
                return true;
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                return self.inner.lock().len() == 0;
            }
        }
    }

    /// Loads `id` from the store for a cold start: `None` when absent, expired, moved, or
    /// unreadable (logged).
    pub(crate) async fn load(
        &self,
        id: &SessionId,
        now: Millis,
    ) -> Result<Option<Session>, String> {
        let row = self
            .inner
            .store
            .load(&self.inner.app, id.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let Some(row) = row else { return Ok(None) };
        if !row.valid || row.is_expired(i64::try_from(now).unwrap_or(i64::MAX)) {
            return Ok(None);
        }
        match record::decode(id, &row.data) {
            Ok(Record::Live(mut s)) => {
                self.inner.n.loads.fetch_add(1, Ordering::Relaxed);
                s.last_access = s
                    .last_access
                    .max(u64::try_from(row.last_access_ms).unwrap_or(0));
                s.is_new = false;
                Ok(Some(s))
            }
            Ok(Record::Moved { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(crate) fn note_adopted(&self) {
        self.inner.n.adopted.fetch_add(1, Ordering::Relaxed);
    }

    /// The store the changes are written to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn stats(&self) -> WriteBehindStats {
        let n = &self.inner.n;
        let st = self.inner.lock();
        WriteBehindStats {
            store: self.inner.store.describe(),
            kind: self.inner.store.name().to_owned(),
            degraded: st.failing.then(|| {
                st.last_error
                    .clone()
                    .unwrap_or_else(|| "the last store operation failed".into())
            }),
            queued: st.len() as u64,
            queued_bytes: st.bytes as u64,
            lag_ms: st
                .oldest()
                .map(|t| t.elapsed().as_millis() as u64)
                .unwrap_or(0),
            writes: n.writes.load(Ordering::Relaxed),
            touches: n.touches.load(Ordering::Relaxed),
            removes: n.removes.load(Ordering::Relaxed),
            conflicts: n.conflicts.load(Ordering::Relaxed),
            stale_skipped: n.stale_skipped.load(Ordering::Relaxed),
            errors: n.errors.load(Ordering::Relaxed),
            last_error: st.last_error.clone(),
            full_waits: n.full_waits.load(Ordering::Relaxed),
            loads: n.loads.load(Ordering::Relaxed),
            adopted: n.adopted.load(Ordering::Relaxed),
            checked: *self.inner.checked.borrow(),
            latency: self.inner.latency.snapshot(),
        }
    }

    /// Stops the writer task (what is still queued stays unwritten: flush first).
    pub fn abort(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.abort();
    }
}

async fn writer(inner: Arc<Inner>) {
    let max = Duration::from_millis(inner.cfg.retry_max_ms.max(50));
    let mut backoff = Duration::from_millis(50);
    // The row version this node last read or wrote, per session (saves one round trip).
    let mut known: HashMap<SessionId, u64> = HashMap::new();
    while let Err(e) = inner.store.check().await {
        inner.n.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(app = %inner.app, "write-behind store check failed: {e}");
        {
            let mut st = inner.lock();
            st.last_error = Some(e.to_string());
            st.failing = true;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
    inner.lock().failing = false;
    inner.checked.send_replace(true);
    backoff = Duration::from_millis(50);
    let delay = Duration::from_millis(inner.cfg.write_delay_ms);
    // Entries due this soon join the batch of the one that is due.
    let early = delay / 4;
    loop {
        let next = {
            let mut st = inner.lock();
            let flushing = inner.flushers.load(Ordering::SeqCst) > 0;
            match st.first_since() {
                Some(since) if !flushing && since.elapsed() < delay => Err(since + delay),
                Some(_) => {
                    let mut batch = Vec::new();
                    while batch.len() < WRITE_BATCH {
                        match st.first_since() {
                            Some(since) if flushing || since.elapsed() + early >= delay => {}
                            _ => break,
                        }
                        match st.pop() {
                            Some(e) => batch.push(e),
                            None => break,
                        }
                    }
                    Ok(batch)
                }
                None => Ok(Vec::new()),
            }
        };
        let batch = match next {
            Ok(batch) => batch,
            Err(due) => {
                // Later changes to this session coalesce into it meanwhile.
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = inner.flush_now.notified() => {}
                }
                continue;
            }
        };
        if batch.is_empty() {
            inner.progress.notify_waiters();
            inner.work.notified().await;
            continue;
        }
        // The ids of a batch are distinct (one queue entry per id, and an id written here is
        // not taken again before the batch ends): each write gets its own row version.
        let writes = batch.into_iter().map(|(id, p)| {
            let mut row = known.remove(&id);
            let inner = &inner;
            async move {
                let started = std::time::Instant::now();
                let r = write(inner, &mut row, &id, &p.op).await;
                inner.latency.record(started.elapsed());
                (id, p, row, r)
            }
        });
        let results = futures::future::join_all(writes).await;
        let mut failed = false;
        {
            let mut st = inner.lock();
            for (id, p, row, r) in results {
                st.inflight.remove(&id);
                match r {
                    Ok(()) => {
                        if let Some(v) = row {
                            known.insert(id, v);
                        }
                    }
                    Err(e) => {
                        // Unknown outcome: forget what we knew of the row (`row` dropped).
                        inner.n.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(app = %inner.app, session = %id, "write-behind: {e}");
                        st.last_error = Some(e);
                        st.put(id, p.op, p.seq, p.since);
                        failed = true;
                    }
                }
            }
            st.failing = failed;
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max);
        } else {
            backoff = Duration::from_millis(50);
        }
        inner.progress.notify_waiters();
    }
}

/// Writes one coalesced change. `Err`: the store failed (retry later).
/// `known`: the row version this node last read or wrote for `id` (updated here).
async fn write(
    inner: &Inner,
    known: &mut Option<u64>,
    id: &SessionId,
    op: &Op,
) -> Result<(), String> {
    let (store, app, n) = (&inner.store, inner.app.as_str(), &inner.n);
    let err = |e: shoal_store::StoreError| e.to_string();
    match op {
        Op::Touch {
            version,
            last_access,
        } => {
            let la = i64::try_from(*last_access).unwrap_or(i64::MAX);
            match store
                .touch(app, id.as_str(), row_version(*version), la)
                .await
                .map_err(err)?
            {
                Cas::Done => {
                    n.touches.fetch_add(1, Ordering::Relaxed);
                }
                // Another version is stored (a newer one, or ours is still queued behind).
                Cas::Conflict { .. } => {
                    n.stale_skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }
        Op::Remove(version) => {
            let hides = row_version(*version);
            let mut current = match known.take() {
                Some(v) => Some(v),
                None => store.version(app, id.as_str()).await.map_err(err)?,
            };
            for _ in 0..4 {
                match current {
                    None => return Ok(()),
                    Some(c) if c > hides => {
                        // A newer write than the removal: it wins.
                        n.stale_skipped.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Some(c) => match store.remove(app, id.as_str(), c).await.map_err(err)? {
                        Cas::Done => {
                            n.removes.fetch_add(1, Ordering::Relaxed);
                            return Ok(());
                        }
                        Cas::Conflict { current: now } => {
                            n.conflicts.fetch_add(1, Ordering::Relaxed);
                            current = now;
                        }
                    },
                }
            }
            Ok(())
        }
        Op::Save(s) => {
            let mut s = (**s).clone();
            s.is_new = false;
            let row_v = row_version(s.version);
            let data = match record::encode(id, &Record::Live(s.clone())) {
                Ok(d) => d,
                Err(e) => {
                    // Can never succeed: counted, logged, not retried.
                    n.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(app = %app, "write-behind: {e}");
                    inner.lock().last_error = Some(e.to_string());
                    return Ok(());
                }
            };
            let row = StoredSession {
                id: id.as_str().to_owned(),
                app: app.to_owned(),
                version: row_v,
                valid: true,
                max_inactive_s: i64::from(s.max_inactive_secs),
                last_access_ms: i64::try_from(s.last_access).unwrap_or(i64::MAX),
                owner: Some(inner.route.clone()),
                data,
            };
            let mut expect = match *known {
                Some(v) => Expect::Version(v),
                None => Expect::Absent,
            };
            for _ in 0..4 {
                if let Expect::Version(c) = expect {
                    if c >= row_v {
                        // Our version is stored already (or a newer one): at most a touch.
                        if c == row_v {
                            let _ = store
                                .touch(app, id.as_str(), c, row.last_access_ms)
                                .await
                                .map_err(err)?;
                            n.touches.fetch_add(1, Ordering::Relaxed);
                        } else {
                            n.stale_skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        return Ok(());
                    }
                }
                match store.save(&row, expect).await.map_err(err)? {
                    Cas::Done => {
                        *known = Some(row_v);
                        n.writes.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Cas::Conflict { current } => {
                        n.conflicts.fetch_add(1, Ordering::Relaxed);
                        if current.is_none() {
                            // The row was removed under us (another node invalidated or
                            // expired it): never re-create it.
                            *known = None;
                            n.stale_skipped.fetch_add(1, Ordering::Relaxed);
                            return Ok(());
                        }
                        let theirs = store.load(app, id.as_str()).await.map_err(err)?;
                        let Some(theirs) = theirs else {
                            expect = Expect::Absent;
                            continue;
                        };
                        *known = Some(theirs.version);
                        let ours_wins = match record::decode(id, &theirs.data) {
                            Ok(Record::Live(t)) => s.rank() > t.rank(),
                            // A takeover tombstone or a row we cannot read: not ours to
                            // overwrite.
                            _ => false,
                        };
                        // Never over a newer row; and a row at our version or above that
                        // ranks lower (the same version written elsewhere) cannot be
                        // replaced under compare-and-set without a new version: the
                        // session's next change will be.
                        if !ours_wins || theirs.version >= row_v {
                            n.stale_skipped.fetch_add(1, Ordering::Relaxed);
                            return Ok(());
                        }
                        expect = Expect::Version(theirs.version);
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use shoal_cluster::MemberId;

    fn session(version: u64, ts: Millis, node: u8) -> Session {
        let id = SessionId::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
        let mut s = Session::new(id, "n".into(), ts, 60, MemberId([node; 16]));
        s.version = version;
        s
    }

    fn version_of(op: &Op) -> (char, u64) {
        match op {
            Op::Save(s) => ('s', s.version),
            Op::Touch { version, .. } => ('t', *version),
            Op::Remove(v) => ('r', *v),
        }
    }

    #[test]
    fn merge_keeps_the_later_state_in_either_order() {
        let (a, b) = (session(2, 10, 1), session(3, 5, 2));
        for (x, y) in [
            (Op::Save(Box::new(a.clone())), Op::Save(Box::new(b.clone()))),
            (Op::Save(Box::new(b.clone())), Op::Save(Box::new(a.clone()))),
        ] {
            let m = Op::merge(x, y);
            assert_eq!(version_of(&m), ('s', 3));
            let Op::Save(s) = m else { unreachable!() };
            assert_eq!(s.last_access, 10, "the later access is kept");
        }
        // Same version, the higher stamp wins.
        let (c, d) = (session(4, 10, 1), session(4, 10, 2));
        let Op::Save(w) = Op::merge(Op::Save(Box::new(d.clone())), Op::Save(Box::new(c))) else {
            unreachable!()
        };
        assert_eq!(w.stamp, d.stamp);
        // A removal at v hides saves <= v; a newer save wins over it.
        assert_eq!(
            version_of(&Op::merge(Op::Save(Box::new(a.clone())), Op::Remove(3))),
            ('r', 3)
        );
        assert_eq!(
            version_of(&Op::merge(Op::Remove(3), Op::Save(Box::new(a)))),
            ('r', 3)
        );
        assert_eq!(
            version_of(&Op::merge(Op::Remove(2), Op::Save(Box::new(b.clone())))),
            ('s', 3)
        );
        // A touch folds into a save.
        let t = Op::Touch {
            version: 3,
            last_access: 99,
        };
        let Op::Save(s) = Op::merge(Op::Save(Box::new(b)), t) else {
            unreachable!()
        };
        assert_eq!(s.last_access, 99);
        assert_eq!(
            version_of(&Op::merge(Op::Remove(1), Op::Remove(4))),
            ('r', 4)
        );
    }

    #[test]
    fn coalescing_keeps_the_first_enqueue_time_and_counts_bytes() {
        let mut st = State::default();
        let s = session(1, 1, 1);
        let t0 = Instant::now();
        st.put(s.id.clone(), Op::Save(Box::new(s.clone())), 0, t0);
        let mut s2 = s.clone();
        s2.version = 2;
        st.put(
            s.id.clone(),
            Op::Save(Box::new(s2)),
            1,
            t0 + Duration::from_secs(1),
        );
        assert_eq!(st.pending.len(), 1);
        assert_eq!(st.order.len(), 1);
        assert_eq!(st.oldest(), Some(t0));
        let (_, p) = st.pop().expect("one");
        assert_eq!(version_of(&p.op), ('s', 2));
        assert_eq!(st.bytes, 0);
        assert_eq!(st.len(), 1, "in flight still counts");
        assert_eq!(st.oldest(), Some(t0));
    }

    fn queue(delay_ms: u64) -> (Arc<WriteBehind>, shoal_store::MemoryStore) {
        let store = shoal_store::MemoryStore::new();
        let cfg = WriteBehindConfig {
            write_delay_ms: delay_ms,
            ..WriteBehindConfig::default()
        };
        let wb = WriteBehind::start("app", "n1", Arc::new(store.clone()), cfg);
        (wb, store)
    }

    #[tokio::test]
    async fn changes_within_the_write_delay_cost_one_store_write() {
        let (wb, store) = queue(200);
        let mut s = session(0, 1, 1);
        for v in 0..20 {
            s.version = v;
            assert!(!wb.save(s.clone()), "queue over its bounds");
        }
        shoal_testkit::eventually(
            "the coalesced change is stored",
            Duration::from_secs(10),
            || wb.stats().queued == 0 && wb.stats().writes > 0,
        )
        .await;
        assert_eq!(wb.stats().writes, 1, "{:?}", wb.stats());
        let row = store.version("app", s.id.as_str()).await;
        assert_eq!(row.ok().flatten(), Some(row_version(19)));
    }

    #[tokio::test]
    async fn a_flush_does_not_wait_out_the_write_delay() {
        let (wb, store) = queue(3_600_000);
        let s = session(4, 1, 1);
        assert!(!wb.save(s.clone()), "queue over its bounds");
        assert!(
            wb.flush(Duration::from_secs(10)).await,
            "flush waited for the hour-long delay: {:?}",
            wb.stats()
        );
        let row = store.version("app", s.id.as_str()).await;
        assert_eq!(row.ok().flatten(), Some(row_version(4)));
        // After the flush the delay applies again.
        let mut s2 = s.clone();
        s2.version = 5;
        assert!(!wb.save(s2));
        tokio::task::yield_now().await;
        assert_eq!(wb.stats().queued, 1);
    }
}
