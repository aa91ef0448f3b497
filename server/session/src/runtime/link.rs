//! `ClusterLink`: what the session runtime needs from the group channel, as an object-safe
//! trait. Two implementations: `MemoryCluster` (N nodes in one process, for tests, behind
//! the `testing` feature) and the adapter over shoal-net's `Channel` (in the node).
//!
//! Writing an adapter over a channel (e.g. shoal-net's `Channel`):
//! - `send`: return a future that sends `payload` to `to` — with SYNCHRONIZED_ACK | USE_ACK
//!   when `sync` (resolving once every destination processed it), ASYNCHRONOUS otherwise —
//!   and reports each destination: `Ok(())` for Queued/Delivered/Acked/Processed, `Err(text)`
//!   for Failed. The runtime keeps order itself: asynchronous futures are polled one after
//!   another in call order, and synchronous ones are created under the manager lock, so it
//!   is best (not required) that a sync send is enqueued at call time (`Channel::send_now`).
//! - `subscribe`: forward `MemberAdded` / `MemberDisappeared` as [`LinkEvent`]s (a
//!   disappearance whose reason is a goodbye as `MemberLeft`) and each
//!   received session payload (see [`crate::message::is_session_payload`]) as
//!   [`LinkEvent::Message`]; for a message sent with SYNCHRONIZED_ACK, `done` must call the
//!   channel's completion (`complete()` on `Ok`, `fail(reason)` on `Err`).
//!
//! ```text
//! fn send(&self, to: &[MemberId], payload: Vec<u8>, sync: bool) -> BoxFuture<'static, SendResults> {
//!     let opts = if sync { SendOptions(USE_ACK | SYNCHRONIZED_ACK) } else { SendOptions(ASYNCHRONOUS) };
//!     let fut = self.channel.send_now(to, payload, opts);
//!     Box::pin(async move {
//!         fut.await.results.into_iter().map(|(m, o)| match o {
//!             Outcome::Failed(e) => (m, Err(e)),
//!             _ => (m, Ok(())),
//!         }).collect()
//!     })
//! }
//! ```
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
    /// Vanished: the failure detector dropped it (crash, timeout, partition).
    MemberRemoved(Member),
    /// Left gracefully (it said goodbye: drain, scale-down, stop). The managers treat it as
    /// a removal; split-brain protection no longer expects it ([`crate::quorum`]).
    MemberLeft(Member),
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
    /// Bytes of asynchronous sends the transport has taken but not written yet. The
    /// asynchronous replication bound (`async_queue_bytes`) counts them too, since the
    /// transport's own queue (MessageDispatch, 64 MiB by default) would otherwise take
    /// the whole backlog. 0 when the transport does not know.
    fn queued_bytes(&self) -> usize {
        0
    }
}
