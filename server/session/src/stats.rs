//! Counters mirroring Tomcat's DeltaManager / BackupManager and ReplicationValve MBeans.
use crate::message::MessageKind;
use crate::persistent::StoreStatus;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Default, Serialize)]
pub struct ManagerStats {
    /// Sessions this node holds with their value (DeltaManager: all; BackupManager: primary + backup).
    pub active_sessions: u64,
    /// BackupManager: sessions known only by location.
    pub proxy_sessions: u64,
    /// Sessions created here (Tomcat: sessionCounter).
    pub sessions_created: u64,
    /// Sessions expired by this node's sweeper (as primary) or dropped as stale replicas.
    pub sessions_expired: u64,
    pub sessions_invalidated: u64,
    /// Requests refused because of attribute limits.
    pub rejected_by_limits: u64,
    /// Concurrent writes of one session detected by version (see crate docs for the rule).
    pub conflicts: u64,
    /// Sessions changed here while the cluster was apart (a partition) whose changes a heal
    /// discarded for another member's copy (the conflict rule); each is also logged as a
    /// warning with the session id. `partition_conflict_ids`: the latest ones.
    pub partition_conflicts: u64,
    pub partition_conflict_ids: Vec<String>,
    /// Messages ignored because the replica already had that version or a newer one.
    pub stale_messages: u64,
    /// Out-of-order deltas held until the gap before them filled.
    pub buffered_deltas: u64,
    /// Full sessions fetched to repair a gap or a conflict, or for a proxy request.
    pub fetches: u64,
    /// State transfers completed as receiver / served as sender.
    pub state_transfers: u64,
    pub state_transfers_served: u64,
    /// Duration of the last completed state transfer (ms) and sessions it brought.
    pub last_transfer_ms: u64,
    pub last_transfer_sessions: u64,
    /// BackupManager: sessions promoted to primary here, backups re-created after a loss.
    pub promotions: u64,
    pub backups_recreated: u64,
    /// Per message type (Tomcat's counterSend_EVT_* / counterReceive_EVT_*).
    pub sent: Vec<(&'static str, u64)>,
    pub received: Vec<(&'static str, u64)>,
    /// ReplicationValve: replicated requests, total and last ms spent waiting for replication.
    pub replicated_requests: u64,
    pub replication_time_ms_total: u64,
    pub replication_failures: u64,
    /// ReplicationValve: requests matched by the URL filter (Tomcat: nrOfFilterRequests).
    pub filtered_requests: u64,
    /// Asynchronous replication: bytes queued now, and requests that had to wait because
    /// more than `async_queue_bytes` were queued (backpressure).
    pub async_queue_bytes: u64,
    pub async_queue_full: u64,
    /// Read-your-writes (async): requests whose node's copy was older than their version
    /// token (they waited for replication, fetched, or both), the fetches among them, and
    /// how long they were held (`ryw_wait_ms`: buckets of [`RYW_BUCKETS_MS`] and above).
    pub ryw_waits: u64,
    pub ryw_fetches: u64,
    pub ryw_wait_ms: Vec<(u64, u64)>,
    pub ryw_wait_ms_sum: u64,
    /// Requests whose token named a version no reachable copy had (an async write lost
    /// with its node before it replicated): served the newest copy, counted here and
    /// logged with the session id (`ryw_lost_ids`: the latest ones).
    pub ryw_lost: u64,
    pub ryw_lost_ids: Vec<String>,
    /// Version tokens refused (forged, truncated, of another session or cluster): those
    /// requests were served as if they carried none.
    pub ryw_bad_tokens: u64,
    /// `manager = "persistent"`: the store's state (kind, place, degraded reason, queue,
    /// lag, conflicts, loads and saves).
    pub store: Option<StoreStatus>,
    /// `manager = "delta"` or `"backup"` with a store: the write-behind queue (depth, lag,
    /// writes, conflicts, errors).
    pub write_behind: Option<WriteBehindStats>,
}

/// Upper bounds (ms, inclusive) of the `ryw_wait_ms` histogram buckets; one more bucket
/// counts the longer waits.
pub const RYW_BUCKETS_MS: [u64; 8] = [1, 2, 5, 10, 25, 100, 500, 2000];

/// How many session ids [`ManagerStats::partition_conflict_ids`] keeps.
const CONFLICT_IDS: usize = 1000;

impl ManagerStats {
    /// A heal replaced session `id`, changed here while apart at `ours`, with another
    /// member's copy at `theirs`: counted, kept and logged.
    pub(crate) fn note_partition_conflict(
        &mut self,
        id: &crate::id::SessionId,
        ours: u64,
        theirs: u64,
    ) {
        self.partition_conflicts += 1;
        if self.partition_conflict_ids.len() >= CONFLICT_IDS {
            self.partition_conflict_ids.remove(0);
        }
        self.partition_conflict_ids.push(id.to_string());
        tracing::warn!(session = %id, ours, theirs,
            "partition conflict: session {id} was changed here while the cluster was apart (version {ours}) and the heal kept another member's copy (version {theirs}); the changes made here are lost");
    }

    /// Read-your-writes: no reachable copy of `id` held version `seen`; `have` was served.
    pub(crate) fn note_ryw_lost(
        &mut self,
        id: &crate::id::SessionId,
        seen: u64,
        have: Option<u64>,
    ) {
        self.ryw_lost += 1;
        if self.ryw_lost_ids.len() >= CONFLICT_IDS {
            self.ryw_lost_ids.remove(0);
        }
        self.ryw_lost_ids.push(id.to_string());
        let have = have.map_or("none".to_owned(), |v| v.to_string());
        tracing::warn!(session = %id, seen, have = %have,
            "async write lost: session {id} was acknowledged at version {seen} but no reachable node holds it (its writer failed before replicating it); serving version {have}");
    }
}

/// Read-your-writes: how long requests were held, lock-free (the runtime times them).
#[derive(Debug, Default)]
pub(crate) struct RywTimes {
    buckets: [AtomicU64; RYW_BUCKETS_MS.len() + 1],
    sum_ms: AtomicU64,
}

impl RywTimes {
    pub(crate) fn record(&self, took: Duration) {
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let i = RYW_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(RYW_BUCKETS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// `(upper bound ms, count)` per bucket, `u64::MAX` for the last; and the sum.
    pub(crate) fn fill(&self, s: &mut ManagerStats) {
        s.ryw_wait_ms = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let le = RYW_BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX);
                (le, c.load(Ordering::Relaxed))
            })
            .collect();
        s.ryw_wait_ms_sum = self.sum_ms.load(Ordering::Relaxed);
    }
}

/// Health and counters of a context's write-behind queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriteBehindStats {
    /// The store, as it describes itself.
    pub store: String,
    /// The store's kind (`sqlite`, `redis`, …).
    pub kind: String,
    /// While the last store operation failed and none has succeeded since: its error (the
    /// store counts as down; health reports the context degraded).
    pub degraded: Option<String>,
    /// Sessions waiting to be written (queued or being written).
    pub queued: u64,
    /// Their attribute bytes.
    pub queued_bytes: u64,
    /// Age of the oldest change not yet in the store, ms (the lag).
    pub lag_ms: u64,
    /// Rows saved, touched (last access only), removed.
    pub writes: u64,
    pub touches: u64,
    pub removes: u64,
    /// Compare-and-set conflicts met (each one is resolved by rank).
    pub conflicts: u64,
    /// Changes not written because the store held a newer row (or the row was removed).
    pub stale_skipped: u64,
    /// Store errors (each is retried).
    pub errors: u64,
    pub last_error: Option<String>,
    /// Requests that waited for room in the queue (backpressure).
    pub full_waits: u64,
    /// Sessions loaded from the store on a miss, and adopted by the manager.
    pub loads: u64,
    pub adopted: u64,
    /// The store check passed (the writer writes only after it).
    pub checked: bool,
    /// How long the store took for the writes (each coalesced change, with its retries of a
    /// lost compare-and-set).
    pub latency: StoreLatency,
}

/// Durations of store operations as this node timed them (successful or not).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreLatency {
    pub ops: u64,
    pub total_us: u64,
    pub max_us: u64,
}

impl StoreLatency {
    /// Mean duration of an operation (µs), 0 before the first.
    pub fn avg_us(&self) -> u64 {
        self.total_us.checked_div(self.ops).unwrap_or(0)
    }
}

/// Times store operations from many tasks without a lock.
#[derive(Debug, Default)]
pub(crate) struct LatencyCounter {
    ops: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

impl LatencyCounter {
    pub(crate) fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StoreLatency {
        StoreLatency {
            ops: self.ops.load(Ordering::Relaxed),
            total_us: self.total_us.load(Ordering::Relaxed),
            max_us: self.max_us.load(Ordering::Relaxed),
        }
    }
}

/// Per-type message counters kept by a manager.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageCounters {
    pub sent: [u64; MessageKind::ALL.len()],
    pub received: [u64; MessageKind::ALL.len()],
}

impl MessageCounters {
    pub(crate) fn fill(&self, stats: &mut ManagerStats) {
        stats.sent = MessageKind::ALL
            .iter()
            .map(|k| (k.name(), self.sent[k.index()]))
            .collect();
        stats.received = MessageKind::ALL
            .iter()
            .map(|k| (k.name(), self.received[k.index()]))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_keeps_count_mean_and_max() {
        let c = LatencyCounter::default();
        assert_eq!(c.snapshot().avg_us(), 0, "no operation yet");
        for ms in [2, 10, 3] {
            c.record(Duration::from_millis(ms));
        }
        let s = c.snapshot();
        assert_eq!((s.ops, s.total_us, s.max_us), (3, 15_000, 10_000));
        assert_eq!(s.avg_us(), 5_000);
    }
}
