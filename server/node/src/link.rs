//! The session runtime's [`ClusterLink`] over the real group channel, and the demultiplexer
//! that hands each incoming channel message to its consumer (sessions or node control).
//!
//! Ordering: `send` enqueues on the channel before it returns its future (see the
//! `ClusterLink` docs), by spawning nothing and awaiting nothing before the enqueue.
use crate::roles::serves_sessions;
use futures::future::BoxFuture;
use shoal_cluster::{DisappearReason, Member, MemberId, SendOptions};
use shoal_net::{Channel, IncomingMessage, MembershipEvent, Outcome};
use shoal_session::{ClusterLink, Completion, Incoming, LinkEvent, SendResults};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Session traffic goes with these options when the context replicates synchronously:
/// the sender waits until every replica has *applied* the change (Tomcat's 6).
pub const SYNC_OPTIONS: u32 = SendOptions::USE_ACK | SendOptions::SYNCHRONIZED_ACK;
/// Asynchronous replication: queued by MessageDispatch (Tomcat's 8); order is kept by the
/// session versions, not by the transport.
pub const ASYNC_OPTIONS: u32 = SendOptions::ASYNCHRONOUS;

pub struct ChannelLink {
    channel: Channel,
    /// Filled by `subscribe` (called once by the session registry).
    events: Mutex<Option<mpsc::UnboundedSender<LinkEvent>>>,
}

impl ChannelLink {
    pub fn new(channel: Channel) -> Arc<Self> {
        Arc::new(ChannelLink {
            channel,
            events: Mutex::new(None),
        })
    }

    fn sender(&self) -> Option<mpsc::UnboundedSender<LinkEvent>> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forwards one received session message to the session registry.
    pub fn deliver(&self, msg: IncomingMessage) {
        let done = msg.completion.map(|c| {
            Completion::new(move |r: Result<(), String>| match r {
                Ok(()) => c.complete(),
                Err(e) => c.fail(e),
            })
        });
        let ev = LinkEvent::Message(Incoming {
            from: msg.from,
            payload: msg.payload,
            done,
        });
        if let Some(tx) = self.sender() {
            // A closed registry (shutdown) drops the message; its Completion reports failure.
            let _ = tx.send(ev);
        }
    }

    /// Forwards a membership change (balancer members are not session peers).
    pub fn membership(&self, ev: &MembershipEvent) {
        let Some(tx) = self.sender() else { return };
        let _ = match ev {
            MembershipEvent::Added(m) | MembershipEvent::Disappeared { member: m, .. }
                if !serves_sessions(m) =>
            {
                Ok(())
            }
            MembershipEvent::Added(m) => tx.send(LinkEvent::MemberAdded(m.clone())),
            MembershipEvent::Disappeared {
                member,
                reason: DisappearReason::Left,
            } => tx.send(LinkEvent::MemberLeft(member.clone())),
            MembershipEvent::Disappeared { member, .. } => {
                tx.send(LinkEvent::MemberRemoved(member.clone()))
            }
            MembershipEvent::Suspected { .. } => Ok(()),
        };
    }
}

impl ClusterLink for ChannelLink {
    fn local(&self) -> Member {
        self.channel.local().clone()
    }

    fn members(&self) -> Vec<Member> {
        let mut v = self.channel.members();
        v.retain(serves_sessions);
        v
    }

    fn send(
        &self,
        to: &[MemberId],
        payload: Vec<u8>,
        sync: bool,
    ) -> BoxFuture<'static, SendResults> {
        let opts = SendOptions(if sync { SYNC_OPTIONS } else { ASYNC_OPTIONS });
        let fut = self.channel.send_now(to, payload, opts);
        // A destination that left the view during the send (drained and left, or declared
        // dead) is reported failed like any other: the session runtime decides whether the
        // members that remain acknowledge the write (they do, unless split-brain protection
        // needs one replica's acknowledgement, see `SessionService::end_request`).
        Box::pin(async move {
            let report = fut.await;
            report
                .results
                .into_iter()
                .map(|(m, o)| match o {
                    Outcome::Failed(why) => (m, Err(why)),
                    _ => (m, Ok(())),
                })
                .collect()
        })
    }

    fn queued_bytes(&self) -> usize {
        self.channel.queue_bytes_in_use()
    }

    fn subscribe(&self) -> mpsc::UnboundedReceiver<LinkEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Members that joined before the registry subscribed.
        for m in self.channel.members().into_iter().filter(serves_sessions) {
            let _ = tx.send(LinkEvent::MemberAdded(m));
        }
        *self.events.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }
}
