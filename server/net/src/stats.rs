//! Per-peer counters (bytes, messages, acks, failures, queue depth) for the admin API.
//!
//! Byte counters live on the connection (atomics bumped by its reader and writer tasks without
//! a round trip to the driver); message/ack/failure counters are kept by the driver, which sees
//! every send outcome. A snapshot joins both per member.
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one TCP connection, shared by its tasks and the driver.
#[derive(Debug, Default)]
pub(crate) struct ConnCounters {
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    /// Bytes handed to the writer and not yet written to the socket.
    pub queued_bytes: AtomicU64,
}

impl ConnCounters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
    pub(crate) fn sub(c: &AtomicU64, n: u64) {
        c.fetch_sub(n, Relaxed);
    }
}

/// One member's counters as shown by the admin API.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PeerStats {
    pub member: String,
    pub name: String,
    pub addr: String,
    /// Socket bytes on this member's connections (frames of every kind).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Data messages written to / received from this member (after dedup).
    pub messages_sent: u64,
    pub messages_received: u64,
    pub acks_sent: u64,
    pub acks_received: u64,
    /// Sends to this member that failed (timeout, connection lost, refused).
    pub failures: u64,
    pub retransmits: u64,
    pub duplicates: u64,
    /// Frames sent and not yet acked.
    pub unacked: u64,
    /// Frames waiting for a connection to this member.
    pub queued_frames: u64,
    /// Bytes waiting in the connection's write queue right now.
    pub queue_depth_bytes: u64,
    pub suspected: bool,
    pub connected: bool,
}

/// Channel-wide counters.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ChannelStats {
    /// Times an asynchronous send found the MessageDispatch queue full and had to wait.
    pub queue_full: u64,
    /// Bytes admitted to the asynchronous queue and not yet written.
    pub queue_bytes_in_use: u64,
    pub queue_bytes_capacity: u64,
    /// Received payload bytes not yet taken by the application (reading pauses at the limit).
    pub incoming_backlog_bytes: u64,
    /// Connections closed because a peer sent an undecodable frame.
    pub bad_frames: u64,
    /// Handshakes refused or failed (wrong secret, other domain, protocol violation).
    pub handshakes_failed: u64,
    pub handshakes_ok: u64,
    pub connections_open: u64,
    pub suspicions: u64,
    pub drops: u64,
    /// Multicast beacons sent / accepted / dropped for a bad proof (wrong or no secret).
    pub beacons_sent: u64,
    pub beacons_accepted: u64,
    pub beacons_bad_proof: u64,
    pub peers: Vec<PeerStats>,
}
