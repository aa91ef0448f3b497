//! The channel state machine of one node: membership (handshakes, incarnations, failure
//! detection with verification), message ids, acks, dedup, send results. Sans-io: the caller
//! feeds it time and bytes and carries out the `Action`s it returns.
//!
//! API CONTRACT (shoal-net codes against this; keep it stable, extend it additively):
//! - discovery (static list, DNS, multicast beacons) only yields *candidate addresses*
//!   through `handle_candidate`; a member exists only after an authenticated TCP handshake.
//!   Feed candidates periodically: a candidate is dialed (with backoff) for a while after it
//!   was last reported.
//! - the io layer owns sockets. For `Action::Connect` it opens a TCP connection and reports
//!   `handle_connected(conn, Outbound)` or `handle_connect_failed`; for an accepted socket it
//!   allocates an id with `ConnId::inbound(n)` and reports `handle_connected(conn, Inbound)`.
//! - every complete frame read is passed to `handle_frame` (decode with `Node::codec()`);
//!   a decode error or socket error is reported with `handle_disconnected` (after closing)
//!   with the error text as reason. After `Action::Close` the node has forgotten the conn.
//! - `Action::Probe` asks the io layer for a TCP liveness check within `verify_timeout`:
//!   connect to the address and wait for the first frame (the acceptor's Challenge), or send
//!   a `Ping` and wait for the `Pong` (answered even before authentication); then close and
//!   answer with `handle_probe_result`. Connection refused/reset is `Err(reason)` at once.
//! - after any `handle_*`/`send`/`complete`, drain `poll_action` and `poll_event`, then
//!   call `handle_timeout` when `poll_timeout` is reached.
//!
//! Receive-side rule for interceptors that merge or hold messages: the message they release
//! carries the id of its first frame (Fragmentation: the first fragment), so that a
//! synchronized_ack sender gets its Processed ack for the id it sent.
mod handshake;
mod membership;
mod receive;
mod send;
mod state;
mod timers;
mod types;

pub use types::{
    Action, ConnId, DeliveryStatus, Direction, DisappearReason, Event, NodeConfig, NodeStats,
    PeerStats,
};

use crate::frame::{Envelope, FrameCodec, MsgId};
use crate::interceptor::InterceptorStack;
use crate::member::{Member, MemberId};
use crate::options::SendOptions;
use rand::rngs::StdRng;
use rand::SeedableRng;
use state::{Conn, DedupWindow, Outputs, Peer, PendingSend, Target};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

pub struct Node {
    local: Member,
    cfg: NodeConfig,
    codec: FrameCodec,
    stack: InterceptorStack,
    rng: StdRng,
    /// Next Data frame id: strictly increasing for this incarnation.
    next_msg_id: MsgId,
    next_conn: u64,
    conns: BTreeMap<ConnId, Conn>,
    peers: BTreeMap<MemberId, Peer>,
    targets: BTreeMap<SocketAddr, Target>,
    /// Sends waiting for outcomes, by send id (deadlines grow with ids).
    sends: BTreeMap<MsgId, PendingSend>,
    dedup: HashMap<MemberId, DedupWindow>,
    /// sync_ack messages delivered to the app and not yet completed.
    awaiting: HashMap<(MemberId, MsgId), Option<ConnId>>,
    next_heartbeat: Instant,
    left: bool,
    /// Addresses that turned out to reach this node itself (never dialed again).
    self_addrs: BTreeSet<SocketAddr>,
    stats: NodeStats,
    out: Outputs,
}

impl Node {
    pub fn new(
        local: Member,
        config: NodeConfig,
        stack: InterceptorStack,
        seed: u64,
        now: Instant,
    ) -> Self {
        if config.secret.is_empty() {
            tracing::warn!(
                node = %local.name,
                "no cluster secret: any host that reaches the receiver port can join; set one for anything but a loopback demo"
            );
        }
        let mut stack = stack;
        stack.attach(&local);
        Node {
            codec: FrameCodec::new(config.max_frame),
            next_heartbeat: now + config.heartbeat,
            local,
            cfg: config,
            stack,
            rng: StdRng::seed_from_u64(seed),
            next_msg_id: 1,
            next_conn: 1,
            conns: BTreeMap::new(),
            peers: BTreeMap::new(),
            targets: BTreeMap::new(),
            sends: BTreeMap::new(),
            dedup: HashMap::new(),
            awaiting: HashMap::new(),
            left: false,
            self_addrs: BTreeSet::new(),
            stats: NodeStats::default(),
            out: Outputs::default(),
        }
    }
    pub fn local(&self) -> &Member {
        &self.local
    }
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }
    /// The codec the io layer must decode incoming frames with (carries `max_frame`).
    pub fn codec(&self) -> &FrameCodec {
        &self.codec
    }
    /// Current members (handshaken, not dropped), suspected ones included.
    pub fn members(&self) -> Vec<Member> {
        self.peers.values().map(|p| p.member.clone()).collect()
    }
    pub fn member(&self, id: &MemberId) -> Option<&Member> {
        self.peers.get(id).map(|p| &p.member)
    }
    pub fn is_suspected(&self, id: &MemberId) -> bool {
        self.peers.get(id).is_some_and(|p| p.suspect.is_some())
    }
    /// Per-peer counters (admin API).
    pub fn peer_stats(&self) -> Vec<(Member, PeerStats)> {
        self.peers
            .values()
            .map(|p| {
                let mut s = p.stats.clone();
                s.unacked = p.unacked.values().filter(|u| u.conn.is_some()).count() as u64;
                s.queued = p.queued() as u64;
                s.suspected = p.suspect.is_some();
                s.connected = p.conn.is_some();
                (p.member.clone(), s)
            })
            .collect()
    }
    pub fn node_stats(&self) -> NodeStats {
        let mut s = self.stats.clone();
        s.members = self.peers.len() as u64;
        s.connections_open = self.conns.len() as u64;
        s
    }
    pub fn handle_candidate(&mut self, now: Instant, addr: SocketAddr) {
        self.candidate(now, addr);
    }
    pub fn handle_connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        dir: Direction,
        peer: SocketAddr,
    ) {
        self.connected(now, conn, dir, peer);
    }
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, reason: String) {
        self.conn_gone(now, conn, &format!("connect failed: {reason}"));
    }
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, env: Envelope) {
        self.frame(now, conn, env);
    }
    pub fn handle_disconnected(&mut self, now: Instant, conn: ConnId, reason: String) {
        self.conn_gone(now, conn, &reason);
    }
    pub fn handle_probe_result(
        &mut self,
        now: Instant,
        member: MemberId,
        alive: Result<(), String>,
    ) {
        self.probe_result(now, member, alive);
    }
    pub fn handle_timeout(&mut self, now: Instant) {
        self.timers(now);
    }
    /// Runs the send stack and queues frames. Returns the message id; the outcome arrives as
    /// `Event::SendComplete` (immediately for sends that ask no ack).
    pub fn send(
        &mut self,
        now: Instant,
        dests: &[MemberId],
        payload: Vec<u8>,
        options: SendOptions,
    ) -> MsgId {
        self.do_send(now, dests, payload, options)
    }
    /// Application finished processing a SYNCHRONIZED_ACK message.
    pub fn complete(
        &mut self,
        now: Instant,
        from: MemberId,
        id: MsgId,
        result: Result<(), String>,
    ) {
        self.do_complete(now, from, id, result);
    }
    /// Announce a graceful leave to every member.
    pub fn leave(&mut self, now: Instant) {
        self.do_leave(now);
    }
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.actions.pop_front()
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline()
    }
    pub fn stack(&self) -> &InterceptorStack {
        &self.stack
    }
    pub fn stack_mut(&mut self) -> &mut InterceptorStack {
        &mut self.stack
    }

    fn alloc_msg_id(&mut self) -> MsgId {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id
    }
    fn alloc_conn(&mut self) -> ConnId {
        let c = ConnId(ConnId::NODE_BIT | self.next_conn);
        self.next_conn += 1;
        c
    }
    fn name_of(&self, id: &MemberId) -> String {
        self.peers
            .get(id)
            .map(|p| p.member.name.clone())
            .unwrap_or_else(|| format!("{id:?}"))
    }
}
