//! BackupManager: a session lives on its primary and on N backups; every other member holds
//! only its [`Location`] (Tomcat's proxy entries).
//!
//! - A request on the primary is served locally; changes go to the backups as deltas.
//! - A request on a backup, or on a proxy node after fetching the value, makes that node the
//!   primary at the end of the request: the version is bumped, backups are picked by
//!   rendezvous hashing (see [`crate::placement`]), they get the whole session (BACKUP_PUT)
//!   and everyone else the new location. The old primary drops its value.
//! - When a member disappears, primaries replace lost backups, and for sessions whose
//!   primary died the first surviving backup (in placement order) promotes itself.
use crate::error::SessionError;
use crate::id::SessionId;
use crate::manager::{
    Core, Lookup, ManagerConfig, ManagerKind, Outgoing, Received, RequestEnd, SessionManager,
};
use crate::message::{Location, SessionMessage};
use crate::placement;
use crate::session::{Millis, Session};
use crate::stats::ManagerStats;
use crate::store::DeltaOutcome;
use shoal_cluster::MemberId;
use std::collections::BTreeMap;

pub struct BackupManager {
    core: Core,
    /// Sessions held elsewhere: where they live.
    locations: BTreeMap<SessionId, Location>,
    /// Values being fetched for a request: holders still to try and the current deadline.
    fetching: BTreeMap<SessionId, Fetching>,
}

struct Fetching {
    asked: MemberId,
    rest: Vec<MemberId>,
    deadline: Millis,
}

impl BackupManager {
    pub fn new(core: Core) -> Self {
        BackupManager {
            core,
            locations: BTreeMap::new(),
            fetching: BTreeMap::new(),
        }
    }

    fn location_of(&self, id: &SessionId) -> Option<Location> {
        let e = self.core.store.get(id)?;
        Some(Location {
            id: id.clone(),
            version: e.session.version,
            stamp: e.session.stamp,
            primary: self.core.local,
            backups: e.backups.clone(),
        })
    }

    /// Makes this node the primary of `id` (already held locally): new version, fresh
    /// backups, BACKUP_PUT to them; returns the location for everyone else.
    fn take_ownership(
        &mut self,
        id: &SessionId,
        now: Millis,
        out: &mut Vec<Outgoing>,
    ) -> Option<Location> {
        let n = self.core.cfg.backups;
        let backups =
            placement::choose(id, self.core.members.iter().copied(), &[self.core.local], n);
        let local = self.core.local;
        let e = self.core.store.entries.get_mut(id)?;
        e.session.bump(now, local);
        e.session.is_new = false;
        e.primary = true;
        e.owner = None;
        e.backups = backups.clone();
        e.last_replicated = now;
        let session = e.session.clone();
        let sync = self.core.sync();
        let put = SessionMessage::BackupPut {
            session,
            primary: local,
            backups: backups.clone(),
        };
        out.extend(self.core.msg(backups, &put, sync));
        self.locations.remove(id);
        self.location_of(id)
    }

    fn announce(
        &mut self,
        locs: Vec<Location>,
        except: &[MemberId],
        sync: bool,
    ) -> Option<Outgoing> {
        if locs.is_empty() {
            return None;
        }
        let to: Vec<MemberId> = self
            .core
            .members
            .iter()
            .filter(|m| !except.contains(m))
            .copied()
            .collect();
        self.core.msg(to, &SessionMessage::Locations(locs), sync)
    }

    fn start_fetch(
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
        self.core.stats.fetches += 1;
        let deadline = now + self.core.cfg.fetch_timeout_ms / 2;
        self.fetching.insert(
            id.clone(),
            Fetching {
                asked,
                rest: holders,
                deadline,
            },
        );
        let request = self.core.next_request;
        self.core.next_request += 1;
        self.core
            .msg(
                vec![asked],
                &SessionMessage::Fetch {
                    id: id.clone(),
                    request,
                },
                false,
            )
            .into_iter()
            .collect()
    }

    fn on_location(&mut self, loc: Location, now: Millis) {
        let local = self.core.local;
        if loc.primary == local || self.core.store.removed_at_or_after(&loc.id, loc.version) {
            return;
        }
        if let Some(e) = self.core.store.entries.get_mut(&loc.id) {
            if (loc.version, loc.stamp) < e.session.rank() {
                return;
            }
            if loc.backups.contains(&local) {
                e.primary = false;
                e.owner = Some(loc.primary);
                e.backups = loc.backups;
                return;
            }
            self.core.store.entries.remove(&loc.id);
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
        self.core
            .store
            .apply_full(session, now, &mut self.core.stats);
        let Some(e) = self.core.store.entries.get_mut(&id) else {
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

    fn on_member_removed(&mut self, dead: MemberId, now: Millis) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut moved = Vec::new();
        let local = self.core.local;
        let ids: Vec<SessionId> = self.core.store.entries.keys().cloned().collect();
        for id in ids {
            let Some(e) = self.core.store.entries.get_mut(&id) else {
                continue;
            };
            e.backups.retain(|m| *m != dead);
            if e.primary {
                if e.backups.len() < self.core.cfg.backups {
                    let mut exclude = e.backups.clone();
                    exclude.push(local);
                    let need = self.core.cfg.backups - e.backups.len();
                    let extra =
                        placement::choose(&id, self.core.members.iter().copied(), &exclude, need);
                    if extra.is_empty() {
                        continue;
                    }
                    self.core.stats.backups_recreated += extra.len() as u64;
                    e.backups.extend(extra);
                    // Whole session to every backup: placement changed, so re-sync them all.
                    let put = SessionMessage::BackupPut {
                        session: e.session.clone(),
                        primary: local,
                        backups: e.backups.clone(),
                    };
                    let to = e.backups.clone();
                    out.extend(self.core.msg(to, &put, false));
                    moved.extend(self.location_of(&id));
                }
            } else if e.owner == Some(dead) {
                let heir = e
                    .backups
                    .iter()
                    .find(|m| **m == local || self.core.members.contains(m))
                    .copied();
                if heir == Some(local) || heir.is_none() {
                    self.core.stats.promotions += 1;
                    moved.extend(self.take_ownership(&id, now, &mut out));
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

    fn sweep(&mut self, now: Millis) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut expired = Vec::new();
        let mut dropped = Vec::new();
        for (id, e) in &self.core.store.entries {
            if e.primary && e.session.idle_beyond(now, 1) {
                expired.push((id.clone(), e.session.version));
            } else if !e.primary && e.session.idle_beyond(now, 2) {
                dropped.push((id.clone(), e.session.version));
            }
        }
        for (id, version) in expired {
            self.core.store.remove(&id, version, now);
            self.core.stats.sessions_expired += 1;
            let (to, sync) = (self.core.all_members(), self.core.sync());
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

impl SessionManager for BackupManager {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Backup
    }
    fn context(&self) -> &str {
        &self.core.ctx
    }
    fn config(&self) -> &ManagerConfig {
        &self.core.cfg
    }

    fn start(&mut self, members: &[MemberId], _now: Millis) -> Vec<Outgoing> {
        self.core
            .members
            .extend(members.iter().filter(|m| **m != self.core.local));
        vec![] // locations arrive from the others' member_added
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn create(&mut self, now: Millis) -> Session {
        self.core.create(now)
    }

    fn find(&mut self, id: &SessionId, now: Millis) -> Lookup {
        if let Some(e) = self.core.store.get(id) {
            // A copy fetched for an earlier request that never took it over receives no
            // deltas: trust it only briefly, then fetch again.
            // If its holders are gone, the copy is the best there is: keep it.
            let fetched_copy = !e.primary && !e.backups.contains(&self.core.local);
            let fresh = now.saturating_sub(e.last_replicated) <= self.core.cfg.fetch_timeout_ms;
            let holders_alive = self.locations.get(id).is_some_and(|l| {
                std::iter::once(&l.primary)
                    .chain(&l.backups)
                    .any(|m| self.core.members.contains(m))
            });
            if !fetched_copy || fresh || !holders_alive {
                return Lookup::Found(e.session.clone());
            }
            self.core.store.entries.remove(id);
        }
        let Some(loc) = self.locations.get(id) else {
            return Lookup::Missing;
        };
        if self.fetching.contains_key(id) {
            return Lookup::Pending(vec![]);
        }
        let mut holders = vec![loc.primary];
        holders.extend(loc.backups.iter().copied());
        let out = self.start_fetch(id, holders, now);
        if self.fetching.contains_key(id) {
            Lookup::Pending(out)
        } else {
            Lookup::Missing
        }
    }

    fn end_request(&mut self, end: RequestEnd, now: Millis) -> Result<Vec<Outgoing>, SessionError> {
        let Some(id) = end.id else { return Ok(vec![]) };
        let Some(e) = self.core.store.get(&id) else {
            return Err(SessionError::NotFound(id.to_string()));
        };
        let (was_new, primary, prev, version) = (
            e.session.is_new,
            e.primary,
            e.session.stamp,
            e.session.version,
        );
        let sync = self.core.sync();
        let mut out = Vec::new();
        if end.invalidate {
            self.core.store.remove(&id, version + 1, now);
            self.locations.remove(&id);
            self.core.stats.sessions_invalidated += 1;
            let to = self.core.all_members();
            out.extend(self.core.msg(
                to,
                &SessionMessage::Expired {
                    id,
                    version: version + 1,
                },
                sync,
            ));
            return Ok(out);
        }
        self.core.apply_request(&id, &end.ops, now)?;
        if was_new || !primary {
            if !was_new {
                self.core.stats.promotions += 1;
            }
            let loc = self.take_ownership(&id, now, &mut out);
            let backups = loc.as_ref().map(|l| l.backups.clone()).unwrap_or_default();
            out.extend(self.announce(loc.into_iter().collect(), &backups, sync));
            return Ok(out);
        }
        let (local, whole) = (self.core.local, self.core.cfg.replicate_whole_session);
        let Some(e) = self.core.store.entries.get_mut(&id) else {
            return Ok(out);
        };
        let to = e.backups.clone();
        let msg = if !end.ops.is_empty() {
            e.session.bump(now, local);
            if whole {
                SessionMessage::BackupPut {
                    session: e.session.clone(),
                    primary: local,
                    backups: to.clone(),
                }
            } else {
                SessionMessage::SessionDelta(crate::message::Delta {
                    id: id.clone(),
                    version: e.session.version,
                    prev,
                    stamp: e.session.stamp,
                    last_access: now,
                    ops: end.ops,
                })
            }
        } else if end.accessed && end.replicate && Core::access_due(e, now) {
            SessionMessage::Accessed {
                id: id.clone(),
                version: e.session.version,
                last_access: now,
            }
        } else {
            return Ok(out);
        };
        e.last_replicated = now;
        let sync = sync && !matches!(msg, SessionMessage::Accessed { .. });
        out.extend(self.core.msg(to, &msg, sync));
        Ok(out)
    }

    fn handle_message(&mut self, from: MemberId, msg: SessionMessage, now: Millis) -> Received {
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
                    .store
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
                if let Some(e) = self.core.store.entries.get_mut(&id) {
                    e.session.last_access = e.session.last_access.max(last_access);
                }
                vec![]
            }
            SessionMessage::Expired { id, version } => {
                if self.core.store.remove(&id, version, now).is_some() {
                    self.core.stats.sessions_expired += 1;
                }
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
            SessionMessage::Fetched { id, session, .. } => match session {
                Some(s) => {
                    self.fetching.remove(&id);
                    let loc = self.locations.get(&id).cloned();
                    let local = self.core.local;
                    self.core.store.apply_full(s, now, &mut self.core.stats);
                    if let Some(e) = self.core.store.entries.get_mut(&id) {
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
                None => match self.fetching.remove(&id) {
                    Some(f) => self.start_fetch(&id, f.rest, now),
                    None => vec![],
                },
            },
            SessionMessage::GetAllSessions { request } => self
                .core
                .msg(
                    vec![from],
                    &SessionMessage::NoContextManager { request },
                    false,
                )
                .into_iter()
                .collect(),
            SessionMessage::Created(_)
            | SessionMessage::AllSessionData { .. }
            | SessionMessage::TransferComplete { .. }
            | SessionMessage::NoContextManager { .. } => {
                return Received { out: vec![], ack: Err("DeltaManager message sent to a BackupManager context (configure the same manager on every node)".into()) };
            }
        };
        Received { out, ack: Ok(()) }
    }

    fn member_added(&mut self, member: MemberId, _now: Millis) -> Vec<Outgoing> {
        if member == self.core.local || !self.core.members.insert(member) {
            return vec![];
        }
        // Tell the newcomer where our sessions live (its proxies), in batches.
        let ids: Vec<SessionId> = self
            .core
            .store
            .entries
            .iter()
            .filter(|(_, e)| e.primary)
            .map(|(id, _)| id.clone())
            .collect();
        let locs: Vec<Location> = ids.iter().filter_map(|id| self.location_of(id)).collect();
        let size = self.core.cfg.send_all_sessions_size.max(1);
        let mut out = Vec::new();
        for chunk in locs.chunks(size) {
            out.extend(self.core.msg(
                vec![member],
                &SessionMessage::Locations(chunk.to_vec()),
                false,
            ));
        }
        out
    }

    fn member_removed(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing> {
        if !self.core.members.remove(&member) {
            return vec![];
        }
        let mut out = self.on_member_removed(member, now);
        let stuck: Vec<SessionId> = self
            .fetching
            .iter()
            .filter(|(_, f)| f.asked == member)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stuck {
            if let Some(f) = self.fetching.remove(&id) {
                out.extend(self.start_fetch(&id, f.rest, now));
            }
        }
        out
    }

    fn handle_timeout(&mut self, now: Millis) -> Vec<Outgoing> {
        let mut out = self.sweep(now);
        let due: Vec<SessionId> = self
            .fetching
            .iter()
            .filter(|(_, f)| now >= f.deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(f) = self.fetching.remove(&id) {
                out.extend(self.start_fetch(&id, f.rest, now));
            }
        }
        for (id, from) in self
            .core
            .store
            .overdue_gaps(now, self.core.cfg.gap_timeout_ms)
        {
            out.extend(self.start_fetch(&id, vec![from], now));
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
        let mut s = self.core.fill_stats(self.core.stats.clone());
        s.proxy_sessions = self.locations.len() as u64;
        s
    }
}
