//! DeltaManager anti-entropy. A joining node gets every session by state transfer, but two
//! members that were both running before they could reach each other — a partial mesh at
//! start-up, a healed partition — each miss the other's writes of that time, and no state
//! transfer happens between them. So a ready node that sees a member appear:
//! - asks it for a DIGEST of what it holds (id, version, stamp) and what it removed, then
//!   fetches what it lacks or holds older and drops what was removed there (a logout made
//!   on one side of a partition is not undone by the heal);
//! - sends the next change of each session it is primary of whole, so the member never
//!   gets a delta for a session it does not hold yet (a synchronous write would then fail
//!   with "missing earlier versions" until the fetch completes).
//!
//! A member still in its state transfer does not answer the request (all it holds is a
//! copy of the cluster's), so a plain join costs one small request per member and no
//! digest: the joiner's memory stays that of its sessions. (A partitioned node waiting for
//! that member's digest asks again every second, and gets it once the transfer is done.)
//!
//! Catching up after a partition (`partition = "majority"`, [`CatchUp`]): a node that lost
//! the majority served no session since, so every change it holds that was not
//! acknowledged (made just before it noticed the cut) must not win over the majority's
//! acknowledged writes. While partitioned it leaves those out of its own digests, and when
//! it meets members again it waits for each one's whole digest (the last batch is the one
//! with fewer than `DIGEST_BATCH` entries), fetches what it lacks and, for an
//! unacknowledged session the member holds in another version, takes the member's copy
//! whatever the ranks. It serves again once every digest and fetch is in.
use super::DeltaManager;
use crate::id::SessionId;
use crate::manager::Outgoing;
use crate::message::SessionMessage;
use crate::session::{Millis, Session, Stamp};
use shoal_cluster::MemberId;
use std::collections::{BTreeMap, BTreeSet};

/// Entries per DIGEST message (~40 bytes each on the wire). A digest's last batch holds
/// fewer (possibly none): that is how the receiver knows it has the whole digest.
const DIGEST_BATCH: usize = 4096;

/// A member that has not sent its whole digest within this long is asked again.
const DIGEST_REASK_MS: Millis = 1_000;
/// A fetch made while catching up that got no answer within this long is given up.
const CATCH_UP_FETCH_MS: Millis = 2_000;

/// What a partitioned node still waits for (see the module docs).
#[derive(Default)]
pub(super) struct CatchUp {
    partitioned: bool,
    /// Members greeted while partitioned whose whole digest has not arrived: when to ask
    /// again.
    digests: BTreeMap<MemberId, Millis>,
    /// Sessions fetched while catching up: whether the answer replaces ours whatever the
    /// ranks (ours is unacknowledged), and when the fetch is given up.
    fetches: BTreeMap<SessionId, (bool, Millis)>,
    /// Members that asked for this node's digest while it is partitioned: they have it in
    /// their view, so replicate their writes to it from then on. Only a digest they sent
    /// after that counts as theirs (see [`DeltaManager::met_by`]).
    met_us: BTreeSet<MemberId>,
    /// When each member in `digests` was greeted: a digest arriving a reask period later
    /// counts even if the member never asked (it never dropped this node, so it always
    /// replicated here).
    greeted: BTreeMap<MemberId, Millis>,
}

impl CatchUp {
    pub(super) fn set_partitioned(&mut self, partitioned: bool) {
        self.partitioned = partitioned;
        self.met_us.clear();
        self.greeted.clear();
        if !partitioned {
            self.digests.clear();
            self.fetches.clear();
        }
    }

    pub(super) fn pending(&self) -> bool {
        self.partitioned && !(self.digests.is_empty() && self.fetches.is_empty())
    }

    pub(super) fn member_removed(&mut self, member: MemberId) {
        self.digests.remove(&member);
        self.met_us.remove(&member);
    }

    pub(super) fn fetched(&mut self, id: &SessionId) -> Option<bool> {
        self.fetches.remove(id).map(|(force, _)| force)
    }
}

impl DeltaManager {
    /// A member appeared while this node is ready: ask it for its digest, send the next
    /// change of the sessions served here whole.
    pub(super) fn greet(&mut self, member: MemberId, now: Millis) -> Vec<Outgoing> {
        if self.catch_up.partitioned {
            self.catch_up.digests.insert(member, now + DIGEST_REASK_MS);
            self.catch_up.greeted.insert(member, now);
        }
        for e in self.core.sessions.entries.values_mut() {
            if e.primary {
                e.resync = true;
            }
        }
        let msg = SessionMessage::DigestRequest;
        self.core
            .msg(vec![member], &msg, false)
            .into_iter()
            .collect()
    }

    /// Answers a DIGEST_REQUEST (only when ready: see the module docs); while partitioned,
    /// without the unacknowledged changes.
    pub(super) fn digest(&mut self, to: MemberId) -> Vec<Outgoing> {
        if self.transfer.is_some() {
            return vec![];
        }
        let store = &self.core.sessions;
        let hide_unacked = self.catch_up.partitioned;
        let mut sessions = Vec::with_capacity(store.len().min(DIGEST_BATCH));
        let mut batches = Vec::new();
        for (id, e) in store.entries.iter() {
            if hide_unacked && e.unacked {
                continue;
            }
            sessions.push((id.clone(), e.session.version, e.session.stamp));
            if sessions.len() == DIGEST_BATCH {
                batches.push(std::mem::take(&mut sessions));
            }
        }
        batches.push(sessions);
        // The removals ride with the first batch.
        let mut removed: Vec<(SessionId, u64)> =
            store.tombstones().map(|(id, v)| (id.clone(), v)).collect();
        let mut out = Vec::new();
        for sessions in batches {
            let removed = std::mem::take(&mut removed);
            let msg = SessionMessage::Digest { sessions, removed };
            out.extend(self.core.msg(vec![to], &msg, false));
        }
        out
    }

    /// Fetches from `from` what it holds newer than here; drops what it removed.
    pub(super) fn on_digest(
        &mut self,
        from: MemberId,
        sessions: Vec<(SessionId, u64, Stamp)>,
        removed: Vec<(SessionId, u64)>,
        now: Millis,
    ) -> Vec<Outgoing> {
        for (id, version) in removed {
            // Only what is held: re-recording every tombstone of every digest would keep
            // them alive forever under membership churn.
            let held = self.core.sessions.get(&id).map(|e| e.session.version);
            if held.is_some_and(|v| v <= version) {
                self.core.sessions.remove(&id, version, now);
                self.core.stats.sessions_expired += 1;
            }
        }
        let last = sessions.len() < DIGEST_BATCH;
        let catching_up = self.catch_up.partitioned;
        let mut out = Vec::new();
        for (id, version, stamp) in sessions {
            let store = &self.core.sessions;
            if store.removed_at_or_after(&id, version) {
                continue;
            }
            let (behind, yields) = match store.get(&id) {
                Some(e) => (
                    e.session.rank() < (version, stamp),
                    catching_up && e.unacked && e.session.rank() != (version, stamp),
                ),
                None => (true, false),
            };
            if behind || yields {
                if catching_up {
                    let until = now + CATCH_UP_FETCH_MS;
                    self.catch_up.fetches.insert(id.clone(), (yields, until));
                }
                out.extend(self.fetch(id, from));
            }
        }
        let settled = self
            .catch_up
            .greeted
            .get(&from)
            .is_none_or(|at| now >= at + DIGEST_REASK_MS);
        if last && (!catching_up || self.catch_up.met_us.contains(&from) || settled) {
            self.catch_up.digests.remove(&from);
        }
        out
    }

    /// `from` asked for this node's digest: it has this node in its view now and replicates
    /// its writes here from then on. While catching up after a partition, a digest of
    /// `from` taken before that misses what `from` wrote in between (replicated to the
    /// members it saw then, not here), so `from` is asked again; a digest already on its
    /// way was taken later (messages come in order) and counts.
    pub(super) fn met_by(&mut self, from: MemberId, now: Millis) -> Vec<Outgoing> {
        if !self.catch_up.partitioned {
            return vec![];
        }
        self.catch_up.met_us.insert(from);
        if !self.core.members.contains(&from) {
            // It is greeted when it joins the view, after this.
            return vec![];
        }
        self.catch_up.digests.insert(from, now + DIGEST_REASK_MS);
        self.core
            .msg(vec![from], &SessionMessage::DigestRequest, false)
            .into_iter()
            .collect()
    }

    /// A FETCHED answer to a catch-up fetch: true if it replaced an unacknowledged copy
    /// (else the caller applies it by rank).
    pub(super) fn yield_fetched(&mut self, s: &Session, now: Millis) -> bool {
        if self.catch_up.fetched(&s.id) != Some(true) {
            return false;
        }
        let unacked = self.core.sessions.get(&s.id).is_some_and(|e| e.unacked);
        if !unacked {
            return false;
        }
        tracing::info!(context = %self.core.ctx, session = %s.id, version = s.version,
            "caught up after a partition: an unacknowledged change made here gives way to the cluster's copy");
        self.core
            .sessions
            .yield_to(s.clone(), now, &mut self.core.stats)
    }

    /// Asks again the members whose digest is late; gives up late catch-up fetches.
    pub(super) fn catch_up_timeout(&mut self, now: Millis) -> Vec<Outgoing> {
        self.catch_up.fetches.retain(|_, (_, until)| *until > now);
        let late: Vec<MemberId> = self
            .catch_up
            .digests
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(m, _)| *m)
            .collect();
        let mut out = Vec::new();
        for m in late {
            self.catch_up.digests.insert(m, now + DIGEST_REASK_MS);
            out.extend(
                self.core
                    .msg(vec![m], &SessionMessage::DigestRequest, false),
            );
        }
        out
    }
}
