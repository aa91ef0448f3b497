//! DeltaManager state transfer: a joining node asks one member after the other for all
//! sessions; the member answers in batches; messages arriving meanwhile are queued and
//! replayed in session-version order; the answering member forwards later changes to the
//! joiner for a while (see `DeltaManager::joiners`).
use super::DeltaManager;
use crate::id::SessionId;
use crate::manager::{Outgoing, SessionManager};
use crate::message::SessionMessage;
use crate::session::{Millis, Session};
use shoal_cluster::MemberId;
use std::collections::BTreeSet;
use std::ops::Bound::{Excluded, Unbounded};

/// How long changes are forwarded to a member after sending it the state (see `joiners`):
/// longer than any member takes to learn of the join.
const JOIN_FORWARD_MS: Millis = 10_000;
/// A member from which nothing of the transfer has arrived for this long (since it was asked,
/// or since its last batch) is asked again (at most [`MAX_REASKS`] times): the request, or
/// part of its answer, can cross the membership event on the other side (a message to a
/// member not yet in the sender's view is refused by the channel: the batches may arrive
/// but not TRANSFER_COMPLETE), and waiting the whole `state_transfer_timeout_secs` for it
/// would leave the node unready for a minute. Batches follow each other within
/// milliseconds, so this silence means a loss; a re-ask starts over with a new request
/// (sessions already applied stay: a full session replaces one only if it ranks higher).
const QUIET_MS: Millis = 2_000;
const MAX_REASKS: u32 = 3;

/// A state transfer in progress (this node is joining).
pub(super) struct Transfer {
    pub(super) from: MemberId,
    request: u64,
    pub(super) deadline: Millis,
    asked: BTreeSet<MemberId>,
    queued: Vec<(MemberId, SessionMessage)>,
    started: Millis,
    sessions: u64,
    /// When the current member was asked or last sent a batch of this transfer.
    heard_at: Millis,
    reasks: u32,
    /// Batches of the current request received (checked against TRANSFER_COMPLETE's count).
    batches: u32,
}

impl DeltaManager {
    pub(super) fn begin_transfer(&mut self, now: Millis) -> Vec<Outgoing> {
        self.transfer = Some(Transfer {
            from: self.core.local,
            request: 0,
            deadline: now,
            asked: BTreeSet::new(),
            queued: Vec::new(),
            started: now,
            sessions: 0,
            heard_at: now,
            reasks: 0,
            batches: 0,
        });
        self.ask_next(now)
    }

    /// Asks the next member not yet asked; finishes the transfer when none is left.
    pub(super) fn ask_next(&mut self, now: Millis) -> Vec<Outgoing> {
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
        t.heard_at = now;
        t.batches = 0;
        t.request = self.core.next_request();
        t.deadline = now + self.core.cfg.state_transfer_timeout_secs * 1000;
        let msg = SessionMessage::GetAllSessions { request: t.request };
        self.core.msg(vec![m], &msg, false).into_iter().collect()
    }

    /// Re-asks a member that has sent nothing of the transfer for [`QUIET_MS`].
    pub(super) fn reask_if_silent(&mut self, now: Millis) -> Vec<Outgoing> {
        let Some(t) = self.transfer.as_mut() else {
            return vec![];
        };
        if now < t.heard_at + QUIET_MS || t.reasks >= MAX_REASKS {
            return vec![];
        }
        tracing::info!(context = %self.core.ctx, "state transfer: nothing more from the member asked for {QUIET_MS} ms; asking again");
        t.reasks += 1;
        // The same member first: it is the first not-asked one once removed.
        let from = t.from;
        t.asked.remove(&from);
        self.ask_next(now)
    }

    pub(super) fn finish_transfer(&mut self, now: Millis) -> Vec<Outgoing> {
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

    pub(super) fn serve_transfer(
        &mut self,
        to: MemberId,
        request: u64,
        now: Millis,
    ) -> Vec<Outgoing> {
        if self.transfer.is_some() {
            // Our own state is incomplete: let the joiner ask someone else.
            let msg = SessionMessage::NoContextManager { request };
            return self.core.msg(vec![to], &msg, false).into_iter().collect();
        }
        self.core.stats.state_transfers_served += 1;
        self.joiners.retain(|(m, _)| *m != to);
        self.joiners.push((to, now + JOIN_FORWARD_MS));
        let size = self.core.cfg.send_all_sessions_size.max(1);
        let total = self.core.sessions.len() as u64;
        let mut out = Vec::new();
        let mut batch = 0u32;
        // One batch of copies at a time (not a copy of every session first): serving a
        // joiner should not double this node's memory for a moment.
        let mut after: Option<SessionId> = None;
        loop {
            let range = match &after {
                Some(id) => self.core.sessions.entries.range((Excluded(id), Unbounded)),
                None => self.core.sessions.entries.range::<SessionId, _>(..),
            };
            let sessions: Vec<Session> = range.take(size).map(|(_, e)| e.session.clone()).collect();
            let Some(last) = sessions.last() else { break };
            after = Some(last.id.clone());
            let msg = SessionMessage::AllSessionData {
                request,
                batch,
                sessions,
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

    pub(super) fn forward_to_joiners(
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

    /// During a transfer, everything but transfer messages (and FETCH, answered from what
    /// we have, and DIGEST_REQUEST, not answered) is queued: returns the message back when it must be handled now.
    pub(super) fn queue_during_transfer(
        &mut self,
        from: MemberId,
        msg: SessionMessage,
    ) -> Option<SessionMessage> {
        let Some(t) = self.transfer.as_mut() else {
            return Some(msg);
        };
        if is_transfer_message(&msg)
            || matches!(
                msg,
                SessionMessage::Fetch { .. } | SessionMessage::DigestRequest
            )
        {
            return Some(msg);
        }
        t.queued.push((from, msg));
        None
    }

    /// Handles a message for which [`is_transfer_message`] holds.
    pub(super) fn on_transfer_message(
        &mut self,
        from: MemberId,
        msg: SessionMessage,
        now: Millis,
    ) -> Vec<Outgoing> {
        match msg {
            SessionMessage::GetAllSessions { request } => self.serve_transfer(from, request, now),
            SessionMessage::AllSessionData {
                request, sessions, ..
            } => {
                if self
                    .transfer
                    .as_ref()
                    .is_some_and(|t| t.request == request && t.from == from)
                {
                    if let Some(t) = self.transfer.as_mut() {
                        t.heard_at = now;
                        t.batches += 1;
                    }
                    let n = sessions.len() as u64;
                    for s in sessions {
                        self.core.sessions.apply_full(s, now, &mut self.core.stats);
                    }
                    if let Some(t) = self.transfer.as_mut() {
                        t.sessions += n;
                    }
                }
                vec![]
            }
            SessionMessage::TransferComplete {
                request, batches, ..
            } => {
                let Some(t) = self.transfer.as_ref() else {
                    return vec![];
                };
                if t.request != request || t.from != from {
                    return vec![];
                }
                if t.batches < batches && t.reasks < MAX_REASKS {
                    // A batch was lost (refused while the sender did not know us yet). Not
                    // at once, still inside that window: the quiet timer re-asks.
                    tracing::info!(context = %self.core.ctx, "state transfer: {} of {batches} batches arrived; asking again in {QUIET_MS} ms", t.batches);
                    return vec![];
                }
                self.finish_transfer(now)
            }
            SessionMessage::NoContextManager { request } => {
                if self.transfer.as_ref().is_some_and(|t| t.request == request) {
                    self.ask_next(now)
                } else {
                    vec![]
                }
            }
            _ => vec![],
        }
    }
}

pub(super) fn is_transfer_message(msg: &SessionMessage) -> bool {
    matches!(
        msg,
        SessionMessage::GetAllSessions { .. }
            | SessionMessage::AllSessionData { .. }
            | SessionMessage::TransferComplete { .. }
            | SessionMessage::NoContextManager { .. }
    )
}

/// The session version a message carries (0 for messages about no single session).
fn message_version(m: &SessionMessage) -> u64 {
    match m {
        SessionMessage::Created(s) => s.version,
        SessionMessage::SessionDelta(d) | SessionMessage::ChangeSessionId(d) => d.version,
        SessionMessage::Expired { version, .. } | SessionMessage::Accessed { version, .. } => {
            *version
        }
        // Compared with what the transfer and the queued changes brought: last.
        SessionMessage::Digest { .. } => u64::MAX,
        _ => 0,
    }
}
