//! `Core`: the state and helpers every manager shares (the sessions held here, members, id
//! generation, counters, message encoding), and the handlers that are the same for every
//! manager: expiry (`sweep`), answering a FETCH, asking for one, invalidation. Crate-private:
//! a manager holds a `Core` and [`forward_to_core!`] writes the `SessionManager` methods
//! that only read or write it.
use crate::error::SessionError;
use crate::id::SessionId;
use crate::manager::{ManagerConfig, Outgoing, ReplicationMode};
use crate::message::{self, Delta, SessionMessage};
use crate::session::{DeltaOp, Millis, Seen, Session, Stamp};
use crate::stats::{ManagerStats, MessageCounters};
use crate::versioned::{Entry, VersionedSessions};
use rand::rngs::StdRng;
use shoal_cluster::MemberId;
use std::collections::{BTreeMap, BTreeSet};

/// State and helpers common to both managers.
pub(crate) struct Core {
    pub(crate) ctx: String,
    pub(crate) local: MemberId,
    pub(crate) route: String,
    pub(crate) cfg: ManagerConfig,
    pub(crate) rng: StdRng,
    pub(crate) sessions: VersionedSessions,
    /// Other members (never contains `local`).
    pub(crate) members: BTreeSet<MemberId>,
    pub(crate) stats: ManagerStats,
    pub(crate) counters: MessageCounters,
    next_request: u64,
    /// Write-behind (a replicated context with a store): removals made here, taken by the
    /// runtime after each call (`SessionManager::take_removed`). `None`: not recorded.
    removed: Option<Vec<(SessionId, u64)>>,
    /// Some expected member is out of sight (a partition, a crash): changes made here now
    /// are marked ([`Entry::split_write`]) so a heal that discards them reports them.
    pub(crate) apart: bool,
    /// Read-your-writes: members asked for a session by `fetch_seen` that have not answered
    /// (see `read_gate.rs`).
    /// Keyed by session: the FETCH's request number (older answers do not count) and the
    /// members still to answer.
    ryw_asked: BTreeMap<SessionId, (u64, BTreeSet<MemberId>)>,
}

impl Core {
    pub(crate) fn new(
        context: &str,
        local: MemberId,
        route: &str,
        cfg: ManagerConfig,
        rng: StdRng,
    ) -> Self {
        let removed = (cfg.store.is_some()
            && cfg.manager != crate::manager::ManagerKind::Persistent)
            .then(Vec::new);
        Core {
            removed,
            ctx: context.to_owned(),
            local,
            route: route.to_owned(),
            cfg,
            rng,
            sessions: VersionedSessions::default(),
            members: BTreeSet::new(),
            stats: ManagerStats::default(),
            counters: MessageCounters::default(),
            next_request: 1,
            apart: false,
            ryw_asked: BTreeMap::new(),
        }
    }

    pub(crate) fn sync(&self) -> bool {
        self.cfg.replication == ReplicationMode::Sync
    }

    /// Expiry, the same for both managers: a primary expires a session idle past its max
    /// inactive interval and tells everyone; a replica drops one idle past twice that
    /// (Tomcat's rule), silently, so a session in use elsewhere never expires here.
    pub(crate) fn sweep(&mut self, now: Millis) -> Vec<Outgoing> {
        let mut expired = Vec::new();
        let mut dropped = Vec::new();
        for (id, e) in &self.sessions.entries {
            if e.primary && e.session.idle_beyond(now, 1) {
                expired.push((id.clone(), e.session.version));
            } else if !e.primary && e.session.idle_beyond(now, 2) {
                dropped.push((id.clone(), e.session.version));
            }
        }
        let mut out = Vec::new();
        for (id, version) in expired {
            self.sessions.remove(&id, version, now);
            self.note_removed(&id, version);
            self.stats.sessions_expired += 1;
            let (to, sync) = (self.all_members(), self.sync());
            out.extend(self.msg(to, &SessionMessage::Expired { id, version }, sync));
        }
        for (id, version) in dropped {
            self.sessions.remove(&id, version, now);
            self.stats.sessions_expired += 1;
        }
        out
    }

    /// Encodes `msg` for `to` and counts it; `None` when there is nobody to send to.
    pub(crate) fn msg(
        &mut self,
        to: Vec<MemberId>,
        msg: &SessionMessage,
        sync: bool,
    ) -> Option<Outgoing> {
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
    pub(crate) fn unapplied_ack(&self) -> Result<(), String> {
        if self.sync() {
            Err("missing earlier versions of this session; fetching it".into())
        } else {
            Ok(())
        }
    }

    pub(crate) fn all_members(&self) -> Vec<MemberId> {
        self.members.iter().copied().collect()
    }

    pub(crate) fn count_received(&mut self, msg: &SessionMessage) {
        self.counters.received[msg.kind().index()] += 1;
    }

    pub(crate) fn create(&mut self, now: Millis) -> Session {
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
        self.sessions.entries.insert(id, Box::new(e));
        self.stats.sessions_created += 1;
        s
    }

    /// ACCESSED is sent for an unchanged session once a quarter of its max inactive interval
    /// has passed since this node last replicated it, so replicas (which expire at 2x the
    /// interval) never expire a session in use, without a message per read.
    pub(crate) fn access_due(e: &Entry, now: Millis) -> bool {
        let quarter = u64::from(e.session.max_inactive_secs) * 250;
        // A session that never expires needs no keep-alive.
        quarter > 0 && now.saturating_sub(e.last_replicated) >= quarter
    }

    /// The ACCESSED keep-alive for a request that used `e` without changing it (`used`: it
    /// accessed the session and replicates), when one is due (see [`Core::access_due`]).
    pub(crate) fn keep_alive(e: &Entry, used: bool, now: Millis) -> Option<SessionMessage> {
        (used && Core::access_due(e, now)).then(|| SessionMessage::Accessed {
            id: e.session.id.clone(),
            version: e.session.version,
            last_access: now,
        })
    }

    /// The delta a request's `ops` made of `session` (already bumped from `prev`).
    pub(crate) fn delta(session: &Session, prev: Stamp, ops: Vec<DeltaOp>, now: Millis) -> Delta {
        Delta {
            id: session.id.clone(),
            version: session.version,
            prev,
            stamp: session.stamp,
            last_access: now,
            ops,
        }
    }

    /// Sends what a request's end made: synchronously in sync mode, except the ACCESSED
    /// keep-alive, which nobody waits for.
    pub(crate) fn send_end(
        &mut self,
        to: Vec<MemberId>,
        msg: &SessionMessage,
        sync: bool,
    ) -> Option<Outgoing> {
        let sync = sync && !matches!(msg, SessionMessage::Accessed { .. });
        self.msg(to, msg, sync)
    }

    /// Validates `ops` against the limits and applies them to the stored session.
    pub(crate) fn apply_request(
        &mut self,
        id: &SessionId,
        ops: &[DeltaOp],
        now: Millis,
    ) -> Result<(), SessionError> {
        let limits = self.cfg.limits.clone();
        let Some(e) = self.sessions.entries.get_mut(id) else {
            return Err(SessionError::NotFound(id.to_string()));
        };
        if let Err(err) = e.session.check_ops(ops, &limits) {
            self.stats.rejected_by_limits += 1;
            return Err(err);
        }
        e.session.apply_ops(ops);
        e.session.last_access = now;
        if !ops.is_empty() && self.apart {
            e.split_write = true;
        }
        Ok(())
    }

    pub(crate) fn fill_stats(&self, mut s: ManagerStats) -> ManagerStats {
        self.counters.fill(&mut s);
        s.active_sessions = self.sessions.len() as u64;
        s
    }

    pub(crate) fn purge(&mut self, now: Millis) {
        let ttl = (u64::from(self.cfg.max_inactive_secs) * 2000).max(300_000);
        self.sessions.purge_tombstones(now, ttl);
    }

    /// The next request number (FETCH, GET_ALL_SESSIONS), so answers can be matched.
    pub(crate) fn next_request(&mut self) -> u64 {
        let request = self.next_request;
        self.next_request += 1;
        request
    }

    /// Asks `from` for the whole session `id` (answered by FETCHED).
    pub(crate) fn request_fetch(&mut self, id: SessionId, from: MemberId) -> Option<Outgoing> {
        self.stats.fetches += 1;
        let request = self.next_request();
        self.msg(vec![from], &SessionMessage::Fetch { id, request }, false)
    }

    /// Answers a FETCH from `from`: the session as held here, or `None`.
    pub(crate) fn answer_fetch(
        &mut self,
        from: MemberId,
        id: SessionId,
        request: u64,
    ) -> Vec<Outgoing> {
        // The member takes this copy: what was written here apart is not lost when a copy
        // built on it comes back whole.
        let session = self.sessions.entries.get_mut(&id).map(|e| {
            e.split_write = false;
            e.session.clone()
        });
        let fetched = SessionMessage::Fetched {
            id,
            request,
            session,
        };
        self.msg(vec![from], &fetched, false).into_iter().collect()
    }

    /// See [`crate::manager::SessionManager::fetch_seen`].
    pub(crate) fn fetch_seen(&mut self, id: &SessionId, seen: &Seen) -> Vec<Outgoing> {
        let writer = seen.stamp.node;
        let to = if writer != self.local && self.members.contains(&writer) {
            vec![writer]
        } else {
            self.all_members()
        };
        self.stats.fetches += 1;
        self.stats.ryw_fetches += 1;
        let request = self.next_request();
        self.ryw_asked
            .insert(id.clone(), (request, to.iter().copied().collect()));
        let fetch = SessionMessage::Fetch {
            id: id.clone(),
            request,
        };
        self.msg(to, &fetch, false).into_iter().collect()
    }

    /// A FETCHED of `id` answering `request` came from `from` (with or without the session).
    pub(crate) fn fetch_answered(&mut self, from: MemberId, id: &SessionId, request: u64) {
        if let Some((asked_in, asked)) = self.ryw_asked.get_mut(id) {
            if *asked_in == request {
                asked.remove(&from);
            }
        }
    }

    /// See [`crate::manager::SessionManager::fetch_settled`]. A member that left no longer
    /// counts.
    pub(crate) fn fetch_settled(&self, id: &SessionId) -> bool {
        self.ryw_asked
            .get(id)
            .is_none_or(|(_, asked)| asked.iter().all(|m| !self.members.contains(m)))
    }

    /// See [`crate::manager::SessionManager::note_lost`].
    pub(crate) fn note_lost(&mut self, id: &SessionId, seen: &Seen, have: Option<u64>) {
        self.ryw_asked.remove(id);
        if self.sessions.removed_at_or_after(id, seen.version) {
            return; // invalidated or expired since: nothing was lost
        }
        self.stats.note_ryw_lost(id, seen.version, have);
    }

    /// A request invalidated `id` (held here at `version`): removed at `version + 1`, and
    /// EXPIRED for every member.
    pub(crate) fn invalidate(
        &mut self,
        id: SessionId,
        version: u64,
        now: Millis,
    ) -> Option<Outgoing> {
        self.sessions.remove(&id, version + 1, now);
        self.note_removed(&id, version + 1);
        self.stats.sessions_invalidated += 1;
        let (to, sync) = (self.all_members(), self.sync());
        let expired = SessionMessage::Expired {
            id,
            version: version + 1,
        };
        self.msg(to, &expired, sync)
    }

    /// An EXPIRED message: removes the session if held at `version` or below.
    pub(crate) fn on_expired(&mut self, id: &SessionId, version: u64, now: Millis) {
        if self.sessions.remove(id, version, now).is_some() {
            self.stats.sessions_expired += 1;
        }
    }

    /// See [`crate::manager::SessionManager::replication_failed`].
    pub(crate) fn replication_failed(&mut self, id: &SessionId) {
        if let Some(e) = self.sessions.entries.get_mut(id) {
            e.resync = true;
            e.unacked = true;
        }
    }

    /// Records a removal for the write-behind queue. Bounded: a manager driven without the
    /// runtime (nobody takes them) keeps only the latest 100,000.
    fn note_removed(&mut self, id: &SessionId, version: u64) {
        const MAX: usize = 100_000;
        if let Some(r) = &mut self.removed {
            if r.len() >= MAX {
                r.drain(..MAX / 2);
            }
            r.push((id.clone(), version));
        }
    }

    /// See [`crate::manager::SessionManager::take_removed`].
    pub(crate) fn take_removed(&mut self) -> Vec<(SessionId, u64)> {
        self.removed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// See [`crate::manager::SessionManager::adopt`]: `primary` for the DeltaManager (the
    /// adopting node serves it), not for the BackupManager (its next request takes
    /// ownership, which places backups and announces it).
    pub(crate) fn adopt(&mut self, session: Session, primary: bool, now: Millis) -> bool {
        if self.removed.is_none() || self.sessions.removed_at_or_after(&session.id, 0) {
            return false;
        }
        let id = session.id.clone();
        if !self.sessions.apply_full(session, now, &mut self.stats) {
            return false;
        }
        if let Some(e) = self.sessions.entries.get_mut(&id) {
            e.primary = primary;
            e.resync = true;
        }
        true
    }

    pub(crate) fn session(&self, id: &SessionId) -> Option<&Session> {
        self.sessions.get(id).map(|e| &e.session)
    }

    pub(crate) fn session_ids(&self) -> Vec<SessionId> {
        self.sessions.entries.keys().cloned().collect()
    }
}

/// Writes the [`crate::manager::SessionManager`] methods that are the same for every manager
/// (they only read or write its `core: Core` field), inside its `impl SessionManager` block.
macro_rules! forward_to_core {
    () => {
        fn context(&self) -> &str {
            &self.core.ctx
        }

        fn config(&self) -> &$crate::manager::ManagerConfig {
            &self.core.cfg
        }

        fn create(&mut self, now: $crate::session::Millis) -> $crate::session::Session {
            self.core.create(now)
        }

        fn session(&self, id: &$crate::id::SessionId) -> Option<&$crate::session::Session> {
            self.core.session(id)
        }

        fn session_ids(&self) -> Vec<$crate::id::SessionId> {
            self.core.session_ids()
        }

        fn replication_failed(&mut self, id: &$crate::id::SessionId) {
            self.core.replication_failed(id)
        }

        fn set_apart(&mut self, apart: bool) {
            self.core.apart = apart;
        }

        fn take_removed(&mut self) -> Vec<($crate::id::SessionId, u64)> {
            self.core.take_removed()
        }

        fn fetch_seen(
            &mut self,
            id: &$crate::id::SessionId,
            seen: &$crate::session::Seen,
            _now: $crate::session::Millis,
        ) -> Vec<$crate::manager::Outgoing> {
            self.core.fetch_seen(id, seen)
        }

        fn fetch_settled(&self, id: &$crate::id::SessionId) -> bool {
            self.core.fetch_settled(id)
        }

        fn note_lost(
            &mut self,
            id: &$crate::id::SessionId,
            seen: &$crate::session::Seen,
            have: Option<u64>,
        ) {
            self.core.note_lost(id, seen, have)
        }
    };
}
pub(crate) use forward_to_core;
