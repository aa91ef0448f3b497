//! Time-driven work: heartbeat, pings, suspicion and verification deadlines, ack timeouts,
//! handshake timeouts, redials. `next_deadline` is the earliest of them.
use super::state::ConnState;
use super::{DisappearReason, Node};
use crate::frame::Body;
use crate::member::MemberId;
use std::time::Instant;

impl Node {
    pub(super) fn timers(&mut self, now: Instant) {
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + self.cfg.heartbeat;
            for m in self.stack.heartbeat(now) {
                self.deliver(m, None);
            }
        }
        self.expire_sends(now);
        self.expire_handshakes(now);
        if !self.left {
            self.check_peers(now);
        }
        self.prune_targets(now);
        self.dial_due(now);
    }

    fn check_peers(&mut self, now: Instant) {
        let mut pings = Vec::new();
        let mut silent = Vec::new();
        let mut timed_out = Vec::new();
        for (id, p) in &self.peers {
            if let Some(s) = &p.suspect {
                if now >= s.deadline {
                    timed_out.push(*id);
                }
                continue;
            }
            if now >= p.last_rx + self.cfg.suspect_after {
                silent.push(*id);
            }
            if let Some(conn) = p.conn {
                if now >= p.last_tx + self.cfg.ping_interval {
                    pings.push((*id, conn));
                }
            }
        }
        for (id, conn) in pings {
            let n = self.write_control(conn, Body::Ping { nonce: 0 });
            if let Some(p) = self.peers.get_mut(&id) {
                p.last_tx = now;
                p.stats.tx_bytes += n as u64;
            }
        }
        for id in silent {
            let ms = now
                .saturating_duration_since(self.peers_last_rx(&id, now))
                .as_millis();
            self.suspect(now, id, format!("silent for {ms}ms"));
        }
        for id in timed_out {
            self.drop_member(now, id, DisappearReason::Timeout);
        }
    }

    fn peers_last_rx(&self, id: &MemberId, now: Instant) -> Instant {
        self.peers.get(id).map_or(now, |p| p.last_rx)
    }

    fn expire_handshakes(&mut self, now: Instant) {
        let late: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !matches!(c.state, ConnState::Open { .. })
                    && now >= c.opened + self.cfg.handshake_timeout
            })
            .map(|(id, c)| (*id, c.peer_addr))
            .collect();
        for (conn, addr) in late {
            let reason = format!(
                "no cluster handshake from {addr} within {}ms",
                self.cfg.handshake_timeout.as_millis()
            );
            self.close_conn(now, conn, &reason);
        }
    }

    fn prune_targets(&mut self, now: Instant) {
        let keep: Vec<_> = self
            .targets
            .iter()
            .filter(|(addr, t)| t.conn.is_some() || self.target_wanted(now, addr, t))
            .map(|(a, _)| *a)
            .collect();
        if keep.len() != self.targets.len() {
            self.targets.retain(|a, _| keep.contains(a));
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.next_heartbeat;
        let mut consider = |t: Instant| {
            if t < next {
                next = t;
            }
        };
        if let Some((_, ps)) = self.sends.first_key_value() {
            consider(ps.deadline);
        }
        for c in self.conns.values() {
            if !matches!(c.state, ConnState::Open { .. }) {
                consider(c.opened + self.cfg.handshake_timeout);
            }
        }
        if !self.left {
            for p in self.peers.values() {
                match &p.suspect {
                    Some(s) => consider(s.deadline),
                    None => {
                        consider(p.last_rx + self.cfg.suspect_after);
                        if p.conn.is_some() {
                            consider(p.last_tx + self.cfg.ping_interval);
                        }
                    }
                }
            }
            for (addr, t) in &self.targets {
                if t.conn.is_none() && !self.addr_served(addr) {
                    // If it is no longer wanted, the wakeup prunes it.
                    consider(t.next_attempt);
                }
            }
        }
        Some(next)
    }
}
