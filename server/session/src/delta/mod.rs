//! DeltaManager: every node holds every session of the context (all-to-all).
//!
//! End of request: a new session goes out whole (CREATED), a changed one as a delta
//! (SESSION_DELTA, or CHANGE_SESSION_ID for a route-only change), an unchanged one as
//! ACCESSED now and then (see [`Core::access_due`]). A joining node asks one member for all
//! sessions (GET_ALL_SESSIONS → ALL_SESSION_DATA batches → TRANSFER_COMPLETE); if that member
//! fails, times out or lacks the context (NO_CONTEXT_MANAGER) it asks the next one. Messages
//! arriving meanwhile are queued and replayed in session-version order.
use crate::core::{forward_to_core, Core};
use crate::error::SessionError;
use crate::id::SessionId;
use crate::manager::{Lookup, ManagerKind, Outgoing, Received, RequestEnd, SessionManager};
use crate::message::{Delta, SessionMessage};
use crate::session::{DeltaOp, Millis};
use crate::stats::ManagerStats;
use crate::versioned::DeltaOutcome;
use shoal_cluster::MemberId;

mod digest;
mod transfer;

use transfer::Transfer;

pub(crate) struct DeltaManager {
    core: Core,
    transfer: Option<Transfer>,
    /// Members this node recently sent its state to, and until when. A writer that had not
    /// yet seen such a member join did not send it its change, and the snapshot may have
    /// been taken before the change arrived here: so changes received from others are
    /// forwarded to recent joiners for a while (duplicates are ignored by version).
    joiners: Vec<(MemberId, Millis)>,
    /// `start` saw no other member (see `member_added`).
    started_alone: bool,
    /// Catching up after a partition (see `digest.rs`).
    catch_up: digest::CatchUp,
}

impl DeltaManager {
    pub(crate) fn new(core: Core) -> Self {
        DeltaManager {
            core,
            transfer: None,
            joiners: Vec::new(),
            started_alone: false,
            catch_up: digest::CatchUp::default(),
        }
    }

    fn fetch(&mut self, id: SessionId, from: MemberId) -> Vec<Outgoing> {
        self.core.request_fetch(id, from).into_iter().collect()
    }

    fn on_delta(&mut self, from: MemberId, d: Delta, now: Millis) -> Received {
        let id = d.id.clone();
        match self
            .core
            .sessions
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
}

impl SessionManager for DeltaManager {
    forward_to_core!();

    fn adopt(&mut self, session: crate::session::Session, now: crate::session::Millis) -> bool {
        self.core.adopt(session, true, now)
    }

    fn kind(&self) -> ManagerKind {
        ManagerKind::Delta
    }

    /// Every member sends its changes to every other: what its writer made is on its way
    /// while the writer lives.
    fn expects_replication(&self, _id: &SessionId, seen: &crate::session::Seen) -> bool {
        seen.stamp.node != self.core.local && self.core.members.contains(&seen.stamp.node)
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

    fn find(&mut self, id: &SessionId, _now: Millis) -> Lookup {
        match self.core.sessions.get(id) {
            Some(e) => Lookup::Found(e.session.clone()),
            None => Lookup::Missing,
        }
    }

    fn end_request(&mut self, end: RequestEnd, now: Millis) -> Result<Vec<Outgoing>, SessionError> {
        let Some(id) = end.id else { return Ok(vec![]) };
        let Some(e) = self.core.sessions.get(&id) else {
            return Err(SessionError::NotFound(id.to_string()));
        };
        let (was_new, prev, version) = (e.session.is_new, e.session.stamp, e.session.version);
        let sync = self.core.sync();
        let to = self.core.all_members();
        if end.invalidate {
            return Ok(self.core.invalidate(id, version, now).into_iter().collect());
        }
        self.core.apply_request(&id, &end.ops, now)?;
        let (local, whole) = (self.core.local, self.core.cfg.replicate_whole_session);
        let Some(e) = self.core.sessions.entries.get_mut(&id) else {
            return Err(SessionError::NotFound(id.to_string()));
        };
        e.primary = true;
        let changed = !end.ops.is_empty();
        let msg = if was_new || changed {
            e.session.bump(now, local);
            e.unacked = false;
            e.session.is_new = false;
            let resync = std::mem::take(&mut e.resync);
            if was_new || whole || resync {
                SessionMessage::Created(e.session.clone())
            } else {
                let route_only = end.ops.iter().all(|op| matches!(op, DeltaOp::Route(_)));
                let d = Core::delta(&e.session, prev, end.ops, now);
                if route_only {
                    SessionMessage::ChangeSessionId(d)
                } else {
                    SessionMessage::SessionDelta(d)
                }
            }
        } else if let Some(accessed) = Core::keep_alive(e, end.accessed && end.replicate, now) {
            accessed
        } else {
            return Ok(vec![]);
        };
        e.last_replicated = now;
        Ok(self.core.send_end(to, &msg, sync).into_iter().collect())
    }

    fn handle_message(&mut self, from: MemberId, msg: SessionMessage, now: Millis) -> Received {
        self.core.count_received(&msg);
        let Some(msg) = self.queue_during_transfer(from, msg) else {
            return Received::default();
        };
        if transfer::is_transfer_message(&msg) {
            return Received {
                out: self.on_transfer_message(from, msg, now),
                ack: Ok(()),
            };
        }
        let mut out = self.forward_to_joiners(from, &msg, now);
        out.extend(match msg {
            SessionMessage::Created(s) => {
                self.core.sessions.apply_full(s, now, &mut self.core.stats);
                vec![]
            }
            SessionMessage::SessionDelta(d) | SessionMessage::ChangeSessionId(d) => {
                let mut r = self.on_delta(from, d, now);
                out.append(&mut r.out);
                return Received { out, ack: r.ack };
            }
            SessionMessage::Expired { id, version } => {
                self.core.on_expired(&id, version, now);
                vec![]
            }
            SessionMessage::Accessed {
                id, last_access, ..
            } => {
                if let Some(e) = self.core.sessions.entries.get_mut(&id) {
                    e.session.last_access = e.session.last_access.max(last_access);
                    e.primary = false;
                }
                vec![]
            }
            SessionMessage::Fetch { id, request } => self.core.answer_fetch(from, id, request),
            SessionMessage::Fetched {
                session: Some(s),
                request,
                ..
            } => {
                self.core.fetch_answered(from, &s.id, request);
                if !self.yield_fetched(&s, now) {
                    self.core.sessions.apply_full(s, now, &mut self.core.stats);
                }
                vec![]
            }
            SessionMessage::Fetched {
                id,
                session: None,
                request,
            } => {
                self.core.fetch_answered(from, &id, request);
                self.catch_up.fetched(&id);
                vec![]
            }
            SessionMessage::GetAllSessions { .. }
            | SessionMessage::AllSessionData { .. }
            | SessionMessage::TransferComplete { .. }
            | SessionMessage::NoContextManager { .. } => vec![], // handled by transfer.rs
            SessionMessage::DigestRequest => {
                let mut out = self.digest(from);
                out.extend(self.met_by(from, now));
                out
            }
            SessionMessage::Digest { sessions, removed } => {
                self.on_digest(from, sessions, removed, now)
            }
            // The persistent runtime takes these before they reach a manager.
            SessionMessage::Moved { .. } => vec![],
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
        let untouched = self.core.stats.sessions_created == 0 && self.core.sessions.is_empty();
        if std::mem::take(&mut self.started_alone) && untouched {
            return self.begin_transfer(now);
        }
        if self.transfer.is_some() {
            // What we hold is incomplete; the new member gets the state elsewhere.
            return vec![];
        }
        self.greet(member, now)
    }

    fn member_removed(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing> {
        self.core.members.remove(&member);
        self.joiners.retain(|(m, _)| *m != member);
        self.catch_up.member_removed(member);
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
        out.extend(self.reask_if_silent(now));
        out.extend(self.catch_up_timeout(now));
        out.extend(self.core.sweep(now));
        for (id, from) in self
            .core
            .sessions
            .overdue_gaps(now, self.core.cfg.gap_timeout_ms)
        {
            out.extend(self.fetch(id, from));
        }
        self.core.purge(now);
        out
    }

    fn stats(&self) -> ManagerStats {
        self.core.fill_stats(self.core.stats.clone())
    }

    fn set_partitioned(&mut self, partitioned: bool, _now: Millis) -> Vec<Outgoing> {
        self.catch_up.set_partitioned(partitioned);
        Vec::new()
    }

    fn reconciling(&self) -> bool {
        self.catch_up.pending()
    }
}
