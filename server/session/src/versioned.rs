//! `VersionedSessions`: the sessions a node holds in memory, shared by both managers (not
//! a persistent manager's session store, which saves them elsewhere). Applies full sessions
//! and deltas in version order, buffers deltas that arrive ahead of a gap, remembers removed
//! sessions (tombstones) so a late message cannot resurrect them, and detects conflicts.
use crate::id::SessionId;
use crate::message::Delta;
use crate::session::{Millis, Session};
use crate::stats::ManagerStats;
use shoal_cluster::MemberId;
use std::collections::BTreeMap;

/// A session held with its value on this node.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub session: Session,
    /// This node served it last (DeltaManager) / is its primary (BackupManager). Only the
    /// primary expires a session at max-inactive and tells the others; replicas drop it
    /// silently at twice that (Tomcat's DeltaSession rule), in case the primary died.
    pub primary: bool,
    /// Its next change goes out as the whole session, not a delta: a synchronous
    /// replication of it was not acknowledged by every replica, or (DeltaManager) a member
    /// appeared that may not hold it. Cleared when the whole session is sent.
    pub resync: bool,
    /// When this node last sent anything about it (drives ACCESSED messages).
    pub last_replicated: Millis,
    /// BackupManager: the primary (when this node is a backup) and the backups.
    pub owner: Option<MemberId>,
    pub backups: Vec<MemberId>,
    /// The version held is a change made here that not every replica acknowledged (a
    /// synchronous replication failed, a promotion nobody confirmed): a node catching up
    /// after a partition (`partition = "majority"`) neither advertises it nor keeps it
    /// against another member's copy. Cleared when another member's copy replaces it or a
    /// new change is made here.
    pub unacked: bool,
    /// Changed here while some expected member was out of sight (see `Core::apart`): if
    /// another member's copy replaces it before a member took this one, the changes made
    /// here are lost, and that is reported (`ManagerStats::partition_conflicts`, a warn log
    /// naming the session), never silent.
    pub split_write: bool,
}

impl Entry {
    pub(crate) fn replica(session: Session) -> Self {
        Entry {
            session,
            primary: false,
            resync: false,
            last_replicated: 0,
            owner: None,
            backups: Vec::new(),
            unacked: false,
            split_write: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeltaOutcome {
    Applied,
    /// Already had this version (duplicate) or a newer one.
    Stale,
    /// Ahead of a gap; applied when the missing versions arrive (or fetched on timeout).
    Buffered,
    /// Same version written elsewhere, or built on another base. `incoming_wins`: the sender's
    /// write outranks ours, so the caller should fetch the sender's full session.
    Conflict {
        incoming_wins: bool,
    },
    /// No such session here (and not removed): the caller may fetch it.
    Unknown,
}

struct Pending {
    from: MemberId,
    delta: Delta,
    since: Millis,
}

#[derive(Default)]
pub(crate) struct VersionedSessions {
    /// Boxed: a B-tree node reserves 11 slots, so an inline `Entry` (216 B) would cost
    /// ~1/3 more memory per session in unfilled slots than the 8-byte box.
    pub entries: BTreeMap<SessionId, Box<Entry>>,
    tombstones: BTreeMap<SessionId, (u64, Millis)>,
    pending: BTreeMap<SessionId, BTreeMap<u64, Pending>>,
}

impl VersionedSessions {
    pub(crate) fn get(&self, id: &SessionId) -> Option<&Entry> {
        self.entries.get(id).map(|e| &**e)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A removal at `version` hides every version <= it.
    pub(crate) fn removed_at_or_after(&self, id: &SessionId, version: u64) -> bool {
        self.tombstones.get(id).is_some_and(|(v, _)| *v >= version)
    }

    /// Applies a whole session if it outranks what we hold. Returns true if stored.
    pub(crate) fn apply_full(
        &mut self,
        mut s: Session,
        now: Millis,
        stats: &mut ManagerStats,
    ) -> bool {
        if self.removed_at_or_after(&s.id, s.version) {
            stats.stale_messages += 1;
            return false;
        }
        s.is_new = false;
        let id = s.id.clone();
        match self.entries.get_mut(&id) {
            Some(e) if e.session.rank() >= s.rank() => {
                if e.session.version == s.version && e.session.stamp != s.stamp {
                    stats.conflicts += 1;
                }
                stats.stale_messages += 1;
                return false;
            }
            Some(e) => {
                if e.session.version == s.version {
                    stats.conflicts += 1;
                }
                s.last_access = s.last_access.max(e.session.last_access);
                if std::mem::take(&mut e.split_write) {
                    stats.note_partition_conflict(&id, e.session.version, s.version);
                }
                e.session = s;
                e.unacked = false;
            }
            None => {
                self.entries.insert(id.clone(), Box::new(Entry::replica(s)));
            }
        }
        self.drain_pending(&id, now, stats);
        true
    }

    /// Replaces what is held with another member's copy whatever their ranks (a node
    /// catching up after a partition gives up its unacknowledged changes, see
    /// [`Entry::unacked`]). False if `s` was removed here meanwhile.
    pub(crate) fn yield_to(
        &mut self,
        mut s: Session,
        now: Millis,
        stats: &mut ManagerStats,
    ) -> bool {
        if self.removed_at_or_after(&s.id, s.version) {
            return false;
        }
        s.is_new = false;
        let id = s.id.clone();
        match self.entries.get_mut(&id) {
            Some(e) => {
                s.last_access = s.last_access.max(e.session.last_access);
                e.session = s;
                e.unacked = false;
                e.primary = false;
                e.resync = true;
            }
            None => {
                self.entries.insert(id.clone(), Box::new(Entry::replica(s)));
            }
        }
        self.pending.remove(&id);
        let _ = (now, stats);
        true
    }

    pub(crate) fn apply_delta(
        &mut self,
        from: MemberId,
        d: Delta,
        now: Millis,
        stats: &mut ManagerStats,
    ) -> DeltaOutcome {
        if self.removed_at_or_after(&d.id, d.version) {
            stats.stale_messages += 1;
            return DeltaOutcome::Stale;
        }
        let Some(e) = self.entries.get_mut(&d.id) else {
            return DeltaOutcome::Unknown;
        };
        let s = &mut e.session;
        if d.version <= s.version {
            if d.version == s.version && d.stamp != s.stamp {
                stats.conflicts += 1;
                return DeltaOutcome::Conflict {
                    incoming_wins: d.stamp > s.stamp,
                };
            }
            stats.stale_messages += 1;
            return DeltaOutcome::Stale;
        }
        if d.version > s.version + 1 {
            stats.buffered_deltas += 1;
            let id = d.id.clone();
            self.pending.entry(id).or_default().insert(
                d.version,
                Pending {
                    from,
                    delta: d,
                    since: now,
                },
            );
            return DeltaOutcome::Buffered;
        }
        if d.prev != s.stamp {
            // Built on a version we never saw: a concurrent write. A higher version wins.
            stats.conflicts += 1;
            return DeltaOutcome::Conflict {
                incoming_wins: true,
            };
        }
        s.apply_ops(&d.ops);
        s.version = d.version;
        s.stamp = d.stamp;
        s.last_access = s.last_access.max(d.last_access);
        e.primary = false;
        e.unacked = false;
        // Built on this copy: what was written here is in it.
        e.split_write = false;
        let id = d.id.clone();
        self.drain_pending(&id, now, stats);
        DeltaOutcome::Applied
    }

    /// Applies buffered deltas that now follow the stored version; drops outdated ones.
    fn drain_pending(&mut self, id: &SessionId, now: Millis, stats: &mut ManagerStats) {
        loop {
            let Some(buf) = self.pending.get_mut(id) else {
                return;
            };
            let Some(e) = self.entries.get(id) else {
                return;
            };
            let v = e.session.version;
            while buf.first_key_value().is_some_and(|(k, _)| *k <= v) {
                buf.pop_first();
            }
            let next = buf.first_key_value().map(|(k, _)| *k);
            if buf.is_empty() {
                self.pending.remove(id);
                return;
            }
            if next != Some(v + 1) {
                return;
            }
            let Some((_, p)) = buf.pop_first() else {
                return;
            };
            if self.apply_delta(p.from, p.delta, now, stats) != DeltaOutcome::Applied {
                return;
            }
        }
    }

    /// Sessions whose gap has not filled within `timeout`: the buffer is dropped and the
    /// caller fetches the whole session from the member that sent the buffered delta.
    pub(crate) fn overdue_gaps(
        &mut self,
        now: Millis,
        timeout: Millis,
    ) -> Vec<(SessionId, MemberId)> {
        let mut due = Vec::new();
        self.pending.retain(|id, buf| {
            let oldest = buf.values().map(|p| p.since).min().unwrap_or(now);
            if now.saturating_sub(oldest) < timeout {
                return true;
            }
            if let Some(p) = buf.values().next_back() {
                due.push((id.clone(), p.from));
            }
            false
        });
        due
    }

    /// Removes a session (expired/invalidated at `version`) and remembers the removal.
    pub(crate) fn remove(&mut self, id: &SessionId, version: u64, now: Millis) -> Option<Entry> {
        let held = self.entries.get(id).map(|e| e.session.version);
        if held.is_some_and(|v| v > version) {
            return None; // a newer write exists: that one wins over the removal
        }
        self.pending.remove(id);
        let t = self.tombstones.entry(id.clone()).or_insert((version, now));
        t.0 = t.0.max(version);
        t.1 = now;
        self.entries.remove(id).map(|e| *e)
    }

    /// Removed sessions still remembered: (id, version removed at).
    pub(crate) fn tombstones(&self) -> impl Iterator<Item = (&SessionId, u64)> {
        self.tombstones.iter().map(|(id, (v, _))| (id, *v))
    }

    /// Forgets tombstones older than `ttl`.
    pub(crate) fn purge_tombstones(&mut self, now: Millis, ttl: Millis) {
        self.tombstones
            .retain(|_, (_, at)| now.saturating_sub(*at) < ttl);
    }
}
