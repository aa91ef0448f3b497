//! `ClusterLink`: what the session runtime needs from the group channel, as an object-safe
//! trait. Two implementations: [`crate::memory::MemoryCluster`] (N nodes in one process,
//! for tests) and the adapter over shoal-net's `Channel` (in the binary).
//!
//! Writing an adapter over a channel:
//! - `send`: call the channel's send *before returning the future* (with SYNCHRONIZED_ACK |
//!   USE_ACK when `sync`, ASYNCHRONOUS otherwise), so messages leave in call order; the future
//!   only waits for the outcome and dropping it must not cancel the send. Each destination
//!   gets `Ok(())` for Delivered/Acked/Processed and `Err(text)` for Failed.
//! - `subscribe`: forward `MemberAdded` / `MemberDisappeared` as [`LinkEvent`]s and each
//!   received session payload (see [`crate::message::is_session_payload`]) as
//!   [`LinkEvent::Message`]; when the message was sent with SYNCHRONIZED_ACK, `done` must
//!   call the channel's `complete(from, msg_id, result)`.
use futures::future::BoxFuture;
use shoal_cluster::{Member, MemberId};
use tokio::sync::mpsc;

/// Per-destination outcome of one send.
pub type SendResults = Vec<(MemberId, Result<(), String>)>;

/// Called once the receiving application has processed a SYNCHRONIZED_ACK message.
pub struct Completion(Box<dyn FnOnce(Result<(), String>) + Send>);

impl Completion {
    pub fn new(f: impl FnOnce(Result<(), String>) + Send + 'static) -> Self {
        Completion(Box::new(f))
    }
    pub fn complete(self, result: Result<(), String>) {
        (self.0)(result)
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Completion")
    }
}

#[derive(Debug)]
pub struct Incoming {
    pub from: MemberId,
    pub payload: Vec<u8>,
    /// Present when the sender waits for processing (SYNCHRONIZED_ACK).
    pub done: Option<Completion>,
}

#[derive(Debug)]
pub enum LinkEvent {
    MemberAdded(Member),
    MemberRemoved(Member),
    Message(Incoming),
}

pub trait ClusterLink: Send + Sync + 'static {
    /// This node (its `name` is the session route).
    fn local(&self) -> Member;
    /// The other members, now.
    fn members(&self) -> Vec<Member>;
    /// Sends `payload` to `to`; see the module docs for ordering and cancellation.
    fn send(
        &self,
        to: &[MemberId],
        payload: Vec<u8>,
        sync: bool,
    ) -> BoxFuture<'static, SendResults>;
    /// The event stream. Called once, by the session registry; later calls may return a
    /// closed receiver.
    fn subscribe(&self) -> mpsc::UnboundedReceiver<LinkEvent>;
}
