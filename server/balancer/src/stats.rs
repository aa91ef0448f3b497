//! Counters exposed by [`crate::Balancer::stats`] and the status endpoint.

use serde::{Deserialize, Serialize};

/// A snapshot of the balancer, as served (JSON) at the status path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalancerStats {
    /// Requests received from clients (status endpoint excluded).
    pub requests: u64,
    /// Attempts resent to another backend after a connection failure.
    pub retries: u64,
    /// Requests answered 502/503/504 by the balancer itself.
    pub errors: u64,
    pub backends: Vec<BackendStats>,
}

/// One backend's state and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStats {
    pub route: String,
    pub addr: String,
    pub status: BackendStatus,
    /// Set by `mark_draining`; a draining backend that died shows `status: down`.
    pub draining: bool,
    /// Requests sent and not yet answered.
    pub outstanding: usize,
    /// Attempts sent to this backend (a retried request counts on each backend tried).
    pub requests: u64,
    /// Attempts that got no response (connect error, reset, timeout).
    pub failures: u64,
    /// The most recent failure, probe or traffic, for the operator.
    pub last_error: Option<String>,
}

/// What the balancer does with a backend right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendStatus {
    /// Takes sticky and new sessions.
    Up,
    /// Alive; takes only requests of its existing sessions.
    Draining,
    /// Takes nothing until a health probe succeeds.
    Down,
}
