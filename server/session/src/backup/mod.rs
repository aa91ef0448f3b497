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
//! - A starting node asks every member where its sessions live (GET_ALL_SESSIONS answered
//!   with LOCATIONS batches and TRANSFER_COMPLETE) and is ready once all have answered.
use crate::core::{forward_to_core, Core};
use crate::error::SessionError;
use crate::id::SessionId;
use crate::manager::{Lookup, ManagerKind, Outgoing, Received, RequestEnd, SessionManager};
use crate::message::{Location, SessionMessage};
use crate::placement;
use crate::session::Millis;
use crate::stats::ManagerStats;
use shoal_cluster::MemberId;
use std::collections::{BTreeMap, BTreeSet};

mod receive;

pub(crate) struct BackupManager {
    core: Core,
    /// Sessions held elsewhere: where they live.
    locations: BTreeMap<SessionId, Location>,
    /// Values being fetched for a request: holders still to try and the current deadline.
    fetching: BTreeMap<SessionId, Fetching>,
    /// Members whose session locations have not arrived yet (not ready until empty).
    awaiting: BTreeSet<MemberId>,
    awaiting_deadline: Millis,
    /// When the members in `awaiting` are asked again: a GET_ALL_SESSIONS or its answer can
    /// be lost while members are still connecting (as in the DeltaManager's transfer).
    awaiting_reask: Millis,
    /// Split-brain protection (`partition = "majority"`): this node lost the majority and
    /// has not caught up since. While partitioned it leaves its unacknowledged sessions out
    /// of the locations it sends, gives them up for the location another member announces,
    /// and waits for the locations of each member it meets (`rejoin`, with when to ask
    /// again) before it serves.
    partitioned: bool,
    rejoin: BTreeMap<MemberId, Millis>,
    /// While partitioned: the members that asked for this node's locations, so have it in
    /// their view and announce their take-overs to it. Only their answers count for
    /// `rejoin` (see `receive.rs`, `met_by`).
    met_us: BTreeSet<MemberId>,
    /// When each member was met while partitioned: locations arriving a reask period later
    /// count even if the member never asked (it never dropped this node, so it always
    /// announced its take-overs here).
    greeted: BTreeMap<MemberId, Millis>,
}

/// Members that have not answered GET_ALL_SESSIONS within this long are asked again.
const REASK_MS: Millis = 2_000;

struct Fetching {
    asked: MemberId,
    rest: Vec<MemberId>,
    deadline: Millis,
}

impl BackupManager {
    pub(crate) fn new(core: Core) -> Self {
        BackupManager {
            core,
            locations: BTreeMap::new(),
            fetching: BTreeMap::new(),
            awaiting: BTreeSet::new(),
            awaiting_deadline: 0,
            awaiting_reask: 0,
            partitioned: false,
            rejoin: BTreeMap::new(),
            met_us: BTreeSet::new(),
            greeted: BTreeMap::new(),
        }
    }

    /// Every primary short of backups (some were lost while members were gone and no
    /// replacement was reachable) gets them back, by placement: after a member joins, and
    /// when this node has caught up after a partition.
    fn refill_all_backups(&mut self) -> Vec<Outgoing> {
        let n = self.core.cfg.backups;
        let short: Vec<SessionId> = self
            .core
            .sessions
            .entries
            .iter()
            .filter(|(_, e)| e.primary && e.backups.len() < n)
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        let moved: Vec<Location> = short
            .iter()
            .filter_map(|id| self.refill_backups(id, &mut out))
            .collect();
        out.extend(self.announce(moved, &[], false));
        out
    }

    /// Primary `id` short of backups gets them from the members now, by placement: the
    /// whole session goes to every backup (placement changed, so all are re-synced), and its
    /// new location is returned for the caller to announce. `None`: not a primary here, not
    /// short, or no member to pick.
    fn refill_backups(&mut self, id: &SessionId, out: &mut Vec<Outgoing>) -> Option<Location> {
        let (local, n) = (self.core.local, self.core.cfg.backups);
        let e = self.core.sessions.entries.get_mut(id)?;
        if !e.primary || e.backups.len() >= n {
            return None;
        }
        let mut exclude = e.backups.clone();
        exclude.push(local);
        let extra = placement::choose(
            id,
            self.core.members.iter().copied(),
            &exclude,
            n - e.backups.len(),
        );
        if extra.is_empty() {
            return None;
        }
        self.core.stats.backups_recreated += extra.len() as u64;
        e.backups.extend(extra);
        let put = SessionMessage::BackupPut {
            session: e.session.clone(),
            primary: local,
            backups: e.backups.clone(),
        };
        let to = e.backups.clone();
        out.extend(self.core.msg(to, &put, false));
        self.location_of(id)
    }

    /// A member back in the view (a heal) gets again the whole of every session it backs
    /// up here: a BACKUP_PUT sent to it while it was out of reach (a session created or
    /// taken over on a side that still listed it) never arrived, and nothing else would
    /// repair that copy.
    fn resend_backups_to(&mut self, member: MemberId) -> Vec<Outgoing> {
        let local = self.core.local;
        let puts: Vec<SessionMessage> = self
            .core
            .sessions
            .entries
            .values()
            .filter(|e| e.primary && e.backups.contains(&member))
            .map(|e| SessionMessage::BackupPut {
                session: e.session.clone(),
                primary: local,
                backups: e.backups.clone(),
            })
            .collect();
        puts.iter()
            .filter_map(|put| self.core.msg(vec![member], put, false))
            .collect()
    }

    fn location_of(&self, id: &SessionId) -> Option<Location> {
        let e = self.core.sessions.get(id)?;
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
        let e = self.core.sessions.entries.get_mut(id)?;
        e.session.bump(now, local);
        e.session.is_new = false;
        e.unacked = false;
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

    fn ask_locations(&mut self, member: MemberId) -> Vec<Outgoing> {
        let request = self.core.next_request();
        let msg = SessionMessage::GetAllSessions { request };
        self.core
            .msg(vec![member], &msg, false)
            .into_iter()
            .collect()
    }

    /// Answers GET_ALL_SESSIONS: the locations of our primary sessions, in batches, then
    /// TRANSFER_COMPLETE.
    fn send_locations(&mut self, to: MemberId, request: u64) -> Vec<Outgoing> {
        // A partitioned node does not claim what nobody acknowledged (see `partitioned`).
        let hide_unacked = self.partitioned;
        let ids: Vec<SessionId> = self
            .core
            .sessions
            .entries
            .iter()
            .filter(|(_, e)| e.primary && !(hide_unacked && e.unacked))
            .map(|(id, _)| id.clone())
            .collect();
        let locs: Vec<Location> = ids.iter().filter_map(|id| self.location_of(id)).collect();
        let size = self.core.cfg.send_all_sessions_size.max(1);
        let mut out = Vec::new();
        for chunk in locs.chunks(size) {
            out.extend(
                self.core
                    .msg(vec![to], &SessionMessage::Locations(chunk.to_vec()), false),
            );
        }
        let batches = locs.len().div_ceil(size) as u32;
        let done = SessionMessage::TransferComplete {
            request,
            batches,
            sessions: locs.len() as u64,
        };
        out.extend(self.core.msg(vec![to], &done, false));
        out
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
}

impl SessionManager for BackupManager {
    forward_to_core!();

    fn adopt(&mut self, session: crate::session::Session, now: crate::session::Millis) -> bool {
        self.core.adopt(session, false, now)
    }

    fn kind(&self) -> ManagerKind {
        ManagerKind::Backup
    }

    /// Only a backup of the session gets its changes (from its primary, the writer); any
    /// other node fetches at once.
    fn expects_replication(&self, id: &SessionId, seen: &crate::session::Seen) -> bool {
        let writer = seen.stamp.node;
        writer != self.core.local
            && self.core.members.contains(&writer)
            && self
                .core
                .sessions
                .get(id)
                .is_some_and(|e| e.backups.contains(&self.core.local) || e.owner == Some(writer))
    }

    /// Asks every member where its sessions live; ready once all answered (members
    /// without the context answer NO_CONTEXT_MANAGER), or at the state transfer timeout.
    fn start(&mut self, members: &[MemberId], now: Millis) -> Vec<Outgoing> {
        let local = self.core.local;
        self.core
            .members
            .extend(members.iter().filter(|m| **m != local));
        self.awaiting = self.core.members.clone();
        self.awaiting_deadline = now + self.core.cfg.state_transfer_timeout_secs * 1000;
        self.awaiting_reask = now + REASK_MS;
        let all: Vec<MemberId> = self.core.all_members();
        all.into_iter()
            .flat_map(|m| self.ask_locations(m))
            .collect()
    }

    fn is_ready(&self) -> bool {
        self.awaiting.is_empty()
    }

    fn find(&mut self, id: &SessionId, now: Millis) -> Lookup {
        if let Some(e) = self.core.sessions.get(id) {
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
            self.core.sessions.entries.remove(id);
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
        let Some(e) = self.core.sessions.get(&id) else {
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
            self.locations.remove(&id);
            out.extend(self.core.invalidate(id, version, now));
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
        let Some(e) = self.core.sessions.entries.get_mut(&id) else {
            return Ok(out);
        };
        let to = e.backups.clone();
        let msg = if !end.ops.is_empty() {
            e.session.bump(now, local);
            let resync = std::mem::take(&mut e.resync);
            if whole || resync {
                SessionMessage::BackupPut {
                    session: e.session.clone(),
                    primary: local,
                    backups: to.clone(),
                }
            } else {
                SessionMessage::SessionDelta(Core::delta(&e.session, prev, end.ops, now))
            }
        } else if let Some(accessed) = Core::keep_alive(e, end.accessed && end.replicate, now) {
            accessed
        } else {
            return Ok(out);
        };
        e.last_replicated = now;
        out.extend(self.core.send_end(to, &msg, sync));
        Ok(out)
    }

    fn handle_message(&mut self, from: MemberId, msg: SessionMessage, now: Millis) -> Received {
        self.on_message(from, msg, now)
    }

    fn member_added(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing> {
        if member == self.core.local || !self.core.members.insert(member) {
            return vec![];
        }
        if self.partitioned {
            self.rejoin.insert(member, now + REASK_MS);
            self.greeted.insert(member, now);
        }
        // Learn where the newcomer's sessions live (it may have started alone, or it is
        // back from the other side of a partition), and give every primary its backups.
        let mut out = self.ask_locations(member);
        if !self.partitioned {
            out.extend(self.resend_backups_to(member));
            out.extend(self.refill_all_backups());
        }
        out
    }

    fn member_removed(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing> {
        self.awaiting.remove(&member);
        self.rejoin.remove(&member);
        self.met_us.remove(&member);
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
        let mut out = Vec::new();
        if !self.awaiting.is_empty() && now >= self.awaiting_deadline {
            tracing::warn!(context = %self.core.ctx, "no session locations from {:?}; serving without them", self.awaiting);
            self.awaiting.clear();
        } else if !self.awaiting.is_empty() && now >= self.awaiting_reask {
            self.awaiting_reask = now + REASK_MS;
            let silent: Vec<MemberId> = self.awaiting.iter().copied().collect();
            tracing::debug!(context = %self.core.ctx, "asking {silent:?} again for session locations");
            for m in silent {
                out.extend(self.ask_locations(m));
            }
        }
        let late: Vec<MemberId> = self
            .rejoin
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(m, _)| *m)
            .collect();
        for m in late {
            self.rejoin.insert(m, now + REASK_MS);
            out.extend(self.ask_locations(m));
        }
        out.extend(self.core.sweep(now));
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
            .sessions
            .overdue_gaps(now, self.core.cfg.gap_timeout_ms)
        {
            out.extend(self.start_fetch(&id, vec![from], now));
        }
        self.core.purge(now);
        out
    }

    fn placement(&self, id: &SessionId) -> Option<(MemberId, Vec<MemberId>)> {
        if let Some(e) = self.core.sessions.get(id) {
            let primary = if e.primary {
                Some(self.core.local)
            } else {
                e.owner
            };
            if let Some(p) = primary {
                return Some((p, e.backups.clone()));
            }
        }
        self.locations
            .get(id)
            .map(|l| (l.primary, l.backups.clone()))
    }

    fn stats(&self) -> ManagerStats {
        let mut s = self.core.fill_stats(self.core.stats.clone());
        s.proxy_sessions = self.locations.len() as u64;
        s
    }

    fn set_partitioned(&mut self, partitioned: bool, _now: Millis) -> Vec<Outgoing> {
        let caught_up = self.partitioned && !partitioned;
        self.partitioned = partitioned;
        self.rejoin.clear();
        self.met_us.clear();
        self.greeted.clear();
        if caught_up {
            // Primaries left short of backups while this node was cut off get them back.
            return self.refill_all_backups();
        }
        vec![]
    }

    fn reconciling(&self) -> bool {
        self.partitioned && !self.rejoin.is_empty()
    }
}
