//! `PersistentService`: the runtime around one persistent context's sans-io
//! [`PersistentCore`]. It executes the core's store operations against an
//! `Arc<dyn shoal_store::Store>`, hands each request its [`Step`], broadcasts `Moved`
//! notices to the cluster and ticks the core's background pass.
//!
//! The core sits behind a mutex rather than inside a task: every call takes the lock, calls
//! the core and drains [`PersistentCore::poll`] before letting go, so outputs leave in order
//! exactly as a driver task would send them, without a channel hop per request. Store
//! operations run as their own tasks (any concurrency, the core orders what matters) and feed
//! their reply back the same way. Each operation has a deadline ([`OP_TIMEOUT`]): an error or
//! a timeout is `Reply::Unavailable(reason)`.
use super::link::ClusterLink;
use crate::id::SessionId;
use crate::manager::RequestEnd;
use crate::message::{self, SessionMessage};
use crate::persistent::{
    CoreParams, Expect, Moved, Op, OpKind, Output, PersistError, PersistentConfig, PersistentCore,
    RemoveResult, Reply, ReqId, Row, SaveResult, Step, StoreStatus,
};
use crate::session::{Millis, Session};
use rand::SeedableRng;
use shoal_store::{Cas, Store, StoredSession};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};

/// Longest a store operation may take before it counts as the store being unavailable.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// The core's tick (Tomcat's `backgroundProcessorDelay`, there 10 s): queued-write retries
/// run at this pace, the background pass every `process_expires_frequency` ticks.
pub(crate) const TICK: Duration = Duration::from_secs(1);

struct Inner {
    core: PersistentCore,
    /// Requests waiting for their next step.
    waiting: HashMap<ReqId, oneshot::Sender<Step>>,
}

pub struct PersistentService {
    app: String,
    route: String,
    store: Arc<dyn Store>,
    link: Arc<dyn ClusterLink>,
    inner: Mutex<Inner>,
    next_req: AtomicU64,
    /// `Some(Ok)` once the store check passed, `Some(Err)` when it failed.
    checked: watch::Sender<Option<Result<(), String>>>,
    /// Woken whenever the core may have become idle (stop waits on it).
    progressed: Notify,
    latency: crate::stats::LatencyCounter,
}

impl PersistentService {
    /// Builds the core and starts the store check and the ticker. `cfg` must have passed
    /// [`PersistentConfig::validate`]. Must run inside a tokio runtime.
    pub(crate) fn start(
        params: CoreParams,
        cfg: PersistentConfig,
        store: Arc<dyn Store>,
        link: Arc<dyn ClusterLink>,
    ) -> Arc<Self> {
        let (app, route) = (params.app.clone(), params.route.clone());
        let core = PersistentCore::new(params, cfg, rand::rngs::StdRng::from_entropy());
        let svc = Arc::new(PersistentService {
            app,
            route,
            store,
            link,
            inner: Mutex::new(Inner {
                core,
                waiting: HashMap::new(),
            }),
            next_req: AtomicU64::new(1),
            checked: watch::Sender::new(None),
            latency: Default::default(),
            progressed: Notify::new(),
        });
        let s = svc.clone();
        tokio::spawn(async move {
            let r = match tokio::time::timeout(OP_TIMEOUT * 2, s.store.check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "session store `{}`: no answer within {} s; check that it runs and is reachable",
                    s.store.describe(),
                    (OP_TIMEOUT * 2).as_secs()
                )),
            };
            if let Err(e) = &r {
                tracing::error!(context = %s.app, store = %s.store.describe(), "session store check failed: {e}");
            }
            s.checked.send_replace(Some(r));
        });
        let weak = Arc::downgrade(&svc);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(TICK);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(s) = weak.upgrade() else { return };
                if s.is_checked() {
                    s.call(|core, now| core.tick(now));
                }
            }
        });
        svc
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store check at start passed.
    pub fn is_checked(&self) -> bool {
        matches!(*self.checked.borrow(), Some(Ok(())))
    }

    /// Waits for the store check: its result (an error names the store, the table or column
    /// and what to do), or `Err` when it did not finish within `timeout`.
    pub async fn wait_checked(&self, timeout: Duration) -> Result<(), String> {
        let mut rx = self.checked.subscribe();
        let done = tokio::time::timeout(timeout, rx.wait_for(|c| c.is_some()))
            .await
            .map(|r| r.map(|c| c.clone()));
        match done {
            Ok(Ok(c)) => c.unwrap_or(Ok(())),
            _ => Err(format!(
                "context `{}`: session store `{}` check did not finish within {} ms",
                self.app,
                self.store.describe(),
                timeout.as_millis()
            )),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls the core with the lock held, then carries out what it asked for.
    fn call<R>(self: &Arc<Self>, f: impl FnOnce(&mut PersistentCore, Millis) -> R) -> R {
        let mut inner = self.lock();
        let r = f(&mut inner.core, super::service::now_ms());
        self.drain(&mut inner);
        r
    }

    fn drain(self: &Arc<Self>, inner: &mut Inner) {
        while let Some(out) = inner.core.poll() {
            match out {
                Output::Io(op) => self.execute(op),
                Output::Step(req, step) => {
                    if let Some(tx) = inner.waiting.remove(&req) {
                        let _ = tx.send(step);
                    }
                }
                Output::Moved(m) => self.broadcast(m),
            }
        }
        self.progressed.notify_waiters();
    }

    fn execute(self: &Arc<Self>, op: Op) {
        let s = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (token, name) = (op.token, op.kind.name());
            let reply =
                match tokio::time::timeout(OP_TIMEOUT, run_op(s.store.as_ref(), op.kind)).await {
                    Ok(r) => r,
                    Err(_) => Reply::Unavailable(format!(
                        "{name} did not answer within {} s",
                        OP_TIMEOUT.as_secs()
                    )),
                };
            s.latency.record(started.elapsed());
            s.call(|core, now| core.on_reply(token, reply, now));
        });
    }

    fn broadcast(&self, m: Moved) {
        let local = self.link.local().id;
        let to: Vec<_> = self
            .link
            .members()
            .iter()
            .map(|m| m.id)
            .filter(|id| *id != local)
            .collect();
        if to.is_empty() {
            return;
        }
        let msg = SessionMessage::Moved {
            old_id: m.old_id,
            new_id: m.new_id,
            version: m.version,
        };
        let send = self.link.send(&to, message::encode(&m.app, &msg), false);
        tokio::spawn(send);
    }

    /// A member's takeover moved a session: drop the memory copy of the old id.
    pub(crate) fn on_moved(self: &Arc<Self>, old_id: SessionId, new_id: SessionId, version: u64) {
        let m = Moved {
            app: self.app.clone(),
            old_id,
            new_id,
            version,
        };
        self.call(|core, now| core.on_moved(&m, now));
    }

    /// A unique id for a new request.
    pub fn next_req(&self) -> ReqId {
        ReqId(self.next_req.fetch_add(1, Ordering::Relaxed))
    }

    async fn wait(&self, rx: oneshot::Receiver<Step>) -> Step {
        // The store's description only on the rare failure (it is a new string each time).
        rx.await.unwrap_or_else(|_| {
            Step::Fail(PersistError::Unavailable {
                store: self.store.describe(),
                reason: "the context stopped while the request waited".into(),
            })
        })
    }

    /// Starts request `req` on the session `full_id` (`<id>[.<route>]`) names: `Serve`,
    /// `Missing` or `Fail`. If the future is dropped, call [`Self::abort`].
    pub async fn begin(self: &Arc<Self>, req: ReqId, full_id: Option<&str>) -> Step {
        let (tx, rx) = oneshot::channel();
        {
            // Registered under the lock, before the core can answer.
            let mut inner = self.lock();
            inner.waiting.insert(req, tx);
            inner.core.begin(req, full_id, super::service::now_ms());
            self.drain(&mut inner);
        }
        self.wait(rx).await
    }

    /// A new session for a request that got `Missing`.
    pub fn create(self: &Arc<Self>, req: ReqId) -> Result<Session, PersistError> {
        self.call(|core, now| core.create(req, now))
    }

    /// Ends request `req`: `Done` or `Fail`.
    pub async fn end(self: &Arc<Self>, req: ReqId, end: RequestEnd) -> Step {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.lock();
            inner.waiting.insert(req, tx);
            inner.core.end(req, end, super::service::now_ms());
            self.drain(&mut inner);
        }
        let step = self.wait(rx).await;
        // After a failure the core may still hold the request (and its session's lock).
        self.abort(req);
        step
    }

    /// The request went away without `end` (client gone, handler panicked).
    pub fn abort(self: &Arc<Self>, req: ReqId) {
        let mut inner = self.lock();
        inner.waiting.remove(&req);
        inner.core.abort(req, super::service::now_ms());
        self.drain(&mut inner);
    }

    pub fn route(&self) -> &str {
        &self.route
    }

    /// The sessions this node holds in memory (copies; the store holds them all).
    pub fn sessions_in_memory(&self) -> Vec<Session> {
        self.lock().core.sessions_in_memory().cloned().collect()
    }

    /// This node's memory copy of `id`, if it holds one.
    pub fn in_memory(&self, id: &SessionId) -> Option<Session> {
        self.lock().core.in_memory(id).cloned()
    }

    pub fn status(&self) -> StoreStatus {
        let inner = self.lock();
        let now = super::service::now_ms();
        let mut stats = inner.core.stats();
        stats.queue_lag_ms = inner.core.queue_lag_ms(now);
        StoreStatus {
            name: self.store.name().to_owned(),
            describe: self.store.describe(),
            degraded: inner.core.degraded().map(str::to_owned),
            check_error: self.checked.borrow().as_ref().and_then(|r| r.clone().err()),
            stats,
            latency: self.latency.snapshot(),
        }
    }

    /// Graceful stop: new requests are refused, running ones end, unsaved changes are saved
    /// (`save_on_restart`), and the ops run until the core is idle or `deadline` passes.
    /// False on the deadline (what was not saved is logged by the core).
    pub async fn stop(self: &Arc<Self>, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        self.call(|core, now| core.stop(now));
        loop {
            let woken = self.progressed.notified();
            if self.lock().core.is_idle() {
                return true;
            }
            if tokio::time::timeout_at(until, woken).await.is_err() {
                return self.lock().core.is_idle();
            }
        }
    }
}

/// Runs one op on the store and maps the answer into the core's vocabulary.
async fn run_op(store: &dyn Store, kind: OpKind) -> Reply {
    let unavailable = |e: shoal_store::StoreError| Reply::Unavailable(e.to_string());
    match kind {
        OpKind::Load { app, id } => match store.load(&app, id.as_str()).await {
            Ok(None) => Reply::Loaded(None),
            Ok(Some(s)) => match from_stored(s) {
                Ok(row) => Reply::Loaded(Some(row)),
                Err(reason) => Reply::Unavailable(reason),
            },
            Err(e) => unavailable(e),
        },
        OpKind::Version { app, id } => match store.version(&app, id.as_str()).await {
            Ok(v) => Reply::Version(v),
            Err(e) => unavailable(e),
        },
        OpKind::Save { row, expect } => {
            let expect = match expect {
                Expect::Absent => shoal_store::Expect::Absent,
                Expect::Version(v) => shoal_store::Expect::Version(v),
            };
            match store.save(&to_stored(row), expect).await {
                Ok(Cas::Done) => Reply::Saved(SaveResult::Done),
                Ok(Cas::Conflict { current }) => Reply::Saved(SaveResult::Conflict { current }),
                Err(e) => unavailable(e),
            }
        }
        OpKind::Remove {
            app,
            id,
            expect_version,
        } => match store.remove(&app, id.as_str(), expect_version).await {
            Ok(Cas::Done) => Reply::Removed(RemoveResult::Done),
            Ok(Cas::Conflict { .. }) => Reply::Removed(RemoveResult::Conflict),
            Err(e) => unavailable(e),
        },
        OpKind::Expired { app, now, limit } => {
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            match store.expired(&app, now, limit).await {
                // An id shoal did not issue cannot be a session of this context: skipped.
                Ok(list) => Reply::Expired(
                    list.into_iter()
                        .filter_map(|(id, v)| SessionId::parse(&id).map(|id| (id, v)))
                        .collect(),
                ),
                Err(e) => unavailable(e),
            }
        }
    }
}

fn to_stored(row: Row) -> StoredSession {
    StoredSession {
        id: row.id.as_str().to_owned(),
        app: row.app,
        version: row.version,
        valid: row.valid,
        max_inactive_s: i64::from(row.max_inactive_s),
        last_access_ms: i64::try_from(row.last_access_ms).unwrap_or(i64::MAX),
        owner: row.owner,
        data: row.data,
    }
}

fn from_stored(s: StoredSession) -> Result<Row, String> {
    let id = SessionId::parse(&s.id).ok_or_else(|| {
        format!(
            "stored session `{}` of `{}`: not a shoal session id (written by another program?)",
            s.id, s.app
        )
    })?;
    Ok(Row {
        app: s.app,
        id,
        version: s.version,
        valid: s.valid,
        max_inactive_s: u32::try_from(s.max_inactive_s.max(0)).unwrap_or(u32::MAX),
        last_access_ms: u64::try_from(s.last_access_ms.max(0)).unwrap_or(0),
        owner: s.owner,
        data: s.data,
    })
}
