//! The session list of a context: which sessions a [`SessionQuery`] selects, in which order,
//! and which page of them is returned.
use crate::dto::{SessionPage, SessionQuery, SessionSummary};

/// Page size when the query names none.
pub const DEFAULT_PAGE: u32 = 50;

/// Whether `id` passes the query's `prefix` (a backend may check this before building a
/// summary, as the node does).
pub fn id_matches(q: &SessionQuery, id: &str) -> bool {
    q.prefix.as_deref().is_none_or(|p| id.starts_with(p))
}

/// `summary` with its idle time at `now_ms`.
pub fn with_idle(summary: &SessionSummary, now_ms: u64) -> SessionSummary {
    SessionSummary {
        idle_ms: now_ms.saturating_sub(summary.last_access_ms),
        ..summary.clone()
    }
}

fn selected(q: &SessionQuery, s: &SessionSummary) -> bool {
    id_matches(q, &s.id)
        && q.min_idle_secs
            .is_none_or(|m| s.idle_ms >= m.saturating_mul(1000))
        && q.node
            .as_deref()
            .is_none_or(|n| s.primary == n || s.backups.iter().any(|b| b == n))
}

/// Filters `sessions` (idle times already computed) by `q`, orders them most recently used
/// first (ties by id: what an operator looks for, and stable across pages), and returns the
/// page `q.offset`, `q.limit` (already validated by the route) with the total.
pub fn page_sessions(sessions: Vec<SessionSummary>, q: &SessionQuery) -> SessionPage {
    let mut matching: Vec<SessionSummary> =
        sessions.into_iter().filter(|s| selected(q, s)).collect();
    matching.sort_by(|a, b| {
        b.last_access_ms
            .cmp(&a.last_access_ms)
            .then(a.id.cmp(&b.id))
    });
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    let total = matching.len() as u64;
    let items = matching
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect();
    SessionPage {
        items,
        total,
        offset,
        limit,
    }
}
