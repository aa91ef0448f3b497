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
//! digest: the joiner's memory stays that of its sessions.
use super::DeltaManager;
use crate::id::SessionId;
use crate::manager::Outgoing;
use crate::message::SessionMessage;
use crate::session::{Millis, Stamp};
use shoal_cluster::MemberId;

/// Entries per DIGEST message (~40 bytes each on the wire).
const DIGEST_BATCH: usize = 4096;

impl DeltaManager {
    /// A member appeared while this node is ready: ask it for its digest, send the next
    /// change of the sessions served here whole.
    pub(super) fn greet(&mut self, member: MemberId) -> Vec<Outgoing> {
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

    /// Answers a DIGEST_REQUEST (only when ready: see the module docs).
    pub(super) fn digest(&mut self, to: MemberId) -> Vec<Outgoing> {
        if self.transfer.is_some() {
            return vec![];
        }
        let store = &self.core.sessions;
        let mut sessions = Vec::with_capacity(store.len().min(DIGEST_BATCH));
        let mut batches = Vec::new();
        for (id, e) in store.entries.iter() {
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
        let mut out = Vec::new();
        for (id, version, stamp) in sessions {
            let store = &self.core.sessions;
            if store.removed_at_or_after(&id, version) {
                continue;
            }
            let behind = match store.get(&id) {
                Some(e) => e.session.rank() < (version, stamp),
                None => true,
            };
            if behind {
                out.extend(self.fetch(id, from));
            }
        }
        out
    }
}
