//! BackupManager: handling of incoming messages and membership changes.
use super::{BackupManager, Fetching};
use crate::id::SessionId;
use crate::manager::{Outgoing, Received};
use crate::message::{Location, SessionMessage};
use crate::session::{Millis, Session};
use crate::versioned::DeltaOutcome;
use shoal_cluster::MemberId;

impl BackupManager {
    pub(super) fn start_fetch(
        &mut self,
        id: &SessionId,
        holders: Vec<MemberId>,
        now: Millis,
    ) -> Vec<Outgoing> {
        let mut holders: Vec<MemberId> = holders
            .into_iter()
            .filter(|m| self.core.members.contains(m))
            .collect();
        if holders.is_empty() {
            self.fetching.remove(id);
            self.locations.remove(id);
            return vec![];
        }
        let asked = holders.remove(0);
        let deadline = now + self.core.cfg.fetch_timeout_ms / 2;
        self.fetching.insert(
            id.clone(),
            Fetching {
                asked,
                rest: holders,
                deadline,
            },
        );
        self.core
            .request_fetch(id.clone(), asked)
            .into_iter()
            .collect()
    }

    fn on_location(&mut self, loc: Location, now: Millis) {
        let local = self.core.local;
        if loc.primary == local || self.core.sessions.removed_at_or_after(&loc.id, loc.version) {
            return;
        }
        if let Some(e) = self.core.sessions.entries.get_mut(&loc.id) {
            // Catching up after a partition: a change nobody acknowledged gives way to the
            // copy another member announces, whatever the ranks.
            let yields =
                self.partitioned && e.unacked && (loc.version, loc.stamp) != e.session.rank();
            if yields {
                tracing::info!(context = %self.core.ctx, session = %loc.id, version = loc.version,
                    "caught up after a partition: an unacknowledged change made here gives way to the cluster's copy");
                self.core.sessions.entries.remove(&loc.id);
            } else if (loc.version, loc.stamp) < e.session.rank() {
                return;
            } else if loc.backups.contains(&local) {
                e.primary = false;
                e.owner = Some(loc.primary);
                e.backups = loc.backups;
                return;
            } else {
                if e.split_write && (loc.version, loc.stamp) != e.session.rank() {
                    let ours = e.session.version;
                    self.core
                        .stats
                        .note_partition_conflict(&loc.id, ours, loc.version);
                }
                self.core.sessions.entries.remove(&loc.id);
            }
        }
        let newer = self
            .locations
            .get(&loc.id)
            .is_none_or(|l| (l.version, l.stamp) <= (loc.version, loc.stamp));
        if newer {
            let _ = now;
            self.locations.insert(loc.id.clone(), loc);
        }
    }

    fn on_backup_put(
        &mut self,
        session: Session,
        primary: MemberId,
        backups: Vec<MemberId>,
        now: Millis,
    ) -> Received {
        let id = session.id.clone();
        let rank = session.rank();
        // Async mode reorders across senders: a put from an older primary can arrive after
        // the location of a newer one. Keeping it would make this node a backup of a copy
        // nobody updates (and a failover could promote it).
        if self
            .locations
            .get(&id)
            .is_some_and(|l| (l.version, l.stamp) > rank)
        {
            self.core.stats.stale_messages += 1;
            return Received::default();
        }
        self.core
            .sessions
            .apply_full(session, now, &mut self.core.stats);
        let Some(e) = self.core.sessions.entries.get_mut(&id) else {
            return Received::default();
        };
        if e.session.rank() != rank {
            return Received {
                out: vec![],
                ack: Err("a newer version of this session exists here".into()),
            };
        }
        e.primary = false;
        e.owner = Some(primary);
        e.backups = backups;
        e.last_replicated = now;
        self.locations.remove(&id);
        Received::default()
    }

    pub(super) fn on_member_removed(&mut self, dead: MemberId, now: Millis) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut moved = Vec::new();
        let local = self.core.local;
        let ids: Vec<SessionId> = self.core.sessions.entries.keys().cloned().collect();
        for id in ids {
            let Some(e) = self.core.sessions.entries.get_mut(&id) else {
                continue;
            };
            e.backups.retain(|m| *m != dead);
            if e.primary {
                moved.extend(self.refill_backups(&id, &mut out));
            } else if e.owner == Some(dead) {
                let heir = e
                    .backups
                    .iter()
                    .find(|m| **m == local || self.core.members.contains(m))
                    .copied();
                if heir == Some(local) || heir.is_none() {
                    self.core.stats.promotions += 1;
                    moved.extend(self.take_ownership(&id, now, &mut out));
                    // Nobody confirmed it yet: this node may be the one cut off.
                    if let Some(e) = self.core.sessions.entries.get_mut(&id) {
                        e.unacked = true;
                    }
                } else {
                    e.owner = heir;
                }
            }
        }
        out.extend(self.announce(moved, &[], false));
        self.locations.retain(|_, l| {
            l.backups.retain(|m| *m != dead);
            if l.primary == dead {
                match l.backups.first() {
                    Some(b) => l.primary = *b,
                    None => return false,
                }
            }
            true
        });
        out
    }

    /// `from` asked for our locations: it has this node in its view now, so from here on it
    /// announces to this node every session it takes over. While catching up after a
    /// partition, only an answer of `from` taken after that counts (see `met_us`): an
    /// earlier one misses a session that moved to `from` from a member whose own answer
    /// was taken before it had it, and `from` never announced that move here. So it is
    /// asked again; an answer already on its way was taken later (messages come in order).
    fn met_by(&mut self, from: MemberId, now: Millis) -> Vec<Outgoing> {
        if !self.partitioned {
            return vec![];
        }
        self.met_us.insert(from);
        if !self.core.members.contains(&from) {
            // It is asked when it joins the view (`member_added`), after this.
            return vec![];
        }
        self.rejoin.insert(from, now + super::REASK_MS);
        self.ask_locations(from)
    }

    /// TRANSFER_COMPLETE from `from`: its locations are all in, unless this node is catching
    /// up and `from` may not have met it yet when it answered (see [`Self::met_by`]): it
    /// has not asked for this node's locations, and this node met it less than a reask
    /// period ago (a member that never dropped this node never asks; it is asked again).
    fn transfer_complete(&mut self, from: MemberId, now: Millis) {
        self.awaiting.remove(&from);
        let settled = self
            .greeted
            .get(&from)
            .is_none_or(|at| now >= at + super::REASK_MS);
        if !self.partitioned || self.met_us.contains(&from) || settled {
            self.rejoin.remove(&from);
        }
    }

    pub(super) fn on_message(
        &mut self,
        from: MemberId,
        msg: SessionMessage,
        now: Millis,
    ) -> Received {
        self.core.count_received(&msg);
        let out = match msg {
            SessionMessage::BackupPut {
                session,
                primary,
                backups,
            } => return self.on_backup_put(session, primary, backups, now),
            SessionMessage::SessionDelta(d) | SessionMessage::ChangeSessionId(d) => {
                let id = d.id.clone();
                match self
                    .core
                    .sessions
                    .apply_delta(from, d, now, &mut self.core.stats)
                {
                    DeltaOutcome::Applied | DeltaOutcome::Stale => vec![],
                    DeltaOutcome::Buffered if !self.core.sync() => vec![],
                    DeltaOutcome::Buffered | DeltaOutcome::Unknown => {
                        let out = self.start_fetch(&id, vec![from], now);
                        let ack = self.core.unapplied_ack();
                        return Received { out, ack };
                    }
                    DeltaOutcome::Conflict { incoming_wins } => {
                        let out = if incoming_wins {
                            self.start_fetch(&id, vec![from], now)
                        } else {
                            vec![]
                        };
                        return Received {
                            out,
                            ack: Err("conflicting concurrent write of this session".into()),
                        };
                    }
                }
            }
            SessionMessage::Accessed {
                id, last_access, ..
            } => {
                if let Some(e) = self.core.sessions.entries.get_mut(&id) {
                    e.session.last_access = e.session.last_access.max(last_access);
                }
                vec![]
            }
            SessionMessage::Expired { id, version } => {
                self.core.on_expired(&id, version, now);
                if self
                    .locations
                    .get(&id)
                    .is_some_and(|l| l.version <= version)
                {
                    self.locations.remove(&id);
                }
                self.fetching.remove(&id);
                vec![]
            }
            SessionMessage::Locations(locs) => {
                for loc in locs {
                    self.on_location(loc, now);
                }
                vec![]
            }
            SessionMessage::Fetch { id, request } => self.core.answer_fetch(from, id, request),
            SessionMessage::Fetched {
                id,
                session,
                request,
            } => {
                self.core.fetch_answered(from, &id, request);
                self.on_fetched(from, id, session, now)
            }
            SessionMessage::GetAllSessions { request } => {
                let mut out = self.send_locations(from, request);
                out.extend(self.met_by(from, now));
                out
            }
            SessionMessage::TransferComplete { .. } => {
                self.transfer_complete(from, now);
                vec![]
            }
            SessionMessage::NoContextManager { .. } => {
                self.awaiting.remove(&from);
                self.rejoin.remove(&from);
                vec![]
            }
            // The persistent runtime takes these before they reach a manager.
            SessionMessage::Moved { .. } => vec![],
            SessionMessage::Created(_)
            | SessionMessage::AllSessionData { .. }
            | SessionMessage::DigestRequest
            | SessionMessage::Digest { .. } => {
                return Received { out: vec![], ack: Err("DeltaManager message sent to a BackupManager context (configure the same manager on every node)".into()) };
            }
        };
        Received { out, ack: Ok(()) }
    }

    /// FETCHED: the value asked for (kept if it ranks higher), or none there: ask the next
    /// holder.
    fn on_fetched(
        &mut self,
        from: MemberId,
        id: SessionId,
        session: Option<Session>,
        now: Millis,
    ) -> Vec<Outgoing> {
        let Some(s) = session else {
            return match self.fetching.remove(&id) {
                Some(f) => self.start_fetch(&id, f.rest, now),
                None => vec![],
            };
        };
        self.fetching.remove(&id);
        let loc = self.locations.get(&id).cloned();
        // A late answer from a former holder, older than what a live primary announced
        // since: not a copy to keep. (The primary's own answer is: after a crash a location
        // may name a version its promoted primary never got.)
        if loc.as_ref().is_some_and(|l| {
            (l.version, l.stamp) > s.rank()
                && l.primary != from
                && self.core.members.contains(&l.primary)
        }) {
            self.core.stats.stale_messages += 1;
            return vec![];
        }
        let local = self.core.local;
        self.core.sessions.apply_full(s, now, &mut self.core.stats);
        if let Some(e) = self.core.sessions.entries.get_mut(&id) {
            if !e.primary && !e.backups.contains(&local) {
                e.owner = e.owner.or(loc.as_ref().map(|l| l.primary));
                e.last_replicated = now;
                // Fetched to repair a lost BACKUP_PUT: this node is a backup.
                if let Some(l) = loc.filter(|l| l.backups.contains(&local)) {
                    e.backups = l.backups;
                    self.locations.remove(&id);
                }
            }
        }
        vec![]
    }
}
