//! State the handles read without a round trip to the driver: the local member, the current
//! view, the membership broadcast, the MessageDispatch queue (a byte semaphore) and the
//! incoming backlog. Written by the driver, read by [`crate::Channel`].
use crate::backlog::AppBacklog;
use crate::discovery::MulticastStats;
use crate::types::MembershipEvent;
use shoal_cluster::Member;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// State read by handles without a round trip to the driver.
pub(crate) struct Shared {
    pub local: Member,
    pub members: RwLock<Vec<Member>>,
    pub events: broadcast::Sender<MembershipEvent>,
    queue: Arc<Semaphore>,
    queue_capacity: usize,
    queue_full: AtomicU64,
    pub multicast: Option<Arc<MulticastStats>>,
    pub backlog: Arc<AppBacklog>,
}

impl Shared {
    pub(crate) fn new(
        local: Member,
        queue_bytes: usize,
        multicast: Option<Arc<MulticastStats>>,
        backlog: Arc<AppBacklog>,
    ) -> Self {
        let (events, _) = broadcast::channel(256);
        Shared {
            local,
            members: RwLock::new(Vec::new()),
            events,
            queue: Arc::new(Semaphore::new(queue_bytes)),
            queue_capacity: queue_bytes,
            queue_full: AtomicU64::new(0),
            multicast,
            backlog,
        }
    }
    /// Wakes senders waiting for queue room: the channel is gone.
    pub(crate) fn close_queue(&self) {
        self.queue.close();
    }
    pub(crate) fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }
    pub(crate) fn queue_available(&self) -> usize {
        self.queue.available_permits()
    }
    pub(crate) fn queue_full(&self) -> u64 {
        self.queue_full.load(Relaxed)
    }
    /// Waits for `bytes` of room in the MessageDispatch queue; counts when it had to wait.
    pub(crate) async fn admit(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = bytes.clamp(1, self.queue_capacity).min(u32::MAX as usize) as u32;
        match self.queue.clone().try_acquire_many_owned(n) {
            Ok(p) => Some(p),
            Err(TryAcquireError::Closed) => None,
            Err(TryAcquireError::NoPermits) => {
                self.queue_full.fetch_add(1, Relaxed);
                self.queue.clone().acquire_many_owned(n).await.ok()
            }
        }
    }
}
