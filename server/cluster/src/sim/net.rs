//! The simulated network: connections between simulated nodes, an ordered queue of pending
//! deliveries, and the chaos knobs.
//!
//! Model (what TCP guarantees and what it does not):
//! - Within one connection frames arrive in order, unless `reorder` hits a Data frame: that
//!   models Tomcat's pooled / asynchronous senders, where messages of one sender travel over
//!   several connections and overtake each other. A reordered Data frame still never
//!   overtakes a handshake or control frame sent before it, nor arrives after the close.
//! - `duplicate` re-delivers a Data frame later on the same connection (a retransmitting
//!   middlebox, or a sender retrying on a pooled connection); the receiver must dedup.
//! - `reset` breaks the connection instead of delivering a frame: both ends see a reset, the
//!   frames in flight are lost. This is how a lossy network looks through TCP, and what
//!   forces retransmits.
//! - A partition (a cut link) holds frames in flight between the two sides (TCP keeps
//!   retrying) and delivers them on heal if both ends still have the connection; a connect
//!   or probe across a cut gets no answer (the node's own deadlines fire).
//! - A killed node's connections reset; connecting to or probing it is refused at once.
use crate::frame::Envelope;
use crate::node::{ConnId, Direction};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Chaos knobs, probabilities per Data frame.
#[derive(Clone, Debug)]
pub struct Chaos {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub reorder: f64,
    pub duplicate: f64,
    pub reset: f64,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            min_delay: Duration::from_micros(100),
            max_delay: Duration::from_micros(500),
            reorder: 0.0,
            duplicate: 0.0,
            reset: 0.0,
        }
    }
}

impl Chaos {
    /// A hostile but live network: jitter, reordering, duplicates and resets.
    pub fn rough() -> Self {
        Chaos {
            min_delay: Duration::from_micros(100),
            max_delay: Duration::from_millis(5),
            reorder: 0.1,
            duplicate: 0.05,
            reset: 0.01,
        }
    }
}

/// Something the network will hand to a node at a given time.
#[derive(Debug)]
pub enum Delivery {
    Connected {
        node: usize,
        conn: ConnId,
        dir: Direction,
        peer: SocketAddr,
    },
    ConnectFailed {
        node: usize,
        conn: ConnId,
        reason: String,
    },
    Frame {
        node: usize,
        conn: ConnId,
        env: Envelope,
    },
    Disconnected {
        node: usize,
        conn: ConnId,
        reason: String,
    },
    Probe {
        node: usize,
        member: crate::member::MemberId,
        result: Result<(), String>,
    },
}

/// One end of a simulated connection.
pub(super) type End = (usize, ConnId);

#[derive(Default)]
pub(super) struct Network {
    /// Pending deliveries by (time, sequence): the sequence keeps the order deterministic.
    pub queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    /// Each end to the other end of its connection.
    pub links: BTreeMap<End, End>,
    /// Latest scheduled arrival per receiving end of frames kept in TCP order.
    pub last_arrival: BTreeMap<End, Instant>,
    /// Latest arrival of a non-Data frame: reordered Data never overtakes the handshake.
    pub barrier: BTreeMap<End, Instant>,
    /// Latest arrival of anything: a close (FIN) arrives after all of it.
    pub last_any: BTreeMap<End, Instant>,
    /// Frames held by a partition, per receiving end, in order.
    pub held: BTreeMap<End, Vec<Envelope>>,
    /// Cut node pairs (lower index first).
    pub cuts: BTreeSet<(usize, usize)>,
    /// Ends that still accept frames (not closed by their node, not reset).
    pub open: BTreeSet<End>,
    next_inbound: u64,
}

impl Network {
    pub(super) fn schedule(&mut self, at: Instant, d: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), d);
    }
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Delivery> {
        let (&key, _) = self.queue.first_key_value()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key)
    }
    pub(super) fn next_time(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(k, _)| k.0)
    }
    pub(super) fn inbound_id(&mut self) -> ConnId {
        self.next_inbound += 1;
        ConnId::inbound(self.next_inbound)
    }
    pub(super) fn is_cut(&self, a: usize, b: usize) -> bool {
        self.cuts.contains(&(a.min(b), a.max(b)))
    }
    pub(super) fn link(&mut self, a: End, b: End) {
        self.links.insert(a, b);
        self.links.insert(b, a);
        self.open.insert(a);
        self.open.insert(b);
    }
    /// Ends the life of one end: frames still scheduled to it are discarded on delivery.
    pub(super) fn close_end(&mut self, end: End) {
        self.open.remove(&end);
        self.held.remove(&end);
    }
}
