//! The channel state machine of one node: membership (handshakes, incarnations, failure
//! detection with verification), message ids, acks, dedup, send results. Sans-io: the caller
//! feeds it time and bytes and carries out the `Action`s it returns.
//!
//! API CONTRACT (shoal-net codes against this; keep it stable, extend it additively):
//! - discovery (static list, DNS, multicast beacons) only yields *candidate addresses*
//!   through `handle_candidate`; a member exists only after an authenticated TCP handshake.
//! - the io layer owns sockets and allocates `ConnId`s: for `Action::Connect` it opens a TCP
//!   connection and reports `handle_connected(conn, Outbound)` or `handle_connect_failed`;
//!   for an accepted socket it reports `handle_connected(conn, Inbound)`.
//! - every complete frame read is passed to `handle_frame`; a decode error is reported with
//!   `handle_disconnected` (after closing) with the error text as reason.
//! - `Action::Probe` asks the io layer for a TCP liveness check (connect + Ping/Pong within
//!   `verify_timeout`); answer with `handle_probe_result`.
use crate::auth::ClusterSecret;
use crate::frame::{Envelope, MsgId};
use crate::interceptor::InterceptorStack;
use crate::member::{Member, MemberId};
use crate::options::SendOptions;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Allocated by the io layer, unique for the life of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub secret: ClusterSecret,
    /// Members of other domains are refused at handshake (DomainFilter semantics).
    pub domain: String,
    /// TcpPing: a Ping goes to a member we sent nothing to for this long.
    pub ping_interval: Duration,
    /// Silence (no frame of any kind) after which a member is suspected and verified.
    pub suspect_after: Duration,
    /// TcpFailureDetector: how long the verification may take before the member is dropped.
    pub verify_timeout: Duration,
    /// Ack wait for use_ack / sync_ack sends (Tomcat's sender timeout: 3000 ms).
    pub ack_timeout: Duration,
    /// Reconnect backoff: first delay, doubled per failure, capped.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Heartbeat period for interceptors and timers.
    pub heartbeat: Duration,
    pub max_frame: usize,
}

/// One destination's outcome of a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Written to the connection (no ack asked).
    Delivered,
    /// Acked on receipt (use_ack).
    Acked,
    /// Acked after processing (synchronized_ack).
    Processed,
    /// Failed: not a member, connection lost, refused by the receiver, timed out, ...
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisappearReason {
    /// Verified dead: connection refused / probe failed after suspicion.
    Crashed(String),
    /// Sent Leave.
    Left,
    /// Came back with a new id / incarnation.
    Restarted,
    /// Silent and unreachable past the verification deadline (e.g. partition).
    Timeout,
}

#[derive(Debug)]
pub enum Action {
    /// Open a TCP connection to `addr` and report it with `conn`.
    Connect { conn: ConnId, addr: SocketAddr },
    /// Write these bytes (one or more whole frames) to `conn`.
    Send { conn: ConnId, bytes: Vec<u8> },
    /// Close `conn`; `reason` is for the log.
    Close { conn: ConnId, reason: String },
    /// Verify that `member` is alive over a fresh TCP connection (TcpFailureDetector).
    Probe { member: MemberId, addr: SocketAddr },
}

#[derive(Debug, Clone)]
pub enum Event {
    MemberAdded(Member),
    MemberDisappeared { member: Member, reason: DisappearReason },
    MemberSuspected { member: Member, reason: String },
    /// A message that went through the receive stack. With `SYNCHRONIZED_ACK` in `options`
    /// the application must call `Node::complete` when it has processed it.
    Received { from: MemberId, id: MsgId, options: SendOptions, payload: Vec<u8> },
    /// Every destination of send `id` has an outcome.
    SendComplete { id: MsgId, results: Vec<(MemberId, DeliveryStatus)> },
}

pub struct Node {
    // Implementation-defined. See the module docs.
    _private: (),
}

#[allow(unused_variables)]
impl Node {
    pub fn new(local: Member, config: NodeConfig, stack: InterceptorStack, seed: u64, now: Instant) -> Self {
        todo!()
    }
    pub fn local(&self) -> &Member {
        todo!()
    }
    pub fn members(&self) -> Vec<Member> {
        todo!()
    }
    pub fn handle_candidate(&mut self, now: Instant, addr: SocketAddr) {
        todo!()
    }
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId, dir: Direction, peer: SocketAddr) {
        todo!()
    }
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, reason: String) {
        todo!()
    }
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, env: Envelope) {
        todo!()
    }
    pub fn handle_disconnected(&mut self, now: Instant, conn: ConnId, reason: String) {
        todo!()
    }
    pub fn handle_probe_result(&mut self, now: Instant, member: MemberId, alive: Result<(), String>) {
        todo!()
    }
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!()
    }
    /// Runs the send stack and queues frames. Returns the message id; the outcome arrives as
    /// `Event::SendComplete` (immediately for sends that ask no ack).
    pub fn send(&mut self, now: Instant, dests: &[MemberId], payload: Vec<u8>, options: SendOptions) -> MsgId {
        todo!()
    }
    /// Application finished processing a SYNCHRONIZED_ACK message.
    pub fn complete(&mut self, now: Instant, from: MemberId, id: MsgId, result: Result<(), String>) {
        todo!()
    }
    /// Announce a graceful leave to every member.
    pub fn leave(&mut self, now: Instant) {
        todo!()
    }
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!()
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
    pub fn stack(&self) -> &InterceptorStack {
        todo!()
    }
    pub fn stack_mut(&mut self) -> &mut InterceptorStack {
        todo!()
    }
}
