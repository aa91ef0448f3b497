//! Joins the core's per-peer counters with the connection byte counters and queue depths.
use super::Driver;
use crate::discovery::MulticastStats;
use crate::stats::{ChannelStats, PeerStats};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

impl Driver {
    pub(super) fn stats(&self) -> ChannelStats {
        snapshot(self)
    }
}

fn snapshot(d: &Driver) -> ChannelStats {
    let peers = d
        .node
        .peer_stats()
        .into_iter()
        .map(|(m, s)| {
            let mut p = PeerStats {
                member: m.id.to_hex(),
                name: m.name.clone(),
                addr: m.addr.to_string(),
                messages_sent: s.tx_messages,
                messages_received: s.rx_messages,
                acks_sent: s.acks_sent,
                acks_received: s.acks_received,
                failures: s.failures,
                retransmits: s.retransmits,
                duplicates: s.duplicates,
                unacked: s.unacked,
                queued_frames: s.queued,
                suspected: s.suspected,
                connected: s.connected,
                ..PeerStats::default()
            };
            for (conn, h) in &d.conns {
                if d.conn_member.get(conn) == Some(&m.id) {
                    p.bytes_sent += h.counters.bytes_sent.load(Relaxed);
                    p.bytes_received += h.counters.bytes_received.load(Relaxed);
                    p.queue_depth_bytes += h.counters.queued_bytes.load(Relaxed);
                }
            }
            p
        })
        .collect();
    let n = d.node.node_stats();
    let cap = d.shared.queue_capacity() as u64;
    let beacon = |f: fn(&MulticastStats) -> &AtomicU64| {
        d.shared
            .multicast
            .as_ref()
            .map(|m| f(m).load(Relaxed))
            .unwrap_or(0)
    };
    ChannelStats {
        incoming_backlog_bytes: d.shared.backlog.bytes() as u64,
        beacons_sent: beacon(|m| &m.sent),
        beacons_accepted: beacon(|m| &m.accepted),
        beacons_bad_proof: beacon(|m| &m.bad_proof),
        queue_full: d.shared.queue_full(),
        queue_bytes_in_use: cap.saturating_sub(d.shared.queue_available() as u64),
        queue_bytes_capacity: cap,
        bad_frames: d.bad_frames,
        handshakes_failed: n.handshakes_failed,
        handshakes_ok: n.handshakes_ok,
        connections_open: n.connections_open,
        suspicions: n.suspicions,
        drops: n.drops,
        peers,
    }
}
