//! Members: join after a handshake, one connection per pair, restarts, failure detection
//! (suspect → verify with a probe → drop), leave, and dialing of candidates and lost members.
use super::state::{ConnState, Peer, Suspicion, Target};
use super::{Action, ConnId, DisappearReason, Event, Node};
use crate::frame::Body;
use crate::member::{Member, MemberId};
use std::net::SocketAddr;
use std::time::Instant;

impl Node {
    pub(super) fn candidate(&mut self, now: Instant, addr: SocketAddr) {
        if addr == self.local.addr || self.left || self.self_addrs.contains(&addr) {
            return;
        }
        let until = now + self.cfg.redial_for.min(self.cfg.reconnect_max * 5);
        let min = self.cfg.reconnect_min;
        let t = self.targets.entry(addr).or_insert(Target {
            backoff: min,
            next_attempt: now,
            conn: None,
            wanted_until: None,
            member: None,
        });
        t.wanted_until = Some(t.wanted_until.map_or(until, |u| u.max(until)));
        self.dial_due(now);
    }

    /// True when a live member at `addr` already has an open connection.
    pub(super) fn addr_served(&self, addr: &SocketAddr) -> bool {
        let known = self.targets.get(addr).and_then(|t| t.member);
        self.peers
            .values()
            .any(|p| (p.member.addr == *addr || Some(p.member.id) == known) && p.conn.is_some())
    }

    /// Dials every wanted target whose backoff has elapsed.
    pub(super) fn dial_due(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let mut due = Vec::new();
        for (addr, t) in &self.targets {
            if t.conn.is_none() && t.next_attempt <= now && self.target_wanted(now, addr, t) {
                due.push(*addr);
            }
        }
        for addr in due {
            let conn = self.alloc_conn();
            let c = super::state::Conn {
                dir: super::Direction::Outbound,
                peer_addr: addr,
                state: ConnState::Dialing,
                opened: now,
                target: Some(addr),
            };
            self.conns.insert(conn, c);
            if let Some(t) = self.targets.get_mut(&addr) {
                t.conn = Some(conn);
            }
            self.out.actions.push_back(Action::Connect { conn, addr });
        }
    }

    pub(super) fn target_wanted(&self, now: Instant, addr: &SocketAddr, t: &Target) -> bool {
        if self.addr_served(addr) {
            return false;
        }
        let member_waits = self
            .peers
            .values()
            .any(|p| (p.member.addr == *addr || Some(p.member.id) == t.member) && p.conn.is_none());
        member_waits || t.wanted_until.is_some_and(|u| u > now)
    }

    /// A handshake completed on `conn` with `member`.
    pub(super) fn member_connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        initiator: MemberId,
        member: Member,
    ) {
        // A restart: same name or address, other id or a newer incarnation.
        let restarted: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| {
                let same_node = p.member.name == member.name || p.member.addr == member.addr;
                let newer = p.member.id != member.id || member.incarnation > p.member.incarnation;
                same_node && newer
            })
            .map(|p| p.member.id)
            .collect();
        for old in restarted {
            self.drop_member(now, old, DisappearReason::Restarted);
        }
        if let Some(p) = self.peers.get_mut(&member.id) {
            p.last_rx = now;
            p.suspect = None;
            match p.conn {
                Some(cur) if cur != conn => {
                    let cur_init = p.conn_initiator;
                    // Both sides apply the same rule, so they keep the same connection.
                    let lowest = self.local.id.min(member.id);
                    let keep_new = if cur_init == initiator {
                        true
                    } else {
                        initiator == lowest
                    };
                    let reason =
                        "duplicate connection (kept the one opened by the lower member id)";
                    if keep_new {
                        self.switch_conn(now, member.id, conn, initiator);
                        self.close_conn(now, cur, reason);
                    } else {
                        self.close_conn(now, conn, reason);
                    }
                }
                _ => self.switch_conn(now, member.id, conn, initiator),
            }
            return;
        }
        tracing::info!(member = %member, "member added");
        let peer = Peer {
            member: member.clone(),
            conn: None,
            conn_initiator: initiator,
            last_rx: now,
            last_tx: now,
            suspect: None,
            unacked: Default::default(),
            stats: Default::default(),
        };
        self.peers.insert(member.id, peer);
        self.stack.member_added(now, &member);
        self.out
            .events
            .push_back(Event::MemberAdded(member.clone()));
        self.switch_conn(now, member.id, conn, initiator);
    }

    /// Makes `conn` the peer's connection and (re)sends what waits for one.
    fn switch_conn(&mut self, now: Instant, id: MemberId, conn: ConnId, initiator: MemberId) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.conn = Some(conn);
            p.conn_initiator = initiator;
            p.last_tx = now;
        }
        self.flush_peer(now, id);
    }

    /// A connection ended (closed by us, by the peer, reset, or the dial failed).
    pub(super) fn conn_gone(&mut self, now: Instant, conn: ConnId, reason: &str) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(addr) = c.target {
            if let Some(t) = self.targets.get_mut(&addr) {
                if t.conn == Some(conn) {
                    t.conn = None;
                    t.next_attempt = now + t.backoff;
                    t.backoff = (t.backoff * 2).min(self.cfg.reconnect_max);
                }
            }
        }
        let ConnState::Open { member } = c.state else {
            // A failed redial to a member that lost its connection: verify it now.
            if let Some(addr) = c.target {
                let waiting = self
                    .peers
                    .values()
                    .find(|p| p.member.addr == addr && p.conn.is_none());
                if let Some(id) = waiting.map(|p| p.member.id) {
                    self.suspect(now, id, format!("reconnect failed: {reason}"));
                }
            }
            return;
        };
        let Some(p) = self.peers.get_mut(&member) else {
            return;
        };
        let was_current = p.conn == Some(conn);
        if was_current {
            p.conn = None;
        }
        // Whatever went out on it and is unacked goes out again (once) on the next one.
        self.requeue_unacked(now, member, conn);
        if !was_current {
            self.flush_peer(now, member);
            return;
        }
        // While two connections race (both sides dialed), losing one is not a failure.
        let other = self
            .conns
            .iter()
            .find(|(_, c)| matches!(c.state, ConnState::Open { member: m } if m == member))
            .map(|(id, c)| (*id, c.dir));
        if let Some((other, dir)) = other {
            let initiator = if dir == super::Direction::Outbound {
                self.local.id
            } else {
                member
            };
            self.switch_conn(now, member, other, initiator);
            return;
        }
        let Some(addr) = self.peers.get(&member).map(|p| p.member.addr) else {
            return;
        };
        // A dial already under way decides: its failure suspects the member at once.
        let dialing = self.conns.values().any(|c| c.target == Some(addr));
        if !dialing {
            self.suspect(now, member, format!("connection lost: {reason}"));
        }
    }

    pub(super) fn suspect(&mut self, now: Instant, id: MemberId, reason: String) {
        if self.left {
            return;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if p.suspect.is_some() {
            return;
        }
        p.suspect = Some(Suspicion {
            deadline: now + self.cfg.verify_timeout,
        });
        let member = p.member.clone();
        self.stats.suspicions += 1;
        tracing::info!(member = %member, %reason, "member suspected, verifying");
        self.out.actions.push_back(Action::Probe {
            member: member.id,
            addr: member.addr,
        });
        self.out
            .events
            .push_back(Event::MemberSuspected { member, reason });
    }

    pub(super) fn probe_result(&mut self, now: Instant, id: MemberId, alive: Result<(), String>) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if p.suspect.is_none() {
            return;
        }
        match alive {
            Ok(()) => {
                // A busy live member is never dropped: the probe proves it is there.
                p.suspect = None;
                p.last_rx = now;
                tracing::info!(member = %p.member, "suspected member answered the probe");
                self.dial_due(now);
            }
            Err(reason) => self.drop_member(now, id, DisappearReason::Crashed(reason)),
        }
    }

    pub(super) fn drop_member(&mut self, now: Instant, id: MemberId, reason: DisappearReason) {
        let Some(p) = self.peers.remove(&id) else {
            return;
        };
        self.stats.drops += 1;
        tracing::warn!(member = %p.member, %reason, "member disappeared");
        if let Some(conn) = p.conn {
            self.out.actions.push_back(Action::Close {
                conn,
                reason: format!("member {reason}"),
            });
            self.conns.remove(&conn);
        }
        let why = format!("member {} disappeared: {reason}", p.member.name);
        let unacked = p.unacked;
        // A member dropped by a partition may come back with the same id and retransmit what
        // we already delivered: keep its window. Restarts (new id) and leaves never return.
        if matches!(reason, DisappearReason::Left | DisappearReason::Restarted) {
            self.dedup.remove(&id);
        }
        if self.dedup.len() > self.peers.len() + 64 {
            let peers = &self.peers;
            self.dedup.retain(|m, _| peers.contains_key(m));
        }
        self.awaiting.retain(|(m, _), _| *m != id);
        if reason != DisappearReason::Left {
            // Keep knocking for a while: a partition may heal, a crashed node may come back.
            let min = self.cfg.reconnect_min;
            let until = now + self.cfg.redial_for;
            let t = self.targets.entry(p.member.addr).or_insert(Target {
                backoff: min,
                next_attempt: now + min,
                conn: None,
                wanted_until: None,
                member: None,
            });
            t.wanted_until = Some(until);
        }
        self.stack.member_disappeared(now, &p.member);
        self.out.events.push_back(Event::MemberDisappeared {
            member: p.member,
            reason,
        });
        // After the event: a sender told "failed: member gone" must find the member already
        // out of the view, or it counts a replica that no longer exists as a failure.
        self.fail_peer_frames(now, id, unacked, &why);
    }

    pub(super) fn do_leave(&mut self, now: Instant) {
        // Every connection that reaches a member's open state, not only the current one:
        // while two connections race, the peer may already have dropped ours.
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(
                    c.state,
                    ConnState::Open { .. } | ConnState::AwaitHelloAck { .. }
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            self.write_control(conn, Body::Leave);
        }
        self.left = true;
        let _ = now;
    }

    pub(super) fn peer_left(&mut self, now: Instant, id: MemberId) {
        self.drop_member(now, id, DisappearReason::Left);
    }
}
