//! The sim's io layer: carries out node actions on the simulated network and hands
//! deliveries to nodes.
use super::net::{Delivery, End};
use super::Sim;
use crate::frame::{Body, Envelope, FrameCodec};
use crate::node::{Action, ConnId, Direction, Event};
use crate::options::SendOptions;
use rand::Rng;
use std::time::Duration;

impl Sim {
    fn node_at(&self, addr: std::net::SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    /// Carries out node `i`'s actions and records its events until it has nothing left.
    pub(super) fn drain(&mut self, i: usize) {
        loop {
            let now = self.now;
            let sn = &mut self.nodes[i];
            let Some(node) = sn.node.as_mut() else { return };
            if let Some(a) = node.poll_action() {
                self.act(i, a);
                continue;
            }
            let Some(ev) = node.poll_event() else { return };
            match &ev {
                Event::Received {
                    from,
                    id,
                    options,
                    payload,
                } => {
                    sn.received.push((*from, *id, payload.clone()));
                    if self.auto_complete && options.has(SendOptions::SYNCHRONIZED_ACK) {
                        node.complete(now, *from, *id, Ok(()));
                    }
                }
                Event::SendComplete { id, results } => {
                    sn.outcomes.insert(*id, results.clone());
                }
                _ => {}
            }
            sn.log.push((now - self.base, ev));
        }
    }

    fn act(&mut self, i: usize, a: Action) {
        let now = self.now;
        match a {
            Action::Connect { conn, addr } => {
                let d = self.delay();
                match self.node_at(addr).filter(|&j| self.nodes[j].node.is_some()) {
                    None => {
                        let reason = "connection refused".to_string();
                        self.net.schedule(
                            now + d,
                            Delivery::ConnectFailed {
                                node: i,
                                conn,
                                reason,
                            },
                        );
                    }
                    Some(j) if self.net.is_cut(i, j) => {
                        let reason = "connect timed out".to_string();
                        let at = now + Duration::from_secs(1);
                        self.net.schedule(
                            at,
                            Delivery::ConnectFailed {
                                node: i,
                                conn,
                                reason,
                            },
                        );
                    }
                    Some(j) => {
                        let cj = self.net.inbound_id();
                        self.net.link((i, conn), (j, cj));
                        let (ai, aj) = (self.nodes[i].addr, self.nodes[j].addr);
                        let out = Delivery::Connected {
                            node: i,
                            conn,
                            dir: Direction::Outbound,
                            peer: aj,
                        };
                        self.net.schedule(now + d, out);
                        let inb = Delivery::Connected {
                            node: j,
                            conn: cj,
                            dir: Direction::Inbound,
                            peer: ai,
                        };
                        self.net.schedule(now + d, inb);
                        self.net.last_arrival.insert((j, cj), now + d);
                        self.net.last_arrival.insert((i, conn), now + d);
                    }
                }
            }
            Action::Send { conn, bytes } => self.carry(i, conn, &bytes),
            Action::Close { conn, reason } => {
                self.nodes[i].closes.push((now - self.base, reason));
                self.net.close_end((i, conn));
                if let Some(&other) = self.net.links.get(&(i, conn)) {
                    if self.net.open.contains(&other) {
                        // The FIN arrives after the data already in flight.
                        let at = (now + self.delay())
                            .max(self.net.last_any.get(&other).copied().unwrap_or(now));
                        let reason = "connection closed by peer".to_string();
                        self.net.schedule(
                            at,
                            Delivery::Disconnected {
                                node: other.0,
                                conn: other.1,
                                reason,
                            },
                        );
                    }
                }
            }
            Action::Probe { member, addr } => {
                let d = self.delay();
                match self.node_at(addr) {
                    Some(j) if self.nodes[j].node.is_some() => {
                        if !self.net.is_cut(i, j) {
                            self.net.schedule(
                                now + d * 2,
                                Delivery::Probe {
                                    node: i,
                                    member,
                                    result: Ok(()),
                                },
                            );
                        }
                    }
                    _ => {
                        let result = Err(format!("connect to {addr}: connection refused"));
                        self.net.schedule(
                            now + d,
                            Delivery::Probe {
                                node: i,
                                member,
                                result,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Decodes what node `i` wrote and schedules each frame (with chaos for Data frames).
    fn carry(&mut self, i: usize, conn: ConnId, bytes: &[u8]) {
        let Some(&to) = self.net.links.get(&(i, conn)) else {
            return;
        };
        if !self.net.open.contains(&to) {
            return;
        }
        let codec = FrameCodec::new(self.config.max_frame);
        let mut rest = bytes;
        while let Ok(Some((env, n))) = codec.decode(rest) {
            rest = &rest[n..];
            if self.net.is_cut(i, to.0) {
                self.net.held.entry(to).or_default().push(env);
                continue;
            }
            let data = matches!(env.body, Body::Data { .. });
            if data && self.rng.gen_bool(self.chaos.reset) {
                self.reset((i, conn), to, "connection reset (simulated loss)");
                return;
            }
            if data && self.rng.gen_bool(self.chaos.duplicate) {
                let later = self.delay() * 3;
                self.schedule_frame_after(to, env.clone(), true, later);
            }
            let reorder = data && self.rng.gen_bool(self.chaos.reorder);
            self.schedule_frame(to, env, reorder);
        }
    }

    fn schedule_frame(&mut self, to: End, env: Envelope, free: bool) {
        let delay = self.delay();
        self.schedule_frame_after(to, env, free, delay);
    }

    fn schedule_frame_after(&mut self, to: End, env: Envelope, free: bool, delay: Duration) {
        let mut at = self.now + delay;
        let data = matches!(env.body, Body::Data { .. });
        if free {
            at = at.max(self.net.barrier.get(&to).copied().unwrap_or(at));
        } else {
            at = at.max(self.net.last_arrival.get(&to).copied().unwrap_or(at));
            self.net.last_arrival.insert(to, at);
            if !data {
                self.net.barrier.insert(to, at);
            }
        }
        let any = self.net.last_any.entry(to).or_insert(at);
        *any = (*any).max(at);
        self.net.schedule(
            at,
            Delivery::Frame {
                node: to.0,
                conn: to.1,
                env,
            },
        );
    }

    fn reset(&mut self, a: End, b: End, reason: &str) {
        for end in [a, b] {
            self.net.close_end(end);
            let at = self.now + self.delay();
            self.net.schedule(
                at,
                Delivery::Disconnected {
                    node: end.0,
                    conn: end.1,
                    reason: reason.to_string(),
                },
            );
        }
    }

    pub(super) fn reset_all_of(&mut self, i: usize, reason: &str) {
        let ends: Vec<(End, End)> = self
            .net
            .links
            .iter()
            .filter(|(e, _)| e.0 == i && self.net.open.contains(e))
            .map(|(a, b)| (*a, *b))
            .collect();
        for (mine, other) in ends {
            self.net.close_end(mine);
            // Across a cut the reset is lost; `heal` delivers it (the peer's next packet
            // meets a kernel that no longer knows the connection).
            if self.net.open.contains(&other) && !self.net.is_cut(i, other.0) {
                self.net.close_end(other);
                let at = self.now + self.delay();
                let d = Delivery::Disconnected {
                    node: other.0,
                    conn: other.1,
                    reason: reason.to_string(),
                };
                self.net.schedule(at, d);
            }
        }
    }

    pub(super) fn close_all_of(&mut self, i: usize) {
        let ends: Vec<ConnId> = self
            .net
            .links
            .keys()
            .filter(|e| e.0 == i && self.net.open.contains(e))
            .map(|e| e.1)
            .collect();
        for conn in ends {
            self.act(
                i,
                Action::Close {
                    conn,
                    reason: "process exit".into(),
                },
            );
        }
    }

    pub(super) fn release_held(&mut self) {
        let orphans: Vec<End> = self
            .net
            .links
            .iter()
            .filter(|(a, b)| self.net.open.contains(a) && !self.net.open.contains(b))
            .map(|(a, _)| *a)
            .collect();
        for end in orphans {
            self.net.close_end(end);
            let at = self.now + self.delay();
            let reason = "connection reset by peer".to_string();
            self.net.schedule(
                at,
                Delivery::Disconnected {
                    node: end.0,
                    conn: end.1,
                    reason,
                },
            );
        }
        let held = std::mem::take(&mut self.net.held);
        for (end, frames) in held {
            if self.net.open.contains(&end) {
                for env in frames {
                    self.schedule_frame(end, env, false);
                }
            }
        }
    }

    pub(super) fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        let i = match &d {
            Delivery::Connected { node, .. }
            | Delivery::ConnectFailed { node, .. }
            | Delivery::Frame { node, .. }
            | Delivery::Disconnected { node, .. }
            | Delivery::Probe { node, .. } => *node,
        };
        if let Delivery::Frame { node, conn, .. } = &d {
            if !self.net.open.contains(&(*node, *conn)) {
                return;
            }
        }
        if let Delivery::Disconnected { node, conn, .. } = &d {
            self.net.close_end((*node, *conn));
        }
        let Some(n) = self.nodes[i].node.as_mut() else {
            return;
        };
        match d {
            Delivery::Connected {
                conn, dir, peer, ..
            } => n.handle_connected(now, conn, dir, peer),
            Delivery::ConnectFailed { conn, reason, .. } => {
                n.handle_connect_failed(now, conn, reason)
            }
            Delivery::Frame { conn, env, .. } => n.handle_frame(now, conn, env),
            Delivery::Disconnected { conn, reason, .. } => n.handle_disconnected(now, conn, reason),
            Delivery::Probe { member, result, .. } => n.handle_probe_result(now, member, result),
        }
        self.drain(i);
    }
}
