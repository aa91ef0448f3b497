//! DeltaManager: every node holds every session of the context (all-to-all).
//!
//! End of request: a new session goes out whole (CREATED), a changed one as a delta
//! (SESSION_DELTA, or CHANGE_SESSION_ID for a route-only change), an unchanged one as
//! ACCESSED now and then (see [`Core::access_due`]). A joining node asks one member for all
//! sessions (GET_ALL_SESSIONS → ALL_SESSION_DATA batches → TRANSFER_COMPLETE); if that member
//! fails, times out or lacks the context (NO_CONTEXT_MANAGER) it asks the next one. Messages
//! arriving meanwhile are queued and replayed in session-version order.
use crate::error::SessionError;
use crate::id::SessionId;
use crate::manager::{
    Core, Lookup, ManagerConfig, ManagerKind, Outgoing, Received, RequestEnd, SessionManager,
};
use crate::message::{Delta, SessionMessage};
use crate::session::{DeltaOp, Millis, Session};
use crate::stats::ManagerStats;
use crate::store::DeltaOutcome;
use shoal_cluster::MemberId;
use std::collections::BTreeSet;

/// How long changes are forwarded to a member after sending it the state (see `joiners`):
/// longer than any member takes to learn of the join.
const JOIN_FORWARD_MS: Millis = 10_000;

pub struct DeltaManager {
    core: Core,
    transfer: Option<Transfer>,
    /// Members this node recently sent its state to, and until when. A writer that had not
    /// yet seen such a member join did not send it its change, and the snapshot may have
    /// been taken before the change arrived here: so changes received from others are
    /// forwarded to recent joiners for a while (duplicates are ignored by version).
    joiners: Vec<(MemberId, Millis)>,
    /// `start` saw no other member (see `member_added`).
    started_alone: bool,
}

/// A state transfer in progress (this node is joining).
struct Transfer {
    from: MemberId,
    request: u64,
    deadline: Millis,
    asked: BTreeSet<MemberId>,
    queued: Vec<(MemberId, SessionMessage)>,
    started: Millis,
    sessions: u64,
}

impl DeltaManager {
    pub fn new(core: Core) -> Self {
        DeltaManager {
            core,
            transfer: None,
            joiners: Vec::new(),
            started_alone: false,
        }
    }

    fn begin_transfer(&mut self, now: Millis) -> Vec<Outgoing> {
        self.transfer = Some(Transfer {
            from: self.core.local,
            request: 0,
            deadline: now,
            asked: BTreeSet::new(),
            queued: Vec::new(),
            started: now,
            sessions: 0,
        });
        self.ask_next(now)
    }

    /// Asks the next member not yet asked; finishes the transfer when none is left.
    fn ask_next(&mut self, now: Millis) -> Vec<Outgoing> {
        let Some(t) = self.transfer.as_mut() else {
            return vec![];
        };
        let next = self
            .core
            .members
            .iter()
            .find(|m| !t.asked.contains(m))
            .copied();
        let Some(m) = next else {
            tracing::warn!(context = %self.core.ctx, "state transfer: no member left to ask; starting with {} sessions", t.sessions);
            return self.finish_transfer(now);
        };
        t.asked.insert(m);
        t.from = m;
        t.request = self.core.next_request;
        t.deadline = now + self.core.cfg.state_transfer_timeout_secs * 1000;
        self.core.next_request += 1;
        let msg = SessionMessage::GetAllSessions { request: t.request };
        self.core.msg(vec![m], &msg, false).into_iter().collect()
    }

    fn finish_transfer(&mut self, now: Millis) -> Vec<Outgoing> {
        let Some(mut t) = self.transfer.take() else {
            return vec![];
        };
        self.core.stats.state_transfers += 1;
        self.core.stats.last_transfer_ms = now.saturating_sub(t.started);
        self.core.stats.last_transfer_sessions = t.sessions;
        // Replay what arrived meanwhile in session-version order (stable for equal versions).
        t.queued.sort_by_key(|(_, m)| message_version(m));
        let mut out = Vec::new();
        for (from, msg) in t.queued {
            out.extend(self.handle_message(from, msg, now).out);
        }
        out
    }

    fn serve_transfer(&mut self, to: MemberId, request: u64, now: Millis) -> Vec<Outgoing> {
        if self.transfer.is_some() {
            // Our own state is incomplete: let the joiner ask someone else.
            let msg = SessionMessage::NoContextManager { request };
            return self.core.msg(vec![to], &msg, false).into_iter().collect();
        }
        self.core.stats.state_transfers_served += 1;
        self.joiners.retain(|(m, _)| *m != to);
        self.joiners.push((to, now + JOIN_FORWARD_MS));
        let size = self.core.cfg.send_all_sessions_size.max(1);
        let all: Vec<Session> = self
            .core
            .store
            .entries
            .values()
            .map(|e| e.session.clone())
            .collect();
        let total = all.len() as u64;
        let mut out = Vec::new();
        let mut batch = 0u32;
        for chunk in all.chunks(size) {
            let msg = SessionMessage::AllSessionData {
                request,
                batch,
                sessions: chunk.to_vec(),
            };
            out.extend(self.core.msg(vec![to], &msg, false));
            batch += 1;
        }
        let msg = SessionMessage::TransferComplete {
            request,
            batches: batch,
            sessions: total,
        };
        out.extend(self.core.msg(vec![to], &msg, false));
        out
    }

    fn fetch(&mut self, id: SessionId, from: MemberId) -> Vec<Outgoing> {
        self.core.stats.fetches += 1;
        let request = self.core.next_request;
        self.core.next_request += 1;
        self.core
            .msg(vec![from], &SessionMessage::Fetch { id, request }, false)
            .into_iter()
            .collect()
    }

    fn on_delta(&mut self, from: MemberId, d: Delta, now: Millis) -> Received {
        let id = d.id.clone();
        match self
            .core
            .store
            .apply_delta(from, d, now, &mut self.core.stats)
        {
            DeltaOutcome::Applied | DeltaOutcome::Stale => Received::default(),
            // Async mode reorders: wait for the gap to fill. Sync mode never reorders, so a
            // gap means a lost message: repair now and do not acknowledge an unapplied write.
            DeltaOutcome::Buffered if !self.core.sync() => Received::default(),
            DeltaOutcome::Buffered | DeltaOutcome::Unknown => {
                let ack = self.core.unapplied_ack();
                Received {
                    out: self.fetch(id, from),
                    ack,
                }
            }
            DeltaOutcome::Conflict { incoming_wins } => {
                let out = if incoming_wins {
                    self.fetch(id, from)
                } else {
                    vec![]
                };
                Received {
                    out,
                    ack: Err("conflicting concurrent write of this session".into()),
                }
            }
        }
    }

    fn forward_to_joiners(
        &mut self,
        from: MemberId,
        msg: &SessionMessage,
        now: Millis,
    ) -> Vec<Outgoing> {
        if self.joiners.is_empty() || self.transfer.is_some() {
            return vec![];
        }
        self.joiners.retain(|(_, until)| *until > now);
        let data = matches!(
            msg,
            SessionMessage::Created(_)
                | SessionMessage::SessionDelta(_)
                | SessionMessage::ChangeSessionId(_)
                | SessionMessage::Expired { .. }
        );
        let to: Vec<MemberId> = self
            .joiners
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| *m != from)
            .collect();
        if !data || to.is_empty() {
            return vec![];
        }
        self.core.msg(to, msg, false).into_iter().collect()
    }

    fn sweep(&mut self, now: Millis) -> Vec<Outgoing> {
        let mut expired = Vec::new();
        let mut dropped = Vec::new();
        for (id, e) in &self.core.store.entries {
            if e.primary && e.session.idle_beyond(now, 1) {
                expired.push((id.clone(), e.session.version));
            } else if !e.primary && e.session.idle_beyond(now, 2) {
                dropped.push((id.clone(), e.session.version));
            }
        }
        let mut out = Vec::new();
        for (id, version) in expired {
            self.core.store.remove(&id, version, now);
            self.core.stats.sessions_expired += 1;
            let to = self.core.all_members();
            let sync = self.core.sync();
            out.extend(
                self.core
                    .msg(to, &SessionMessage::Expired { id, version }, sync),
            );
        }
        for (id, version) in dropped {
            self.core.store.remove(&id, version, now);
            self.core.stats.sessions_expired += 1;
        }
        out
    }
}

/// The session version a message carries (0 for messages about no single session).
fn message_version(m: &SessionMessage) -> u64 {
    match m {
        SessionMessage::Created(s) => s.version,
        SessionMessage::SessionDelta(d) | SessionMessage::ChangeSessionId(d) => d.version,
        SessionMessage::Expired { version, .. } | SessionMessage::Accessed { version, .. } => {
            *version
        }
        _ => 0,
    }
}

impl SessionManager for DeltaManager {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Delta
    }
    fn context(&self) -> &str {
        &self.core.ctx
    }
    fn config(&self) -> &ManagerConfig {
        &self.core.cfg
    }

    fn start(&mut self, members: &[MemberId], now: Millis) -> Vec<Outgoing> {
        self.core
            .members
            .extend(members.iter().filter(|m| **m != self.core.local));
        if self.core.members.is_empty() {
            // Maybe alone, maybe the channel has not found the others yet: see member_added.
            self.started_alone = true;
            return vec![];
        }
        self.begin_transfer(now)
    }

    fn is_ready(&self) -> bool {
        self.transfer.is_none()
    }

    fn create(&mut self, now: Millis) -> Session {
        self.core.create(now)
    }

    fn find(&mut self, id: &SessionId, _now: Millis) -> Lookup {
        match self.core.store.get(id) {
            Some(e) => Lookup::Found(e.session.clone()),
            None => Lookup::Missing,
        }
    }

    fn end_request(&mut self, end: RequestEnd, now: Millis) -> Result<Vec<Outgoing>, SessionError> {
        let Some(id) = end.id else { return Ok(vec![]) };
        let Some(e) = self.core.store.get(&id) else {
            return Err(SessionError::NotFound(id.to_string()));
        };
        let (was_new, prev, version) = (e.session.is_new, e.session.stamp, e.session.version);
        let sync = self.core.sync();
        let to = self.core.all_members();
        if end.invalidate {
            self.core.store.remove(&id, version + 1, now);
            self.core.stats.sessions_invalidated += 1;
            return Ok(self
                .core
                .msg(
                    to,
                    &SessionMessage::Expired {
                        id,
                        version: version + 1,
                    },
                    sync,
                )
                .into_iter()
                .collect());
        }
        self.core.apply_request(&id, &end.ops, now)?;
        let (local, whole) = (self.core.local, self.core.cfg.replicate_whole_session);
        let Some(e) = self.core.store.entries.get_mut(&id) else {
            return Err(SessionError::NotFound(id.to_string()));
        };
        e.primary = true;
        let changed = !end.ops.is_empty();
        let msg = if was_new || changed {
            e.session.bump(now, local);
            e.session.is_new = false;
            if was_new || whole {
                SessionMessage::Created(e.session.clone())
            } else {
                let route_only = end.ops.iter().all(|op| matches!(op, DeltaOp::Route(_)));
                let d = Delta {
                    id: id.clone(),
                    version: e.session.version,
                    prev,
                    stamp: e.session.stamp,
                    last_access: now,
                    ops: end.ops,
                };
                if route_only {
                    SessionMessage::ChangeSessionId(d)
                } else {
                    SessionMessage::SessionDelta(d)
                }
            }
        } else if end.accessed && end.replicate && Core::access_due(e, now) {
            SessionMessage::Accessed {
                id: id.clone(),
                version: e.session.version,
                last_access: now,
            }
        } else {
            return Ok(vec![]);
        };
        e.last_replicated = now;
        let sync = sync && !matches!(msg, SessionMessage::Accessed { .. });
        Ok(self.core.msg(to, &msg, sync).into_iter().collect())
    }

    fn handle_message(&mut self, from: MemberId, msg: SessionMessage, now: Millis) -> Received {
        self.core.count_received(&msg);
        if let Some(t) = self.transfer.as_mut() {
            let transfer_msg = matches!(
                msg,
                SessionMessage::GetAllSessions { .. }
                    | SessionMessage::AllSessionData { .. }
                    | SessionMessage::TransferComplete { .. }
                    | SessionMessage::NoContextManager { .. }
                    | SessionMessage::Fetch { .. }
            );
            if !transfer_msg {
                t.queued.push((from, msg));
                return Received::default();
            }
        }
        let mut out = self.forward_to_joiners(from, &msg, now);
        out.extend(match msg {
            SessionMessage::GetAllSessions { request } => self.serve_transfer(from, request, now),
            SessionMessage::AllSessionData {
                request, sessions, ..
            } => {
                if self
                    .transfer
                    .as_ref()
                    .is_some_and(|t| t.request == request && t.from == from)
                {
                    let n = sessions.len() as u64;
                    for s in sessions {
                        self.core.store.apply_full(s, now, &mut self.core.stats);
                    }
                    if let Some(t) = self.transfer.as_mut() {
                        t.sessions += n;
                    }
                }
                vec![]
            }
            SessionMessage::TransferComplete { request, .. } => {
                if self
                    .transfer
                    .as_ref()
                    .is_some_and(|t| t.request == request && t.from == from)
                {
                    self.finish_transfer(now)
                } else {
                    vec![]
                }
            }
            SessionMessage::NoContextManager { request } => {
                if self.transfer.as_ref().is_some_and(|t| t.request == request) {
                    self.ask_next(now)
                } else {
                    vec![]
                }
            }
            SessionMessage::Created(s) => {
                self.core.store.apply_full(s, now, &mut self.core.stats);
                vec![]
            }
            SessionMessage::SessionDelta(d) | SessionMessage::ChangeSessionId(d) => {
                let mut r = self.on_delta(from, d, now);
                out.append(&mut r.out);
                return Received { out, ack: r.ack };
            }
            SessionMessage::Expired { id, version } => {
                if self.core.store.remove(&id, version, now).is_some() {
                    self.core.stats.sessions_expired += 1;
                }
                vec![]
            }
            SessionMessage::Accessed {
                id, last_access, ..
            } => {
                if let Some(e) = self.core.store.entries.get_mut(&id) {
                    e.session.last_access = e.session.last_access.max(last_access);
                    e.primary = false;
                }
                vec![]
            }
            SessionMessage::Fetch { id, request } => {
                let session = self.core.store.get(&id).map(|e| e.session.clone());
                self.core
                    .msg(
                        vec![from],
                        &SessionMessage::Fetched {
                            id,
                            request,
                            session,
                        },
                        false,
                    )
                    .into_iter()
                    .collect()
            }
            SessionMessage::Fetched {
                session: Some(s), ..
            } => {
                self.core.store.apply_full(s, now, &mut self.core.stats);
                vec![]
            }
            SessionMessage::Fetched { session: None, .. } => vec![],
            SessionMessage::BackupPut { .. } | SessionMessage::Locations(_) => {
                return Received { out: vec![], ack: Err("BackupManager message sent to a DeltaManager context (configure the same manager on every node)".into()) };
            }
        });
        Received { out, ack: Ok(()) }
    }

    fn member_added(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing> {
        if member == self.core.local {
            return vec![];
        }
        self.core.members.insert(member);
        // Started before the channel saw anyone and nothing happened here since: this node
        // is joining late, not founding the cluster, so it still needs the state.
        let untouched = self.core.stats.sessions_created == 0 && self.core.store.is_empty();
        if std::mem::take(&mut self.started_alone) && untouched {
            return self.begin_transfer(now);
        }
        vec![]
    }

    fn member_removed(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing> {
        self.core.members.remove(&member);
        self.joiners.retain(|(m, _)| *m != member);
        if self.transfer.as_ref().is_some_and(|t| t.from == member) {
            return self.ask_next(now);
        }
        vec![]
    }

    fn handle_timeout(&mut self, now: Millis) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if self.transfer.as_ref().is_some_and(|t| now >= t.deadline) {
            tracing::warn!(context = %self.core.ctx, "state transfer timed out; asking another member");
            out.extend(self.ask_next(now));
        }
        out.extend(self.sweep(now));
        for (id, from) in self
            .core
            .store
            .overdue_gaps(now, self.core.cfg.gap_timeout_ms)
        {
            out.extend(self.fetch(id, from));
        }
        self.core.purge(now);
        out
    }

    fn session(&self, id: &SessionId) -> Option<&Session> {
        self.core.store.get(id).map(|e| &e.session)
    }

    fn session_ids(&self) -> Vec<SessionId> {
        self.core.store.entries.keys().cloned().collect()
    }

    fn stats(&self) -> ManagerStats {
        self.core.fill_stats(self.core.stats.clone())
    }
}
