//! [`EventLog`]: the events of one backend, numbered, broadcast to `/api/v1/events`
//! subscribers and kept in a ring for `/api/v1/events/recent`.
use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard},
};

use tokio::sync::broadcast;

use crate::dto::{now_ms, Event, EventKind};

/// Events kept for replay: the most `/api/v1/events/recent` may ask for.
pub const EVENTS_KEPT: usize = 200;
/// Events a live subscriber may fall behind by before it loses the oldest (SSE says so).
const BROADCAST_CAPACITY: usize = 256;

/// Numbers, keeps and broadcasts events. `Send + Sync`; emitting never blocks on readers.
pub struct EventLog {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Event>,
}

struct Ring {
    recent: VecDeque<Event>,
    /// Sequence number of the next event; the first is 1.
    next_seq: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl EventLog {
    pub fn new() -> Self {
        EventLog {
            ring: Mutex::new(Ring {
                recent: VecDeque::with_capacity(EVENTS_KEPT),
                next_seq: 1,
            }),
            live: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `kind` about `subject` now, drops the oldest kept event if the ring is full,
    /// and sends it to the subscribers. Returns the event.
    pub fn emit(&self, kind: EventKind, subject: &str, message: String) -> Event {
        let mut ring = self.lock();
        let event = Event {
            seq: ring.next_seq,
            at_ms: now_ms(),
            kind,
            subject: subject.to_owned(),
            message,
        };
        ring.next_seq += 1;
        if ring.recent.len() == EVENTS_KEPT {
            ring.recent.pop_front();
        }
        ring.recent.push_back(event.clone());
        // Sent under the lock, so subscribers see the sequence numbers in order. No
        // subscriber is not an error: nobody is watching.
        let _ = self.live.send(event.clone());
        event
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// The most recent events, oldest first (at most `limit`).
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let ring = self.lock();
        let skip = ring.recent.len().saturating_sub(limit);
        ring.recent.iter().skip(skip).cloned().collect()
    }
}
