//! Connections and the authenticated handshake.
//!
//! Acceptor: sends Challenge. Connector: answers Hello (its member + nonce + HMAC over the
//! challenge, the nonce and itself). Acceptor: verifies, answers HelloAck with its own proof
//! or Refused{reason} then closes. Connector: verifies the HelloAck. Before that, the only
//! frames accepted are handshake frames and Ping (answered with Pong: the failure detector's
//! probe); anything else closes the connection ("not authenticated").
use super::state::{Conn, ConnState};
use super::{Action, ConnId, Direction, Event, Node};
use crate::auth::ClusterSecret;
use crate::frame::{Body, Envelope};
use crate::member::Member;
use rand::RngCore;
use std::net::SocketAddr;
use std::time::Instant;

fn body_kind(b: &Body) -> &'static str {
    match b {
        Body::Challenge { .. } => "Challenge",
        Body::Hello { .. } => "Hello",
        Body::HelloAck { .. } => "HelloAck",
        Body::Refused { .. } => "Refused",
        Body::Data { .. } => "Data",
        Body::Ack { .. } => "Ack",
        Body::Ping { .. } => "Ping",
        Body::Pong { .. } => "Pong",
        Body::Leave => "Leave",
    }
}

impl Node {
    pub(super) fn connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        dir: Direction,
        peer: SocketAddr,
    ) {
        match dir {
            Direction::Outbound => match self.conns.get_mut(&conn) {
                Some(c) if matches!(c.state, ConnState::Dialing) => {
                    c.state = ConnState::AwaitChallenge;
                    c.opened = now;
                    c.peer_addr = peer;
                }
                _ => {
                    // Not ours (or already given up): do not leak the socket.
                    let reason = "unknown outbound connection".to_string();
                    self.out.actions.push_back(Action::Close { conn, reason });
                }
            },
            Direction::Inbound => {
                let mut challenge = [0u8; 16];
                self.rng.fill_bytes(&mut challenge);
                let state = ConnState::AwaitHello { challenge };
                let c = Conn {
                    dir,
                    peer_addr: peer,
                    state,
                    opened: now,
                    target: None,
                };
                self.conns.insert(conn, c);
                self.write_control(conn, Body::Challenge { nonce: challenge });
            }
        }
    }

    /// Encodes a control frame (id 0) and queues it on `conn`. Returns the bytes written.
    pub(super) fn write_control(&mut self, conn: ConnId, body: Body) -> usize {
        let env = Envelope {
            id: 0,
            sender: self.local.id,
            body,
        };
        let mut bytes = Vec::with_capacity(64);
        match self.codec.encode(&env, &mut bytes) {
            Ok(()) => {
                let n = bytes.len();
                self.out.actions.push_back(Action::Send { conn, bytes });
                n
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a control frame");
                0
            }
        }
    }

    /// Closes a connection we no longer want (the node forgets it now).
    pub(super) fn close_conn(&mut self, now: Instant, conn: ConnId, reason: &str) {
        self.out.actions.push_back(Action::Close {
            conn,
            reason: reason.to_string(),
        });
        self.conn_gone(now, conn, reason);
    }

    fn refuse(&mut self, now: Instant, conn: ConnId, reason: String) {
        let peer = self.conns.get(&conn).map(|c| c.peer_addr);
        self.write_control(
            conn,
            Body::Refused {
                reason: reason.clone(),
            },
        );
        self.handshake_failed(now, conn, peer, reason);
    }

    fn handshake_failed(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: Option<SocketAddr>,
        reason: String,
    ) {
        self.stats.handshakes_failed += 1;
        if let Some(peer) = peer {
            tracing::warn!(%peer, %reason, "cluster handshake failed");
            self.out.events.push_back(Event::HandshakeFailed {
                peer,
                reason: reason.clone(),
            });
        }
        self.close_conn(now, conn, &reason);
    }

    pub(super) fn frame(&mut self, now: Instant, conn: ConnId, env: Envelope) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let peer = c.peer_addr;
        match (&c.state, env.body) {
            (ConnState::Open { member }, body) => {
                let member = *member;
                if env.sender != member {
                    self.close_conn(
                        now,
                        conn,
                        "frame with a sender id other than the handshaken member",
                    );
                    return;
                }
                self.open_frame(now, conn, member, env.id, body);
            }
            (_, Body::Ping { nonce }) => {
                self.write_control(conn, Body::Pong { nonce });
            }
            (ConnState::AwaitChallenge, Body::Challenge { .. }) if env.sender == self.local.id => {
                // Discovery named one of our own addresses (an alias of the receiver).
                let addr = c.target.unwrap_or(peer);
                tracing::debug!(%addr, "candidate address is this node itself; not dialing it again");
                self.self_addrs.insert(addr);
                self.targets.remove(&addr);
                self.close_conn(now, conn, "connected to itself");
            }
            (ConnState::AwaitChallenge, Body::Challenge { nonce: challenge }) => {
                let mut nonce = [0u8; 16];
                self.rng.fill_bytes(&mut nonce);
                let proof = self.cfg.secret.hello_proof(&challenge, &nonce, &self.local);
                let member = self.local.clone();
                self.write_control(
                    conn,
                    Body::Hello {
                        member,
                        nonce,
                        proof,
                    },
                );
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.state = ConnState::AwaitHelloAck { challenge, nonce };
                }
            }
            (
                ConnState::AwaitHello { challenge },
                Body::Hello {
                    member,
                    nonce,
                    proof,
                },
            ) => {
                let challenge = *challenge;
                let expected = self.cfg.secret.hello_proof(&challenge, &nonce, &member);
                if let Some(reason) = self.check_peer(&member, &expected, &proof) {
                    self.refuse(now, conn, reason);
                    return;
                }
                let proof = self.cfg.secret.ack_proof(&challenge, &nonce, &self.local);
                let local = self.local.clone();
                self.write_control(
                    conn,
                    Body::HelloAck {
                        member: local,
                        proof,
                    },
                );
                self.handshake_done(now, conn, member);
            }
            (ConnState::AwaitHelloAck { challenge, nonce }, Body::HelloAck { member, proof }) => {
                let expected = self.cfg.secret.ack_proof(challenge, nonce, &member);
                if let Some(reason) = self.check_peer(&member, &expected, &proof) {
                    self.refuse(now, conn, reason);
                    return;
                }
                self.handshake_done(now, conn, member);
            }
            (_, Body::Refused { reason }) => {
                let reason = format!("refused by {peer}: {reason}");
                self.handshake_failed(now, conn, Some(peer), reason);
            }
            (_, body) => {
                let reason = format!(
                    "not authenticated: {} frame before the handshake completed",
                    body_kind(&body)
                );
                self.handshake_failed(now, conn, Some(peer), reason);
            }
        }
    }

    /// Why `member` may not join, if it may not.
    fn check_peer(&self, member: &Member, expected: &[u8; 32], got: &[u8; 32]) -> Option<String> {
        if !ClusterSecret::verify(expected, got) {
            return Some(format!(
                "{} failed to prove the cluster secret: check that every node has the same cluster secret",
                member.name
            ));
        }
        if member.domain != self.cfg.domain {
            return Some(format!(
                "{} is in domain '{}', this node ({}) is in domain '{}'",
                member.name, member.domain, self.local.name, self.cfg.domain
            ));
        }
        if member.id == self.local.id {
            return Some("connected to itself (same member id)".to_string());
        }
        None
    }

    fn handshake_done(&mut self, now: Instant, conn: ConnId, member: Member) {
        self.stats.handshakes_ok += 1;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.state = ConnState::Open { member: member.id };
        let initiator = if c.dir == Direction::Outbound {
            self.local.id
        } else {
            member.id
        };
        if let Some(addr) = c.target {
            if let Some(t) = self.targets.get_mut(&addr) {
                t.conn = None;
                t.backoff = self.cfg.reconnect_min;
                t.member = Some(member.id);
            }
        }
        self.member_connected(now, conn, initiator, member);
    }
}
