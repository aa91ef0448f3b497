//! Received bytes handed to the application and not yet taken by it. Above the limit the
//! driver stops reading frames, so a slow application pushes back through TCP on the senders
//! (whose MessageDispatch queues then fill and make their `send` wait) instead of growing
//! this node's memory. Connection set-up, probes, timers and commands keep running.
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct AppBacklog {
    bytes: AtomicUsize,
    limit: usize,
    /// Signalled when the backlog drops below the limit again.
    pub room: Notify,
}

impl AppBacklog {
    pub(crate) fn new(limit: usize) -> Self {
        AppBacklog {
            bytes: AtomicUsize::new(0),
            limit: limit.max(1),
            room: Notify::new(),
        }
    }
    pub(crate) fn add(&self, n: usize) {
        self.bytes.fetch_add(n.max(1), Relaxed);
    }
    pub(crate) fn take(&self, n: usize) {
        let n = n.max(1);
        let before = self.bytes.fetch_sub(n, Relaxed);
        if before >= self.limit && before - n < self.limit {
            self.room.notify_one();
        }
    }
    pub(crate) fn full(&self) -> bool {
        self.would_fill(0)
    }
    /// Full once `pending` more bytes (read but not yet delivered) are added.
    pub(crate) fn would_fill(&self, pending: usize) -> bool {
        self.bytes.load(Relaxed).saturating_add(pending) >= self.limit
    }
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Relaxed)
    }
}
