//! Counters of a persistent context, for `/metrics`, health and the admin API.
use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PersistStats {
    /// Store operations issued, by kind.
    pub loads: u64,
    pub version_checks: u64,
    pub saves: u64,
    pub removes: u64,
    pub expiry_queries: u64,
    /// Lost compare-and-sets (and stale memory copies with unsaved changes): each one a
    /// request answered with a retryable error or a memory copy dropped, logged with the id.
    pub conflicts: u64,
    /// Sessions taken over from another node (given a new id here).
    pub takeovers: u64,
    /// Requests that carried an id moved by a takeover and followed its tombstone.
    pub tombstones_followed: u64,
    /// `Moved` notices that dropped a memory copy here.
    pub moved_dropped: u64,
    /// Sessions this node expired (its own, from memory) / expired rows swept from the store.
    pub expired: u64,
    pub store_expired: u64,
    /// Memory copies dropped because another node owns the session now (expiry found a newer row).
    pub dropped_not_owner: u64,
    pub swapped_out: u64,
    /// New sessions refused by `max_active_sessions`.
    pub refused_max_active: u64,
    /// Store operations answered `Unavailable`.
    pub unavailable: u64,
    /// Requests served from memory without the version check because the store was down.
    pub served_unverified: u64,
    /// Rows whose data could not be decoded.
    pub decode_errors: u64,
    /// Sessions with changes not yet in the store (the write queue), and changes refused
    /// because it was full.
    pub queue_depth: u64,
    pub queue_full: u64,
    /// Age of the oldest change not yet in the store (ms): the write-behind lag.
    pub queue_lag_ms: u64,
    /// The last store operation failed `Unavailable` and none has succeeded since.
    pub degraded: bool,
    pub in_memory: u64,
}

/// What `/metrics`, health and the admin API show of a persistent context's store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StoreStatus {
    /// The store's kind (`sqlite`, `redis`, …).
    pub name: String,
    /// Where it is (never a password).
    pub describe: String,
    /// Why the store counts as down, while it does.
    pub degraded: Option<String>,
    /// The store check at start failed (the context serves nothing).
    pub check_error: Option<String>,
    pub stats: PersistStats,
    /// How long the store took for this node's operations (timeouts count at their deadline).
    pub latency: crate::stats::StoreLatency,
}
