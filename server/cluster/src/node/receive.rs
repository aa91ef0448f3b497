//! Receiving on a handshaken connection: liveness, dedup, the receive stack, acks.
use super::state::Seen;
use super::{ConnId, Event, Node};
use crate::frame::{AckStatus, Body, MsgId};
use crate::interceptor::ChannelMessage;
use crate::member::MemberId;
use crate::options::SendOptions;
use std::time::Instant;

impl Node {
    pub(super) fn open_frame(
        &mut self,
        now: Instant,
        conn: ConnId,
        from: MemberId,
        id: MsgId,
        body: Body,
    ) {
        let Some(p) = self.peers.get_mut(&from) else {
            self.close_conn(now, conn, "frame from a member that was dropped");
            return;
        };
        // Any frame is proof of life; it also ends a suspicion.
        p.last_rx = now;
        if p.suspect.take().is_some() {
            tracing::info!(member = %p.member, "suspected member is alive (frame received)");
        }
        match body {
            Body::Data { options, payload } => {
                p.stats.rx_bytes += payload.len() as u64;
                self.on_data(now, conn, from, id, options, payload);
            }
            Body::Ack { of, status } => self.on_ack(from, of, status),
            Body::Ping { .. } | Body::Pong { .. } => {}
            Body::Leave => self.peer_left(now, from),
            Body::Challenge { .. }
            | Body::Hello { .. }
            | Body::HelloAck { .. }
            | Body::Refused { .. } => {
                self.close_conn(now, conn, "handshake frame on an open connection");
            }
        }
    }

    fn on_data(
        &mut self,
        now: Instant,
        conn: ConnId,
        from: MemberId,
        id: MsgId,
        options: SendOptions,
        payload: Vec<u8>,
    ) {
        let cap = self.cfg.dedup_window;
        let sync = options.has(SendOptions::SYNCHRONIZED_ACK);
        let window = self.dedup.entry(from).or_default();
        if let Some(seen) = window.lookup(id) {
            if let Some(p) = self.peers.get_mut(&from) {
                p.stats.duplicates += 1;
            }
            // A retransmit: the sender may have lost our ack with the old connection.
            match seen {
                Seen::Done(st) => self.send_ack(now, Some(conn), from, id, st),
                Seen::Plain if options.wants_ack() => {
                    self.send_ack(now, Some(conn), from, id, AckStatus::Received)
                }
                _ => {}
            }
            return;
        }
        window.insert(id, Seen::Plain, cap);
        if let Some(p) = self.peers.get_mut(&from) {
            p.stats.rx_messages += 1;
        }
        self.stats.received += 1;
        let msg = ChannelMessage {
            id,
            from,
            destinations: Vec::new(),
            options,
            payload,
        };
        match self.stack.run_receive(now, msg) {
            Ok(outs) => {
                let mut delivered_self = false;
                for m in outs {
                    delivered_self |= m.id == id && m.from == from;
                    self.deliver(m, Some(conn));
                }
                if options.wants_ack() && (!sync || !delivered_self) {
                    // use_ack: received. sync_ack held by a layer (fragment, out of order):
                    // received now, Processed follows when the message it belongs to is done.
                    self.send_ack(now, Some(conn), from, id, AckStatus::Received);
                }
            }
            Err(e) => {
                tracing::warn!(from = %self.name_of(&from), error = %e, "receive stack refused a message");
                if options.wants_ack() {
                    let st = AckStatus::Failed(e.to_string());
                    self.dedup
                        .entry(from)
                        .or_default()
                        .insert(id, Seen::Done(st.clone()), cap);
                    self.send_ack(now, Some(conn), from, id, st);
                }
            }
        }
    }

    /// Hands a message that left the receive stack to the application.
    /// `via`: the connection the message arrived on, where its Processed ack should go.
    pub(super) fn deliver(&mut self, m: ChannelMessage, via: Option<ConnId>) {
        if m.options.has(SendOptions::SYNCHRONIZED_ACK) {
            self.awaiting.insert((m.from, m.id), via);
            let cap = self.cfg.dedup_window;
            self.dedup
                .entry(m.from)
                .or_default()
                .insert(m.id, Seen::Awaiting, cap);
        }
        self.out.events.push_back(Event::Received {
            from: m.from,
            id: m.id,
            options: m.options,
            payload: m.payload,
        });
    }

    pub(super) fn do_complete(
        &mut self,
        now: Instant,
        from: MemberId,
        id: MsgId,
        result: Result<(), String>,
    ) {
        let Some(via) = self.awaiting.remove(&(from, id)) else {
            return;
        };
        let st = match result {
            Ok(()) => AckStatus::Processed,
            Err(r) => AckStatus::Failed(r),
        };
        let cap = self.cfg.dedup_window;
        self.dedup
            .entry(from)
            .or_default()
            .insert(id, Seen::Done(st.clone()), cap);
        self.send_ack(now, via, from, id, st);
    }

    /// Acks go back on the connection the frame came on: if that one dies, the sender sees
    /// it die too and retransmits, and the retransmit is re-acked from the dedup window. A
    /// late Processed ack whose connection is gone takes the member's current one.
    fn send_ack(
        &mut self,
        now: Instant,
        via: Option<ConnId>,
        to: MemberId,
        of: MsgId,
        status: AckStatus,
    ) {
        let open = |c: &ConnId| {
            self.conns.get(c).is_some_and(
                |c| matches!(c.state, super::state::ConnState::Open { member } if member == to),
            )
        };
        let current = self.peers.get(&to).and_then(|p| p.conn);
        let Some(conn) = via.filter(open).or(current) else {
            return;
        };
        let n = self.write_control(conn, Body::Ack { of, status });
        if let Some(p) = self.peers.get_mut(&to) {
            p.stats.acks_sent += 1;
            p.stats.tx_bytes += n as u64;
            p.last_tx = now;
        }
    }
}
