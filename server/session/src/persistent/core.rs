//! `PersistentCore`: the sans-io persistent manager of one context (see the design note in
//! `persistent/mod.rs`). Inputs are method calls with `now`; outputs are queued and taken
//! with [`PersistentCore::poll`].
use crate::persistent::config::{PersistMode, PersistentConfig};
use crate::persistent::error::PersistError;
use crate::persistent::ops::{
    Expect, Op, OpKind, RemoveResult, Reply, ReqId, Row, SaveResult, Token,
};
use crate::persistent::record::{self, Record};
use crate::persistent::stats::PersistStats;
use crate::{parse_full_id, Millis, RequestEnd, Session, SessionId, SessionLimits};
use rand::rngs::StdRng;
use shoal_cluster::MemberId;
use std::collections::{HashMap, VecDeque};

/// First wait before retrying queued writes while the store is unavailable.
const RETRY_MIN_MS: u64 = 100;
/// Tombstones followed by one request before it gives up (a chain of takeovers).
const MAX_HOPS: u8 = 4;

/// What a context's core needs to know about where it runs.
#[derive(Clone, Debug)]
pub struct CoreParams {
    /// The context (the row's `app`).
    pub app: String,
    pub node: MemberId,
    /// This node's route (jvmRoute): the suffix of the ids it issues and the rows' `owner`.
    pub route: String,
    /// The store's name for errors and logs (e.g. `sqlite:/var/lib/shoal/sessions.db`).
    pub store: String,
    /// Default max inactive interval of new sessions (the context's `max_inactive_secs`).
    pub max_inactive_secs: u32,
    pub limits: SessionLimits,
}

/// A request's next state, delivered as `Output::Step(req, step)`.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The session for the request. Its id may differ from the one asked for (takeover, or
    /// a moved id followed): the runtime sets the cookie to `session.id.with_route(&route)`.
    Serve(Session),
    /// No such session (none asked for, unknown, expired, invalidated): call
    /// [`PersistentCore::create`] if the request needs one, else end it.
    Missing,
    /// `end` finished. `queued`: the change is in memory and waiting for the store (store
    /// unavailable, or write-behind), not yet durable.
    Done {
        queued: bool,
    },
    Fail(PersistError),
}

/// A takeover moved `old_id` to `new_id`: every member of the cluster should drop its
/// memory copy of `old_id` ([`PersistentCore::on_moved`]). Best effort: the version check
/// and compare-and-set catch a member that misses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub app: String,
    pub old_id: SessionId,
    pub new_id: SessionId,
    /// Version of the tombstone row left under `old_id`.
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Execute against the store and feed the reply to [`PersistentCore::on_reply`].
    Io(Op),
    Step(ReqId, Step),
    /// Broadcast to the cluster's members.
    Moved(Moved),
}

/// A session held in memory (sticky mode).
#[derive(Debug)]
struct Entry {
    session: Session,
    /// The row version this node last read or wrote; `None`: not in the store yet.
    synced: Option<u64>,
    /// `last_access_ms` of the row as last written (for the touch rule).
    stored_access: Millis,
    /// Changes not in the store since then (the write queue holds this session).
    dirty_since: Option<Millis>,
    /// A `Moved` notice arrived while a request held it: drop it when released.
    moved: bool,
}

/// A session held by a request between `begin` and `end` (per-request mode).
#[derive(Debug, Clone)]
struct Held {
    session: Session,
    version: Option<u64>,
    stored_access: Millis,
}

#[derive(Debug)]
enum ReqState {
    WaitingLock,
    Verifying,
    Loading,
    /// Saving the taken-over session under its new id (`Expect::Absent`).
    TakeoverNew {
        old_version: u64,
        session: Session,
    },
    /// Tombstoning the old id (compare-and-set on the version loaded).
    TakeoverOld {
        session: Session,
        tomb_version: u64,
    },
    /// The runtime has the session; `held` only in per-request mode.
    Serving {
        held: Option<Held>,
    },
    Saving {
        session: Session,
        version: u64,
        access: Millis,
    },
    Removing,
}

#[derive(Debug)]
struct Req {
    /// The id whose lock this request holds or waits for.
    id: SessionId,
    state: ReqState,
    hops: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Req(ReqId),
    Background(u64),
}

/// One request (or background job) per session id at a time on this node (Tomcat's
/// PersistentValve semaphore, fair and blocking): the others wait in order.
#[derive(Debug)]
struct Lock {
    holder: Holder,
    waiters: VecDeque<ReqId>,
}

#[derive(Debug)]
enum Bg {
    /// Save a dirty memory entry; drop it afterwards if `drop_after` (swap-out, stop).
    Save {
        id: SessionId,
        version: u64,
        access: Millis,
        drop_after: bool,
    },
    /// Expire an owned memory entry.
    Expire {
        id: SessionId,
    },
    Sweep,
    SweepLoad {
        id: SessionId,
    },
    SweepRemove {
        id: SessionId,
    },
    /// Remove an orphan row (a takeover that lost its tombstone compare-and-set).
    Cleanup,
}

pub struct PersistentCore {
    p: CoreParams,
    cfg: PersistentConfig,
    rng: StdRng,
    /// Boxed: the table keeps a slot per bucket, and a table sized for 10,000 entries has
    /// up to twice as many buckets; an empty slot then costs a pointer, not an `Entry`.
    mem: HashMap<SessionId, Box<Entry>>,
    locks: HashMap<SessionId, Lock>,
    reqs: HashMap<ReqId, Req>,
    bg: HashMap<u64, Bg>,
    next_bg: u64,
    out: VecDeque<Output>,
    ticks: u64,
    dirty: usize,
    retry_at: Millis,
    retry_wait: u64,
    degraded: Option<String>,
    stopping: bool,
    sweeping: bool,
    stats: PersistStats,
}

impl PersistentCore {
    /// `cfg` must have passed [`PersistentConfig::validate`]. `rng` generates session ids:
    /// a CSPRNG in production, seeded in tests.
    pub fn new(p: CoreParams, cfg: PersistentConfig, rng: StdRng) -> Self {
        PersistentCore {
            p,
            cfg,
            rng,
            mem: HashMap::new(),
            locks: HashMap::new(),
            reqs: HashMap::new(),
            bg: HashMap::new(),
            next_bg: 0,
            out: VecDeque::new(),
            ticks: 0,
            dirty: 0,
            retry_at: 0,
            retry_wait: RETRY_MIN_MS,
            degraded: None,
            stopping: false,
            sweeping: false,
            stats: PersistStats::default(),
        }
    }

    pub fn config(&self) -> &PersistentConfig {
        &self.cfg
    }

    pub fn route(&self) -> &str {
        &self.p.route
    }

    /// The next output, in order.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Why the store is considered down, while it is.
    pub fn degraded(&self) -> Option<&str> {
        self.degraded.as_deref()
    }

    /// No request and no store operation in flight (after `stop`: done).
    pub fn is_idle(&self) -> bool {
        self.reqs.is_empty() && self.bg.is_empty()
    }

    /// The memory copy of a session, without side effects (tests, admin API).
    pub fn in_memory(&self, id: &SessionId) -> Option<&Session> {
        self.mem.get(id).map(|e| &e.session)
    }

    /// Every memory copy, without side effects (admin API).
    pub fn sessions_in_memory(&self) -> impl Iterator<Item = &Session> {
        self.mem.values().map(|e| &e.session)
    }

    pub fn stats(&self) -> PersistStats {
        let mut s = self.stats.clone();
        s.queue_depth = self.dirty as u64;
        s.in_memory = self.mem.len() as u64;
        s.degraded = self.degraded.is_some();
        s
    }

    /// Age of the oldest change not yet in the store.
    pub fn queue_lag_ms(&self, now: Millis) -> u64 {
        self.mem
            .values()
            .filter_map(|e| e.dirty_since)
            .min()
            .map_or(0, |t| now.saturating_sub(t))
    }

    // ---- requests ------------------------------------------------------------------

    /// A request starts; `full_id` is the cookie or URL value `<id>[.<route>]` it carried.
    /// Answered by `Step::Serve`, `Step::Missing` or `Step::Fail`.
    pub fn begin(&mut self, req: ReqId, full_id: Option<&str>, now: Millis) {
        if self.stopping {
            return self.step(req, Step::Fail(self.stopping_err()));
        }
        let Some((id, _route)) = full_id.and_then(parse_full_id) else {
            return self.step(req, Step::Missing);
        };
        self.reqs.insert(
            req,
            Req {
                id: id.clone(),
                state: ReqState::WaitingLock,
                hops: 0,
            },
        );
        self.acquire(req, id, now);
    }

    /// A new session for a request that got `Step::Missing` (or asked for none). No store
    /// operation: it is saved by `end` (`Expect::Absent`).
    pub fn create(&mut self, req: ReqId, now: Millis) -> Result<Session, PersistError> {
        if self.stopping {
            return Err(self.stopping_err());
        }
        if self.cfg.mode == PersistMode::Sticky && !self.make_room(now) {
            self.stats.refused_max_active += 1;
            return Err(PersistError::TooManyActive {
                app: self.p.app.clone(),
                limit: self.cfg.max_active_sessions,
            });
        }
        self.abort(req, now);
        let id = SessionId::generate(&mut self.rng);
        let session = Session::new(
            id.clone(),
            self.p.route.clone(),
            now,
            self.p.max_inactive_secs,
            self.p.node,
        );
        let held = match self.cfg.mode {
            PersistMode::Sticky => {
                self.mem.insert(
                    id.clone(),
                    Box::new(Entry {
                        session: session.clone(),
                        synced: None,
                        stored_access: now,
                        dirty_since: None,
                        moved: false,
                    }),
                );
                None
            }
            PersistMode::PerRequest => Some(Held {
                session: session.clone(),
                version: None,
                stored_access: now,
            }),
        };
        self.locks.insert(
            id.clone(),
            Lock {
                holder: Holder::Req(req),
                waiters: VecDeque::new(),
            },
        );
        self.reqs.insert(
            req,
            Req {
                id,
                state: ReqState::Serving { held },
                hops: 0,
            },
        );
        Ok(session)
    }

    /// The request ends with what it did. Answered by `Step::Done` or `Step::Fail`.
    pub fn end(&mut self, req: ReqId, end: RequestEnd, now: Millis) {
        let Some(r) = self.reqs.get_mut(&req) else {
            // Never got a session (Missing without create): nothing to save.
            return self.step(req, Step::Done { queued: false });
        };
        let id = r.id.clone();
        let held = match std::mem::replace(&mut r.state, ReqState::WaitingLock) {
            ReqState::Serving { held } => held,
            other => {
                // A runtime bug (the request ended while its begin was still running): answer
                // it rather than leave it hanging; its begin keeps running and is aborted.
                r.state = other;
                tracing::error!(session = %id, ?req, "end called before the session was served");
                return self.step(
                    req,
                    Step::Fail(PersistError::NotServed { id: id.to_string() }),
                );
            }
        };
        let (session, version, stored_access) = match held {
            Some(h) => (h.session, h.version, h.stored_access),
            None => match self.mem.get(&id) {
                Some(e) => (e.session.clone(), e.synced, e.stored_access),
                None => return self.finish(req, Step::Fail(self.conflict_err(&id)), now),
            },
        };
        if end.invalidate {
            return match version {
                Some(v) => self.req_io(
                    req,
                    ReqState::Removing,
                    OpKind::Remove {
                        app: self.p.app.clone(),
                        id,
                        expect_version: v,
                    },
                ),
                None => {
                    self.drop_entry(&id);
                    self.finish(req, Step::Done { queued: false }, now)
                }
            };
        }
        if let Err(e) = session.check_ops(&end.ops, &self.p.limits) {
            return self.finish(req, Step::Fail(e.into()), now);
        }
        let mut next = session;
        let changed = !end.ops.is_empty() || next.is_new;
        if end.accessed || changed {
            next.last_access = now.max(next.last_access);
        }
        if changed {
            next.apply_ops(&end.ops);
            next.bump(now, self.p.node);
            next.is_new = false;
        }
        let touch = end.accessed
            && touch_threshold(&next, self.p.max_inactive_secs)
                .is_some_and(|t| next.last_access.saturating_sub(stored_access) >= t);
        if !changed && !touch {
            if let Some(e) = self.mem.get_mut(&id) {
                e.session.last_access = next.last_access;
            }
            return self.finish(req, Step::Done { queued: false }, now);
        }
        // Write-behind, or the store is down: the change is queued (the background retries
        // save it once the store is back) instead of waiting for the store's timeout.
        let write_behind = self.cfg.mode == PersistMode::Sticky
            && (!self.cfg.write_through()
                || (self.waiting_retry(now) && self.mem.contains_key(&id)));
        if write_behind {
            let Some(was_dirty) = self.mem.get(&id).map(|e| e.dirty_since.is_some()) else {
                return self.finish(req, Step::Fail(self.conflict_err(&id)), now);
            };
            if !was_dirty && self.dirty >= self.cfg.write_queue_max {
                let e = self.queue_full_err();
                return self.finish(req, Step::Fail(e), now);
            }
            self.set_dirty(&id, now);
            if let Some(e) = self.mem.get_mut(&id) {
                e.session = next;
            }
            return self.finish(req, Step::Done { queued: true }, now);
        }
        let new_version = version.map_or(1, |v| v + 1);
        let row = match self.row(&next, new_version, true) {
            Ok(row) => row,
            Err(e) => return self.finish(req, Step::Fail(e), now),
        };
        let expect = version.map_or(Expect::Absent, Expect::Version);
        let access = next.last_access;
        self.req_io(
            req,
            ReqState::Saving {
                session: next,
                version: new_version,
                access,
            },
            OpKind::Save { row, expect },
        );
    }

    /// The request went away without `end` (client gone, handler panicked): its lock is
    /// released and nothing is saved.
    pub fn abort(&mut self, req: ReqId, now: Millis) {
        let Some(r) = self.reqs.remove(&req) else {
            return;
        };
        if let Some(l) = self.locks.get_mut(&r.id) {
            l.waiters.retain(|w| *w != req);
        }
        if let Some(e) = self.mem.get(&r.id) {
            if e.synced.is_none() && e.dirty_since.is_none() {
                self.drop_entry(&r.id);
            }
        }
        self.release(r.id, Holder::Req(req), now);
    }

    // ---- store replies -------------------------------------------------------------

    /// The store's answer to the op that carried `token`.
    pub fn on_reply(&mut self, token: Token, reply: Reply, now: Millis) {
        if let Reply::Unavailable(reason) = &reply {
            self.stats.unavailable += 1;
            if self.degraded.is_none() {
                tracing::warn!(store = %self.p.store, app = %self.p.app, %reason, "session store unavailable");
            }
            self.degraded = Some(reason.clone());
        } else if self.degraded.take().is_some() {
            tracing::info!(store = %self.p.store, app = %self.p.app, "session store available again");
            self.retry_wait = RETRY_MIN_MS;
            self.retry_at = now;
        }
        match token {
            Token::Req(req) => self.on_req_reply(req, reply, now),
            Token::Background(b) => self.on_bg_reply(b, reply, now),
        }
    }

    fn on_req_reply(&mut self, req: ReqId, reply: Reply, now: Millis) {
        let Some(r) = self.reqs.get_mut(&req) else {
            return; // aborted meanwhile
        };
        let id = r.id.clone();
        let state = std::mem::replace(&mut r.state, ReqState::WaitingLock);
        match (state, reply) {
            (ReqState::Verifying, Reply::Version(v)) => self.on_verified(req, id, v, now),
            (ReqState::Verifying, _) => {
                // Store down: serve the memory copy unverified (sticky keeps serving), and
                // let no other request probe it before the next retry.
                self.schedule_retry(now);
                self.stats.served_unverified += 1;
                self.serve_memory(req, id);
            }
            (ReqState::Loading, Reply::Loaded(row)) => self.on_loaded(req, id, row, now),
            (
                ReqState::TakeoverNew {
                    old_version,
                    session,
                },
                Reply::Saved(SaveResult::Done),
            ) => self.tombstone(req, id, old_version, session),
            (
                ReqState::TakeoverOld {
                    session,
                    tomb_version,
                },
                Reply::Saved(SaveResult::Done),
            ) => self.took_over(req, id, session, tomb_version, now),
            (ReqState::TakeoverOld { session, .. }, Reply::Saved(SaveResult::Conflict { .. })) => {
                // The old owner wrote after our load: our copy is stale. Drop the new row.
                self.conflict(&id, "takeover lost the compare-and-set on the old id");
                self.bg_io(
                    Bg::Cleanup,
                    OpKind::Remove {
                        app: self.p.app.clone(),
                        id: session.id,
                        expect_version: 1,
                    },
                );
                self.finish(req, Step::Fail(self.conflict_err(&id)), now)
            }
            (
                ReqState::Saving {
                    session,
                    version,
                    access,
                },
                Reply::Saved(res),
            ) => self.on_saved(req, id, session, version, access, res, now),
            (ReqState::Saving { session, .. }, Reply::Unavailable(reason)) => {
                self.save_unavailable(req, id, session, reason, now)
            }
            (ReqState::Removing, Reply::Removed(RemoveResult::Done)) => {
                self.drop_entry(&id);
                self.finish(req, Step::Done { queued: false }, now)
            }
            (ReqState::Removing, Reply::Removed(RemoveResult::Conflict)) => {
                self.conflict(&id, "invalidation found a newer row");
                self.drop_entry(&id);
                self.finish(req, Step::Fail(self.conflict_err(&id)), now)
            }
            (state, Reply::Unavailable(reason)) => {
                tracing::debug!(session = %id, ?state, "store unavailable during request");
                self.finish(req, Step::Fail(self.unavailable_err(reason)), now)
            }
            (state, reply) => {
                tracing::error!(session = %id, ?state, ?reply, "store reply does not match the operation");
                let e = self.unavailable_err("reply does not match the operation".into());
                self.finish(req, Step::Fail(e), now)
            }
        }
    }

    fn on_verified(&mut self, req: ReqId, id: SessionId, v: Option<u64>, now: Millis) {
        let Some(e) = self.mem.get(&id) else {
            return self.load(req, id);
        };
        if v == e.synced {
            return self.serve_memory(req, id);
        }
        if e.dirty_since.is_some() {
            self.conflict(
                &id,
                "memory copy with unsaved changes is older than the store",
            );
        }
        self.drop_entry(&id);
        match v {
            None => self.finish(req, Step::Missing, now),
            Some(_) => self.load(req, id),
        }
    }

    fn on_loaded(&mut self, req: ReqId, id: SessionId, row: Option<Row>, now: Millis) {
        let Some(row) = row else {
            self.drop_entry(&id);
            return self.finish(req, Step::Missing, now);
        };
        let record = match record::decode(&id, &row.data) {
            Ok(r) => r,
            Err(e) => {
                self.stats.decode_errors += 1;
                tracing::error!(session = %id, error = %e, "stored session unreadable");
                return self.finish(req, Step::Fail(e.into()), now);
            }
        };
        let session = match record {
            Record::Moved { new_id, .. } => return self.follow(req, id, new_id, now),
            Record::Live(s) if row.valid && !self.expired_in_store(&s, now) => s,
            Record::Live(_) => return self.finish(req, Step::Missing, now),
        };
        match self.cfg.mode {
            PersistMode::PerRequest => {
                let held = Held {
                    session: session.clone(),
                    version: Some(row.version),
                    stored_access: row.last_access_ms,
                };
                self.serving(req, Some(held), session);
            }
            PersistMode::Sticky if row.owner.as_deref().is_none_or(|o| o == self.p.route) => {
                self.mem.insert(
                    id,
                    Box::new(Entry {
                        session: session.clone(),
                        synced: Some(row.version),
                        stored_access: row.last_access_ms,
                        dirty_since: None,
                        moved: false,
                    }),
                );
                self.serving(req, None, session);
            }
            PersistMode::Sticky => self.take_over(req, row.version, session, now),
        }
    }

    /// The row is owned by another node: continue the session here under a new id (so no
    /// other node ever serves a stale copy under the old one).
    fn take_over(&mut self, req: ReqId, old_version: u64, mut session: Session, now: Millis) {
        session.id = SessionId::generate(&mut self.rng);
        session.route = self.p.route.clone();
        let row = match self.row(&session, 1, true) {
            Ok(row) => row,
            Err(e) => return self.finish(req, Step::Fail(e), now),
        };
        self.req_io(
            req,
            ReqState::TakeoverNew {
                old_version,
                session,
            },
            OpKind::Save {
                row,
                expect: Expect::Absent,
            },
        );
    }

    fn tombstone(&mut self, req: ReqId, old: SessionId, old_version: u64, session: Session) {
        let rec = Record::Moved {
            new_id: session.id.clone(),
            new_route: self.p.route.clone(),
        };
        let data = match record::encode(&old, &rec) {
            Ok(d) => d,
            Err(e) => return self.finish(req, Step::Fail(e.into()), 0),
        };
        let row = Row {
            app: self.p.app.clone(),
            id: old,
            version: old_version + 1,
            valid: false,
            max_inactive_s: session.max_inactive_secs,
            last_access_ms: session.last_access,
            owner: Some(self.p.route.clone()),
            data,
        };
        self.req_io(
            req,
            ReqState::TakeoverOld {
                session,
                tomb_version: old_version + 1,
            },
            OpKind::Save {
                row,
                expect: Expect::Version(old_version),
            },
        );
    }

    fn took_over(
        &mut self,
        req: ReqId,
        old: SessionId,
        session: Session,
        tomb_version: u64,
        now: Millis,
    ) {
        self.stats.takeovers += 1;
        let new_id = session.id.clone();
        tracing::info!(old = %old, new = %new_id, "session taken over from another node");
        self.out.push_back(Output::Moved(Moved {
            app: self.p.app.clone(),
            old_id: old.clone(),
            new_id: new_id.clone(),
            version: tomb_version,
        }));
        self.drop_entry(&old);
        self.mem.insert(
            new_id.clone(),
            Box::new(Entry {
                session: session.clone(),
                synced: Some(1),
                stored_access: session.last_access,
                dirty_since: None,
                moved: false,
            }),
        );
        self.locks.insert(
            new_id.clone(),
            Lock {
                holder: Holder::Req(req),
                waiters: VecDeque::new(),
            },
        );
        if let Some(r) = self.reqs.get_mut(&req) {
            r.id = new_id.clone();
        }
        self.release(old, Holder::Req(req), now);
        self.serving(req, None, session);
    }

    /// The id was moved by a takeover: continue with the new one.
    fn follow(&mut self, req: ReqId, old: SessionId, new_id: SessionId, now: Millis) {
        self.stats.tombstones_followed += 1;
        self.drop_entry(&old);
        let hops = match self.reqs.get_mut(&req) {
            Some(r) => {
                r.hops += 1;
                r.id = new_id.clone();
                r.hops
            }
            None => return,
        };
        self.release(old, Holder::Req(req), now);
        if hops > MAX_HOPS {
            self.reqs.remove(&req);
            return self.step(req, Step::Missing);
        }
        self.acquire(req, new_id, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_saved(
        &mut self,
        req: ReqId,
        id: SessionId,
        session: Session,
        version: u64,
        access: Millis,
        res: SaveResult,
        now: Millis,
    ) {
        match res {
            SaveResult::Done => {
                if let Some(e) = self.mem.get_mut(&id) {
                    e.session = session;
                    e.synced = Some(version);
                    e.stored_access = access;
                }
                self.clear_dirty(&id);
                self.finish(req, Step::Done { queued: false }, now)
            }
            SaveResult::Conflict { current } => {
                self.conflict(&id, &format!("save of version {version} found {current:?}"));
                self.drop_entry(&id);
                self.finish(req, Step::Fail(self.conflict_err(&id)), now)
            }
        }
    }

    fn save_unavailable(
        &mut self,
        req: ReqId,
        id: SessionId,
        session: Session,
        reason: String,
        now: Millis,
    ) {
        if self.cfg.mode == PersistMode::PerRequest {
            return self.finish(req, Step::Fail(self.unavailable_err(reason)), now);
        }
        let Some(was_dirty) = self.mem.get(&id).map(|e| e.dirty_since.is_some()) else {
            return self.finish(req, Step::Fail(self.unavailable_err(reason)), now);
        };
        if !was_dirty && self.dirty >= self.cfg.write_queue_max {
            let e = self.queue_full_err();
            return self.finish(req, Step::Fail(e), now);
        }
        self.set_dirty(&id, now);
        if let Some(e) = self.mem.get_mut(&id) {
            e.session = session;
        }
        self.schedule_retry(now);
        self.finish(req, Step::Done { queued: true }, now)
    }

    // ---- cluster -------------------------------------------------------------------

    /// Another member took `old_id` over: drop the memory copy here. Unsaved changes in it
    /// are a conflict (counted, logged); they could never be saved (the row moved on).
    pub fn on_moved(&mut self, m: &Moved, _now: Millis) {
        if m.app != self.p.app {
            return;
        }
        let locked = self.locks.contains_key(&m.old_id);
        let Some(e) = self.mem.get_mut(&m.old_id) else {
            return;
        };
        self.stats.moved_dropped += 1;
        if locked {
            e.moved = true;
            return;
        }
        if e.dirty_since.is_some() {
            self.conflict(&m.old_id, "moved to another node with unsaved changes here");
        }
        self.drop_entry(&m.old_id);
    }

    // ---- background ----------------------------------------------------------------

    /// The background processor's tick (Tomcat: every 10 s). Retries queued writes (with
    /// backoff) on every tick; runs the pass every `process_expires_frequency` ticks.
    pub fn tick(&mut self, now: Millis) {
        self.ticks += 1;
        if self.stopping {
            return;
        }
        if self
            .ticks
            .is_multiple_of(u64::from(self.cfg.process_expires_frequency))
        {
            self.pass(now);
        } else if self.cfg.write_through() && self.dirty > 0 && now >= self.retry_at {
            self.backups(now);
        }
    }

    /// Tomcat's order: expire, max idle swap, max active swap, max idle backup, store expiry.
    fn pass(&mut self, now: Millis) {
        if self.cfg.mode == PersistMode::Sticky {
            self.expire(now);
            self.idle_swaps(now);
            self.active_swaps(now);
            if self.degraded.is_none() || now >= self.retry_at {
                self.backups(now);
            }
        }
        // While degraded the sweep doubles as the probe that notices the store is back.
        if !self.sweeping && (self.degraded.is_none() || now >= self.retry_at) {
            self.sweeping = true;
            self.stats.expiry_queries += 1;
            self.bg_io(
                Bg::Sweep,
                OpKind::Expired {
                    app: self.p.app.clone(),
                    now,
                    limit: self.cfg.sweep_limit,
                },
            );
        }
    }

    fn free_ids(&self, mut pick: impl FnMut(&Entry) -> bool) -> Vec<SessionId> {
        let mut ids: Vec<(Millis, SessionId)> = self
            .mem
            .iter()
            .filter(|(id, e)| !self.locks.contains_key(id) && pick(e))
            .map(|(id, e)| (e.session.last_access, id.clone()))
            .collect();
        ids.sort(); // oldest first, and a fixed order for deterministic runs
        ids.into_iter().map(|(_, id)| id).collect()
    }

    fn expire(&mut self, now: Millis) {
        for id in self.free_ids(|e| e.session.idle_beyond(now, 1)) {
            let Some(synced) = self.mem.get(&id).map(|e| e.synced) else {
                continue;
            };
            match synced {
                None => {
                    self.stats.expired += 1;
                    self.drop_entry(&id);
                }
                Some(v) => self.bg_locked(
                    &id,
                    Bg::Expire { id: id.clone() },
                    OpKind::Remove {
                        app: self.p.app.clone(),
                        id: id.clone(),
                        expect_version: v,
                    },
                ),
            }
        }
    }

    fn idle_swaps(&mut self, now: Millis) {
        if self.cfg.max_idle_swap < 0 {
            return;
        }
        let idle = secs_ms(self.cfg.max_idle_swap).max(secs_ms(self.cfg.min_idle_swap));
        for id in self.free_ids(|e| now.saturating_sub(e.session.last_access) >= idle) {
            self.swap_out(id, now);
        }
    }

    fn active_swaps(&mut self, now: Millis) {
        let Ok(max) = usize::try_from(self.cfg.max_active_sessions) else {
            return;
        };
        if self.mem.len() <= max {
            return;
        }
        let target = max * 9 / 10;
        let min_idle = secs_ms(self.cfg.min_idle_swap);
        let mut excess = self.mem.len() - target;
        for id in self.free_ids(|e| now.saturating_sub(e.session.last_access) >= min_idle) {
            if excess == 0 {
                break;
            }
            self.swap_out(id, now);
            excess -= 1;
        }
    }

    /// Saves (if needed) and drops a memory entry.
    fn swap_out(&mut self, id: SessionId, now: Millis) {
        match self.mem.get(&id) {
            Some(e) if e.dirty_since.is_some() => self.bg_save(id, true, now),
            Some(_) => {
                self.stats.swapped_out += 1;
                self.drop_entry(&id);
            }
            None => {}
        }
    }

    fn backups(&mut self, now: Millis) {
        let wait = if self.cfg.max_idle_backup > 0 {
            secs_ms(self.cfg.max_idle_backup)
        } else if self.cfg.write_through() {
            0
        } else {
            return; // -1: only on swap-out and stop
        };
        for id in self.free_ids(|e| {
            e.dirty_since.is_some() && now.saturating_sub(e.session.last_access) >= wait
        }) {
            self.bg_save(id, false, now);
        }
    }

    /// Before a new session in sticky mode: under `max_active_sessions`, after dropping
    /// idle sessions that are already in the store. False: refuse.
    ///
    /// Choosing them sorts the memory (`free_ids`), so one pass makes room for the next
    /// `max / 64` new sessions too: at the limit, a creation costs an amortized fraction of
    /// that sort instead of a whole one (100,000 creations at a limit of 10,000 went from
    /// CPU-bound at ~450/s to the speed of the store). The sessions dropped are clean
    /// copies of stored rows, the oldest first: dropping a few more costs at most a load.
    fn make_room(&mut self, now: Millis) -> bool {
        let Ok(max) = usize::try_from(self.cfg.max_active_sessions) else {
            return true;
        };
        if self.mem.len() < max {
            return true;
        }
        let keep = max.saturating_sub(1 + max / 64);
        let min_idle = secs_ms(self.cfg.min_idle_swap);
        for id in self.free_ids(|e| {
            e.dirty_since.is_none()
                && e.synced.is_some()
                && now.saturating_sub(e.session.last_access) >= min_idle
        }) {
            if self.mem.len() <= keep {
                break;
            }
            self.stats.swapped_out += 1;
            self.drop_entry(&id);
        }
        self.mem.len() < max
    }

    fn bg_save(&mut self, id: SessionId, drop_after: bool, _now: Millis) {
        let Some(e) = self.mem.get(&id) else {
            return;
        };
        let version = e.synced.map_or(1, |v| v + 1);
        let expect = e.synced.map_or(Expect::Absent, Expect::Version);
        let access = e.session.last_access;
        let row = match self.row(&e.session, version, true) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(session = %id, error = %err, "cannot encode session; dropped from the write queue");
                self.stats.decode_errors += 1;
                self.drop_entry(&id);
                return;
            }
        };
        self.bg_locked(
            &id,
            Bg::Save {
                id: id.clone(),
                version,
                access,
                drop_after,
            },
            OpKind::Save { row, expect },
        );
    }

    fn on_bg_reply(&mut self, b: u64, reply: Reply, now: Millis) {
        let Some(job) = self.bg.remove(&b) else {
            return;
        };
        let holder = Holder::Background(b);
        match (job, reply) {
            (
                Bg::Save {
                    id,
                    version,
                    access,
                    drop_after,
                },
                Reply::Saved(SaveResult::Done),
            ) => {
                if let Some(e) = self.mem.get_mut(&id) {
                    e.synced = Some(version);
                    e.stored_access = access;
                }
                self.clear_dirty(&id);
                if drop_after {
                    self.stats.swapped_out += 1;
                    self.drop_entry(&id);
                }
                self.release(id, holder, now);
            }
            (Bg::Save { id, version, .. }, Reply::Saved(SaveResult::Conflict { current })) => {
                self.conflict(
                    &id,
                    &format!("background save of version {version} found {current:?}"),
                );
                self.drop_entry(&id);
                self.release(id, holder, now);
            }
            (Bg::Save { id, .. }, _) => {
                self.schedule_retry(now);
                if self.stopping {
                    tracing::error!(session = %id, store = %self.p.store, "store unavailable at stop: unsaved changes of this session are lost");
                    self.drop_entry(&id);
                }
                self.release(id, holder, now);
            }
            (Bg::Expire { id }, Reply::Removed(res)) => {
                if res == RemoveResult::Done {
                    self.stats.expired += 1;
                } else {
                    self.stats.dropped_not_owner += 1;
                }
                self.drop_entry(&id);
                self.release(id, holder, now);
            }
            (Bg::Expire { id }, _) => self.release(id, holder, now),
            (Bg::Sweep, Reply::Expired(rows)) => {
                self.sweeping = false;
                for (id, _version) in rows {
                    if self.mem.contains_key(&id) || self.locks.contains_key(&id) {
                        continue; // in use here: its own expiry decides
                    }
                    self.bg_locked(
                        &id,
                        Bg::SweepLoad { id: id.clone() },
                        OpKind::Load {
                            app: self.p.app.clone(),
                            id: id.clone(),
                        },
                    );
                }
            }
            (Bg::Sweep, _) => self.sweeping = false,
            (Bg::SweepLoad { id }, Reply::Loaded(Some(row))) => {
                let expired = match record::decode(&id, &row.data) {
                    Ok(Record::Live(s)) => self.expired_in_store(&s, now),
                    Ok(Record::Moved { .. }) => {
                        row.max_inactive_s > 0
                            && now.saturating_sub(row.last_access_ms)
                                > u64::from(row.max_inactive_s) * 1000
                    }
                    Err(e) => {
                        self.stats.decode_errors += 1;
                        tracing::error!(session = %id, error = %e, "stored session unreadable; left in the store");
                        false
                    }
                };
                if expired {
                    self.bg.insert(b, Bg::SweepRemove { id: id.clone() });
                    self.push_io(
                        Token::Background(b),
                        OpKind::Remove {
                            app: self.p.app.clone(),
                            id,
                            expect_version: row.version,
                        },
                    );
                } else {
                    self.release(id, holder, now);
                }
            }
            (Bg::SweepLoad { id }, _) => self.release(id, holder, now),
            (Bg::SweepRemove { id }, reply) => {
                if reply == Reply::Removed(RemoveResult::Done) {
                    self.stats.store_expired += 1;
                }
                self.release(id, holder, now);
            }
            (Bg::Cleanup, _) => {}
        }
    }

    /// The store is down and the next retry is not due: requests do not ask it.
    fn waiting_retry(&self, now: Millis) -> bool {
        self.degraded.is_some() && now < self.retry_at
    }

    fn schedule_retry(&mut self, now: Millis) {
        self.retry_at = now + self.retry_wait;
        self.retry_wait = (self.retry_wait * 2).min(self.cfg.retry_max_ms.max(RETRY_MIN_MS));
    }

    /// Stop: with `save_on_restart`, every session with unsaved changes is saved
    /// (compare-and-set; a stale copy loses and is logged); memory is emptied. Requests
    /// still running keep their sessions until they end; call when they have (then wait
    /// for [`PersistentCore::is_idle`], executing the outputs).
    pub fn stop(&mut self, now: Millis) {
        self.stopping = true;
        for id in self.free_ids(|_| true) {
            let dirty = self.mem.get(&id).is_some_and(|e| e.dirty_since.is_some());
            if dirty && self.cfg.save_on_restart {
                self.bg_save(id, true, now);
            } else {
                if dirty {
                    tracing::warn!(session = %id, "save_on_restart = false: unsaved changes discarded at stop");
                }
                self.drop_entry(&id);
            }
        }
    }

    // ---- helpers -------------------------------------------------------------------

    fn acquire(&mut self, req: ReqId, id: SessionId, now: Millis) {
        if let Some(r) = self.reqs.get_mut(&req) {
            r.state = ReqState::WaitingLock;
            r.id = id.clone();
        }
        match self.locks.get_mut(&id) {
            Some(l) => l.waiters.push_back(req),
            None => {
                self.locks.insert(
                    id.clone(),
                    Lock {
                        holder: Holder::Req(req),
                        waiters: VecDeque::new(),
                    },
                );
                self.start(req, id, now);
            }
        }
    }

    /// The request holds the lock of `id`: find the session.
    fn start(&mut self, req: ReqId, id: SessionId, now: Millis) {
        let in_mem = self.cfg.mode == PersistMode::Sticky && self.mem.contains_key(&id);
        if !in_mem {
            return self.load(req, id);
        }
        // While the store is down, a request does not wait for it (each op would take the
        // store's whole timeout): only one per retry interval probes it.
        if self.waiting_retry(now) {
            self.stats.served_unverified += 1;
            self.serve_memory(req, id);
        } else if self.cfg.verify_on_access {
            self.req_io(
                req,
                ReqState::Verifying,
                OpKind::Version {
                    app: self.p.app.clone(),
                    id,
                },
            );
        } else {
            self.serve_memory(req, id);
        }
    }

    fn load(&mut self, req: ReqId, id: SessionId) {
        self.req_io(
            req,
            ReqState::Loading,
            OpKind::Load {
                app: self.p.app.clone(),
                id,
            },
        );
    }

    fn serve_memory(&mut self, req: ReqId, id: SessionId) {
        match self.mem.get(&id) {
            Some(e) => {
                let s = e.session.clone();
                self.serving(req, None, s);
            }
            None => self.load(req, id),
        }
    }

    fn serving(&mut self, req: ReqId, held: Option<Held>, session: Session) {
        if let Some(r) = self.reqs.get_mut(&req) {
            r.state = ReqState::Serving { held };
        }
        self.step(req, Step::Serve(session));
    }

    /// Releases the lock of `id` held by `holder` and hands it to the next waiter.
    fn release(&mut self, id: SessionId, holder: Holder, now: Millis) {
        if self.locks.get(&id).is_none_or(|l| l.holder != holder) {
            return;
        }
        if self.mem.get(&id).is_some_and(|e| e.moved) {
            self.drop_entry(&id);
        }
        let next = self.locks.get_mut(&id).and_then(|l| l.waiters.pop_front());
        match next {
            Some(next) => {
                if let Some(l) = self.locks.get_mut(&id) {
                    l.holder = Holder::Req(next);
                }
                self.start(next, id, now);
            }
            None => {
                self.locks.remove(&id);
                if self.stopping {
                    self.stop_one(id, now);
                }
            }
        }
    }

    /// During stop, a session freed by its last request is saved or dropped.
    fn stop_one(&mut self, id: SessionId, now: Millis) {
        match self.mem.get(&id) {
            Some(e) if e.dirty_since.is_some() && self.cfg.save_on_restart => {
                self.bg_save(id, true, now)
            }
            Some(_) => self.drop_entry(&id),
            None => {}
        }
    }

    /// A request's answer: removes it and frees its lock.
    fn finish(&mut self, req: ReqId, step: Step, now: Millis) {
        self.step(req, step);
        if let Some(r) = self.reqs.remove(&req) {
            if let Some(e) = self.mem.get(&r.id) {
                if e.synced.is_none() && e.dirty_since.is_none() {
                    self.drop_entry(&r.id); // a new session that was never saved
                }
            }
            self.release(r.id, Holder::Req(req), now);
        }
    }

    fn step(&mut self, req: ReqId, step: Step) {
        self.out.push_back(Output::Step(req, step));
    }

    fn req_io(&mut self, req: ReqId, state: ReqState, kind: OpKind) {
        if let Some(r) = self.reqs.get_mut(&req) {
            r.state = state;
        }
        self.push_io(Token::Req(req), kind);
    }

    /// A background job holding the lock of `id`.
    fn bg_locked(&mut self, id: &SessionId, job: Bg, kind: OpKind) {
        let b = self.next_bg;
        self.locks.insert(
            id.clone(),
            Lock {
                holder: Holder::Background(b),
                waiters: VecDeque::new(),
            },
        );
        self.bg_io(job, kind);
    }

    fn bg_io(&mut self, job: Bg, kind: OpKind) {
        let b = self.next_bg;
        self.next_bg += 1;
        self.bg.insert(b, job);
        self.push_io(Token::Background(b), kind);
    }

    fn push_io(&mut self, token: Token, kind: OpKind) {
        match &kind {
            OpKind::Load { .. } => self.stats.loads += 1,
            OpKind::Version { .. } => self.stats.version_checks += 1,
            OpKind::Save { .. } => self.stats.saves += 1,
            OpKind::Remove { .. } => self.stats.removes += 1,
            OpKind::Expired { .. } => {}
        }
        self.out.push_back(Output::Io(Op { token, kind }));
    }

    fn row(&self, s: &Session, version: u64, valid: bool) -> Result<Row, PersistError> {
        let mut stored = s.clone();
        stored.is_new = false;
        let data = record::encode(&s.id, &Record::Live(stored))?;
        Ok(Row {
            app: self.p.app.clone(),
            id: s.id.clone(),
            version,
            valid,
            max_inactive_s: s.max_inactive_secs,
            last_access_ms: s.last_access,
            owner: Some(self.p.route.clone()),
            data,
        })
    }

    /// Expired as far as the store can tell: idle beyond the interval plus the touch lag
    /// (the stored `last_access` may be up to a quarter interval behind the true one).
    fn expired_in_store(&self, s: &Session, now: Millis) -> bool {
        match touch_threshold(s, self.p.max_inactive_secs) {
            None => false,
            Some(lag) => {
                now.saturating_sub(s.last_access) > u64::from(s.max_inactive_secs) * 1000 + lag
            }
        }
    }

    fn set_dirty(&mut self, id: &SessionId, now: Millis) {
        if let Some(e) = self.mem.get_mut(id) {
            if e.dirty_since.is_none() {
                e.dirty_since = Some(now);
                self.dirty += 1;
            }
        }
    }

    fn clear_dirty(&mut self, id: &SessionId) {
        if let Some(e) = self.mem.get_mut(id) {
            if e.dirty_since.take().is_some() {
                self.dirty -= 1;
            }
        }
    }

    fn drop_entry(&mut self, id: &SessionId) {
        if let Some(e) = self.mem.remove(id) {
            if e.dirty_since.is_some() {
                self.dirty -= 1;
            }
        }
    }

    fn conflict(&mut self, id: &SessionId, what: &str) {
        self.stats.conflicts += 1;
        tracing::warn!(session = %id, app = %self.p.app, "session conflict: {what}; memory copy dropped, request not acknowledged");
    }

    fn conflict_err(&self, id: &SessionId) -> PersistError {
        PersistError::Conflict { id: id.to_string() }
    }

    fn unavailable_err(&self, reason: String) -> PersistError {
        PersistError::Unavailable {
            store: self.p.store.clone(),
            reason,
        }
    }

    fn queue_full_err(&mut self) -> PersistError {
        self.stats.queue_full += 1;
        PersistError::QueueFull {
            store: self.p.store.clone(),
            depth: self.dirty,
        }
    }

    fn stopping_err(&self) -> PersistError {
        PersistError::Stopping {
            app: self.p.app.clone(),
        }
    }
}

/// How far the stored `last_access` may lag before an access-only request saves the row:
/// a quarter of the smaller of the session's and the context's interval. `None`: the
/// session never expires.
fn touch_threshold(s: &Session, context_secs: u32) -> Option<u64> {
    if s.max_inactive_secs == 0 {
        return None;
    }
    let secs = if context_secs > 0 {
        s.max_inactive_secs.min(context_secs)
    } else {
        s.max_inactive_secs
    };
    Some(u64::from(secs) * 250)
}

/// Seconds from the config (-1 = off, read as 0) in ms.
fn secs_ms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0).saturating_mul(1000)
}
