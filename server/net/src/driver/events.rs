//! The driver's reactions to the node's events: membership bookkeeping and logs, delivery of
//! received messages (with completion handles), send outcomes to waiting callers.
use super::Driver;
use crate::incoming::{Completion, IncomingMessage};
use crate::types::{MembershipEvent, Outcome, SendReport};
use shoal_cluster::{DeliveryStatus, DisappearReason, Event, Member, MemberId, MsgId, SendOptions};

impl Driver {
    pub(crate) fn on_event(&mut self, e: Event) {
        match e {
            Event::MemberAdded(m) => self.member_added(m),
            Event::MemberDisappeared { member, reason } => self.member_gone(member, reason),
            Event::MemberSuspected { member, reason } => {
                tracing::debug!(member = %member, "member suspected: {reason}");
                let _ = self
                    .shared
                    .events
                    .send(MembershipEvent::Suspected { member, reason });
            }
            Event::Received {
                from,
                id,
                options,
                payload,
            } => {
                let completion = options
                    .has(SendOptions::SYNCHRONIZED_ACK)
                    .then(|| self.cmd_tx.upgrade())
                    .flatten()
                    .map(|cmd| Completion {
                        cmd,
                        from,
                        id,
                        done: false,
                    });
                // If the application dropped its receiver, the completion's Drop reports failure.
                let len = payload.len();
                let msg = IncomingMessage {
                    from,
                    id,
                    options,
                    payload,
                    completion,
                };
                if self.incoming.send(msg).is_ok() {
                    self.shared.backlog.add(len);
                }
            }
            Event::SendComplete { id, results } => self.send_complete(id, results),
            Event::HandshakeFailed { peer, reason } => {
                tracing::debug!(%peer, "cluster handshake with {peer} failed: {reason}");
            }
        }
    }

    fn send_complete(&mut self, id: MsgId, results: Vec<(MemberId, DeliveryStatus)>) {
        let mut out = Vec::with_capacity(results.len());
        for (m, st) in results {
            let o = match st {
                DeliveryStatus::Delivered => Outcome::Delivered,
                DeliveryStatus::Acked => Outcome::Acked,
                DeliveryStatus::Processed => Outcome::Processed,
                DeliveryStatus::Failed(r) => Outcome::Failed(format!("{}: {r}", self.describe(m))),
            };
            out.push((m, o));
        }
        if let Some((_, tx)) = self.pending.remove(&id) {
            let _ = tx.send(SendReport {
                id: Some(id),
                results: out,
            });
        }
    }

    /// `node2 (127.0.0.1:4002)`, or the short id of a non-member.
    fn describe(&self, id: MemberId) -> String {
        match self
            .shared
            .members
            .read()
            .ok()
            .and_then(|m| m.iter().find(|m| m.id == id).cloned())
        {
            Some(m) => format!("{} ({})", m.name, m.addr),
            None => format!("member {id:?}"),
        }
    }

    fn member_added(&mut self, m: Member) {
        tracing::debug!(member = %m, incarnation = m.incarnation, "member added: {} at {}", m.name, m.addr);
        if let Ok(mut ms) = self.shared.members.write() {
            ms.retain(|x| x.id != m.id);
            ms.push(m.clone());
        }
        let _ = self.shared.events.send(MembershipEvent::Added(m));
    }

    fn member_gone(&mut self, m: Member, reason: DisappearReason) {
        // The line the Tomcat bench harness greps: `SimpleTcpCluster.memberDisappeared` and
        // `}:<port>,` (Tomcat prints members as `tcp://{127, 0, 0, 1}:4000,`).
        tracing::info!(
            "SimpleTcpCluster.memberDisappeared member {} tcp://{{{}}}:{}, id={:?} reason={}",
            m.name,
            m.addr.ip(),
            m.addr.port(),
            m.id,
            reason
        );
        if let Ok(mut ms) = self.shared.members.write() {
            ms.retain(|x| x.id != m.id);
        }
        let _ = self
            .shared
            .events
            .send(MembershipEvent::Disappeared { member: m, reason });
    }
}
