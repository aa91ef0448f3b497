//! The ordered queue of asynchronous replication sends, with a byte bound.
//!
//! Asynchronous sends are futures polled one after the other by one task (so they reach the
//! channel in the order they were made). Without a bound, a node answering requests faster
//! than its replicas take the messages queues them without limit (delta-async `/app/set`
//! 10 KiB grew a node to ~460 MiB). Here every queued send counts its payload bytes until
//! the link has taken it; a request whose send finds more than the bound queued waits until
//! the queue falls back under it. Sends are never dropped or reordered: only the request
//! that produced them is held back, which slows the producer to the replicas' pace.
//!
//! The link's own queue counts too ([`ClusterLink::queued_bytes`]): the channel takes an
//! asynchronous send at once while its MessageDispatch queue (64 MiB) has room, so without
//! it the backlog would simply move there. The link does not say when its queue drains, so
//! a waiting request re-checks every millisecond as well as on each of our own sends.
use super::link::{ClusterLink, SendResults};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

struct Shared {
    bytes: AtomicUsize,
    limit: usize,
    /// Requests that had to wait for room.
    full: AtomicU64,
    drained: Notify,
}

pub(crate) struct AsyncQueue {
    tx: mpsc::UnboundedSender<(usize, BoxFuture<'static, SendResults>)>,
    shared: Arc<Shared>,
    link: Arc<dyn ClusterLink>,
}

impl AsyncQueue {
    /// Spawns the sender task (must run inside a tokio runtime).
    pub(crate) fn new(limit: usize, link: Arc<dyn ClusterLink>) -> Self {
        let shared = Arc::new(Shared {
            bytes: AtomicUsize::new(0),
            limit: limit.max(1),
            full: AtomicU64::new(0),
            drained: Notify::new(),
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, BoxFuture<'static, SendResults>)>();
        let s = shared.clone();
        tokio::spawn(async move {
            while let Some((n, fut)) = rx.recv().await {
                for (to, r) in fut.await {
                    if let Err(e) = r {
                        tracing::debug!(member = %to, "async session message failed: {e}");
                    }
                }
                s.bytes.fetch_sub(n, Relaxed);
                s.drained.notify_waiters();
            }
        });
        AsyncQueue { tx, shared, link }
    }

    /// Queues a send of `bytes` payload bytes (the caller holds the order: manager lock).
    /// Returns true when the queue is now over its bound: the caller should `wait_for_room`.
    pub(crate) fn push(&self, bytes: usize, fut: BoxFuture<'static, SendResults>) -> bool {
        let now = self.shared.bytes.fetch_add(bytes, Relaxed) + bytes;
        if let Err(e) = self.tx.send((bytes, fut)) {
            // The sender task is gone (runtime shutting down): nothing left to send or wait for.
            self.shared.bytes.fetch_sub(bytes, Relaxed);
            drop(e);
            return false;
        }
        now + self.link.queued_bytes() > self.shared.limit
    }

    fn has_room(&self) -> bool {
        self.shared.bytes.load(Relaxed) + self.link.queued_bytes() <= self.shared.limit
    }

    /// Waits until at most the bound is queued; counts the wait.
    pub(crate) async fn wait_for_room(&self) {
        self.shared.full.fetch_add(1, Relaxed);
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a drain between check and await wakes us.
            drained.as_mut().enable();
            if self.has_room() || self.tx.is_closed() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(1), drained).await;
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.shared.bytes.load(Relaxed)
    }

    pub(crate) fn full(&self) -> u64 {
        self.shared.full.load(Relaxed)
    }
}
