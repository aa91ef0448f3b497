//! Sending: the send stack, frame ids, per-destination outcomes, acks, retransmit-once,
//! ack timeouts.
//!
//! One send may become several frames per destination (Fragmentation, Order's per-destination
//! split). The first frame to each destination carries the send id; further frames get fresh
//! ids (still strictly increasing). A destination's outcome is known when all its frames are
//! resolved; for synchronized_ack the frame carrying the send id must be `Processed`.
use super::state::{DestProgress, PendingSend, Unacked};
use super::{Action, DeliveryStatus, Event, Node};
use crate::frame::{AckStatus, Body, Envelope, MsgId};
use crate::interceptor::ChannelMessage;
use crate::member::MemberId;
use crate::options::SendOptions;
use std::collections::BTreeMap;
use std::time::Instant;

impl Node {
    pub(super) fn do_send(
        &mut self,
        now: Instant,
        dests: &[MemberId],
        payload: Vec<u8>,
        options: SendOptions,
    ) -> MsgId {
        let id = self.alloc_msg_id();
        self.stats.sends += 1;
        let mut ps = PendingSend {
            wants_ack: options.wants_ack(),
            sync: options.has(SendOptions::SYNCHRONIZED_ACK),
            deadline: now + self.cfg.ack_timeout,
            dests: Vec::with_capacity(dests.len()),
        };
        let mut member_dests = Vec::with_capacity(dests.len());
        for d in dests {
            if ps.dest_mut(d).is_some() {
                continue;
            }
            let mut prog = DestProgress {
                outstanding: Default::default(),
                status: None,
                any_frame: false,
            };
            if self.left {
                prog.status = Some(DeliveryStatus::Failed(
                    "this node has left the cluster".into(),
                ));
            } else if !self.peers.contains_key(d) {
                prog.status = Some(DeliveryStatus::Failed(format!(
                    "{d:?} is not a member of the cluster (never joined or already dropped)"
                )));
            } else {
                member_dests.push(*d);
            }
            ps.dests.push((*d, prog));
        }
        self.sends.insert(id, ps);
        if !member_dests.is_empty() {
            let msg = ChannelMessage {
                id,
                from: self.local.id,
                destinations: member_dests.clone(),
                options,
                payload,
            };
            match self.stack.run_send(now, msg) {
                Ok(outs) => {
                    for m in outs {
                        self.emit_message(now, id, m);
                    }
                }
                Err(e) => {
                    for d in &member_dests {
                        self.set_status(id, d, DeliveryStatus::Failed(e.to_string()));
                    }
                }
            }
            for d in &member_dests {
                let dropped = self
                    .sends
                    .get_mut(&id)
                    .and_then(|ps| ps.dest_mut(d))
                    .is_some_and(|p| !p.any_frame && p.status.is_none());
                if dropped {
                    self.set_status(
                        id,
                        d,
                        DeliveryStatus::Failed("dropped by the interceptor stack".into()),
                    );
                }
            }
        }
        self.check_send(id);
        id
    }

    fn set_status(&mut self, send_id: MsgId, d: &MemberId, st: DeliveryStatus) {
        if let Some(p) = self.sends.get_mut(&send_id).and_then(|ps| ps.dest_mut(d)) {
            if p.status.is_none() {
                p.status = Some(st);
            }
        }
    }

    /// Encodes one output of the send stack and queues it to each of its destinations.
    fn emit_message(&mut self, now: Instant, send_id: MsgId, m: ChannelMessage) {
        let wants_ack = m.options.wants_ack();
        let Some(ps) = self.sends.get_mut(&send_id) else {
            return;
        };
        // Destinations that still expect their first frame get the send id; others a fresh one.
        let (mut primary, mut extra) = (Vec::new(), Vec::new());
        for d in &m.destinations {
            match ps.dest_mut(d) {
                Some(p) if p.status.is_none() => {
                    if p.any_frame {
                        extra.push(*d)
                    } else {
                        primary.push(*d)
                    }
                    p.any_frame = true;
                }
                _ => {}
            }
        }
        let mut env = Envelope {
            id: send_id,
            sender: self.local.id,
            body: Body::Data {
                options: m.options,
                payload: m.payload,
            },
        };
        for (group, fresh) in [(primary, false), (extra, true)] {
            if group.is_empty() {
                continue;
            }
            if fresh {
                env.id = self.alloc_msg_id();
            }
            let mut bytes = Vec::new();
            if let Err(e) = self.codec.encode(&env, &mut bytes) {
                for d in &group {
                    self.set_status(send_id, d, DeliveryStatus::Failed(e.to_string()));
                }
                continue;
            }
            for d in &group {
                if let Some(p) = self.sends.get_mut(&send_id).and_then(|ps| ps.dest_mut(d)) {
                    p.outstanding.insert(env.id);
                }
                self.queue_frame(now, *d, send_id, env.id, bytes.clone(), wants_ack);
            }
        }
    }

    fn queue_frame(
        &mut self,
        now: Instant,
        d: MemberId,
        send_id: MsgId,
        fid: MsgId,
        bytes: Vec<u8>,
        wants_ack: bool,
    ) {
        let limit = self.cfg.outbox_limit;
        let Some(p) = self.peers.get_mut(&d) else {
            return;
        };
        let Some(conn) = p.conn else {
            if p.unacked.len() >= limit {
                let why = format!(
                    "queue to {} is full ({limit} frames waiting for a connection or an ack)",
                    p.member.name
                );
                self.resolve_frame(d, fid, send_id, Err(why));
            } else {
                let u = Unacked {
                    send_id,
                    bytes,
                    conn: None,
                    retried: false,
                    received: false,
                    wants_ack,
                };
                p.unacked.insert(fid, u);
            }
            return;
        };
        p.stats.tx_bytes += bytes.len() as u64;
        p.stats.tx_messages += 1;
        p.last_tx = now;
        if wants_ack {
            let u = Unacked {
                send_id,
                bytes: bytes.clone(),
                conn: Some(conn),
                retried: false,
                received: false,
                wants_ack,
            };
            p.unacked.insert(fid, u);
            self.out.actions.push_back(Action::Send { conn, bytes });
        } else {
            self.out.actions.push_back(Action::Send { conn, bytes });
            self.resolve_frame(d, fid, send_id, Ok(()));
        }
    }

    /// Writes every frame waiting for a connection to the peer's new connection.
    pub(super) fn flush_peer(&mut self, now: Instant, id: MemberId) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(conn) = p.conn else { return };
        let mut delivered = Vec::new();
        for (fid, u) in p.unacked.iter_mut().filter(|(_, u)| u.conn.is_none()) {
            p.stats.tx_bytes += u.bytes.len() as u64;
            p.stats.tx_messages += 1;
            p.last_tx = now;
            self.out.actions.push_back(Action::Send {
                conn,
                bytes: u.bytes.clone(),
            });
            u.conn = Some(conn);
            if !u.wants_ack {
                delivered.push((*fid, u.send_id));
            }
        }
        for (fid, sid) in delivered {
            if let Some(p) = self.peers.get_mut(&id) {
                p.unacked.remove(&fid);
            }
            self.resolve_frame(id, fid, sid, Ok(()));
        }
    }

    /// The connection a peer's frames went out on is gone: queue them for one retransmit.
    pub(super) fn requeue_unacked(
        &mut self,
        _now: Instant,
        id: MemberId,
        conn: crate::node::ConnId,
    ) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let name = p.member.name.clone();
        let mut failed = Vec::new();
        for (fid, u) in p.unacked.iter_mut().filter(|(_, u)| u.conn == Some(conn)) {
            if u.retried {
                failed.push((*fid, u.send_id));
            } else {
                u.retried = true;
                u.conn = None;
                p.stats.retransmits += 1;
            }
        }
        for (fid, sid) in failed {
            if let Some(p) = self.peers.get_mut(&id) {
                p.unacked.remove(&fid);
            }
            let why = format!(
                "connection to {name} lost again before the ack (already retransmitted once)"
            );
            self.resolve_frame(id, fid, sid, Err(why));
        }
    }

    /// Fails every frame of a dropped peer.
    pub(super) fn fail_peer_frames(
        &mut self,
        _now: Instant,
        id: MemberId,
        frames: BTreeMap<MsgId, Unacked>,
        why: &str,
    ) {
        for (fid, u) in frames {
            self.resolve_frame(id, fid, u.send_id, Err(why.to_string()));
        }
    }

    pub(super) fn on_ack(&mut self, id: MemberId, of: MsgId, status: AckStatus) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.stats.acks_received += 1;
        let Some(u) = p.unacked.get_mut(&of) else {
            return;
        };
        let sid = u.send_id;
        let primary_sync = sid == of && self.sends.get(&sid).is_some_and(|s| s.sync);
        let res = match status {
            AckStatus::Received if primary_sync => {
                u.received = true;
                return;
            }
            AckStatus::Received | AckStatus::Processed => Ok(()),
            AckStatus::Failed(r) => Err(format!(
                "{} could not process the message: {r}",
                p.member.name
            )),
        };
        p.unacked.remove(&of);
        self.resolve_frame(id, of, sid, res);
    }

    /// One frame to `d` has an outcome; completes the send when every destination has one.
    fn resolve_frame(&mut self, d: MemberId, fid: MsgId, send_id: MsgId, res: Result<(), String>) {
        let Some(ps) = self.sends.get_mut(&send_id) else {
            return;
        };
        let (wants_ack, sync) = (ps.wants_ack, ps.sync);
        let Some(p) = ps.dest_mut(&d) else { return };
        p.outstanding.remove(&fid);
        if let Err(why) = res {
            if p.status.is_none() {
                p.status = Some(DeliveryStatus::Failed(why));
            }
        }
        if p.outstanding.is_empty() && p.status.is_none() {
            p.status = Some(match (wants_ack, sync) {
                (false, _) => DeliveryStatus::Delivered,
                (true, true) => DeliveryStatus::Processed,
                (true, false) => DeliveryStatus::Acked,
            });
        }
        self.check_send(send_id);
    }

    /// Emits SendComplete once every destination of `send_id` has an outcome.
    pub(super) fn check_send(&mut self, send_id: MsgId) {
        let done = self
            .sends
            .get(&send_id)
            .is_some_and(|ps| ps.dests.iter().all(|(_, p)| p.status.is_some()));
        if !done {
            return;
        }
        let Some(ps) = self.sends.remove(&send_id) else {
            return;
        };
        let mut results = Vec::with_capacity(ps.dests.len());
        for (d, p) in ps.dests {
            let st = p.status.unwrap_or(DeliveryStatus::Delivered);
            if let DeliveryStatus::Failed(_) = st {
                self.stats.send_failures += 1;
                if let Some(peer) = self.peers.get_mut(&d) {
                    peer.stats.failures += 1;
                }
                // Frames of a failed destination need no more retransmits.
                for fid in &p.outstanding {
                    if let Some(peer) = self.peers.get_mut(&d) {
                        peer.unacked.remove(fid);
                    }
                }
            }
            results.push((d, st));
        }
        self.out.events.push_back(Event::SendComplete {
            id: send_id,
            results,
        });
    }

    /// Fails the destinations of sends whose ack deadline passed.
    pub(super) fn expire_sends(&mut self, now: Instant) {
        let ms = self.cfg.ack_timeout.as_millis();
        loop {
            let Some((&sid, ps)) = self.sends.first_key_value() else {
                return;
            };
            if ps.deadline > now {
                return;
            }
            let waiting: Vec<MemberId> = ps
                .dests
                .iter()
                .filter(|(_, p)| p.status.is_none())
                .map(|(d, _)| *d)
                .collect();
            let wants_ack = ps.wants_ack;
            for d in waiting {
                let name = self.name_of(&d);
                let why = if wants_ack {
                    format!("no ack from {name} within {ms}ms")
                } else {
                    format!("could not deliver to {name} within {ms}ms: no connection")
                };
                self.set_status(sid, &d, DeliveryStatus::Failed(why));
            }
            self.check_send(sid);
            // check_send removed it (every destination now has a status).
            self.sends.remove(&sid);
        }
    }
}
