//! Internal state of a node: connections, peers, dial targets, pending sends, dedup windows.
use super::types::{DeliveryStatus, Direction, PeerStats};
use super::ConnId;
use crate::frame::{AckStatus, MsgId};
use crate::member::{Member, MemberId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(crate) struct Conn {
    pub dir: Direction,
    pub peer_addr: SocketAddr,
    pub state: ConnState,
    /// Handshake deadline counts from here.
    pub opened: Instant,
    /// For connections the node dialed: the target they serve (backoff bookkeeping).
    pub target: Option<SocketAddr>,
}

pub(crate) enum ConnState {
    /// `Action::Connect` emitted, no answer from the io layer yet.
    Dialing,
    /// Outbound, connected: waiting for the acceptor's Challenge.
    AwaitChallenge,
    /// Inbound: Challenge sent, waiting for Hello.
    AwaitHello { challenge: [u8; 16] },
    /// Outbound: Hello sent, waiting for HelloAck.
    AwaitHelloAck {
        challenge: [u8; 16],
        nonce: [u8; 16],
    },
    /// Handshake done: frames belong to `member`.
    Open { member: MemberId },
}

pub(crate) struct Suspicion {
    pub deadline: Instant,
}

/// A Data frame sent to a peer and not yet resolved (ack, or written for no-ack sends).
pub(crate) struct Unacked {
    pub send_id: MsgId,
    pub bytes: Vec<u8>,
    /// The connection it went out on; None while it waits in the outbox.
    pub conn: Option<ConnId>,
    /// Tomcat retries once: a second connection loss fails the frame.
    pub retried: bool,
    /// sync_ack primary frame that got a Received ack: still waiting for Processed.
    pub received: bool,
    pub wants_ack: bool,
}

pub(crate) struct Peer {
    pub member: Member,
    pub conn: Option<ConnId>,
    /// Who opened `conn` (tie-break between simultaneous connections).
    pub conn_initiator: MemberId,
    pub last_rx: Instant,
    pub last_tx: Instant,
    pub suspect: Option<Suspicion>,
    /// Frames in flight or queued, by frame id (ids grow, so this is send order).
    pub unacked: BTreeMap<MsgId, Unacked>,
    pub stats: PeerStats,
}

impl Peer {
    pub(super) fn queued(&self) -> usize {
        self.unacked.values().filter(|u| u.conn.is_none()).count()
    }
}

/// An address we want a connection to: a discovery candidate, a known member without a
/// connection, or a dropped member whose return we wait for.
pub(crate) struct Target {
    pub backoff: Duration,
    pub next_attempt: Instant,
    /// The dial in progress (Dialing or handshaking).
    pub conn: Option<ConnId>,
    /// The member a handshake over this address reached: discovery may name a member by
    /// another address than the one it advertises (a DNS name, 0.0.0.0), and it must not be
    /// redialed while connected.
    pub member: Option<MemberId>,
    /// Keep dialing until then even when no member lives at this address.
    pub wanted_until: Option<Instant>,
}

/// Per destination progress of one send.
pub(crate) struct DestProgress {
    /// Frames still unresolved.
    pub outstanding: BTreeSet<MsgId>,
    pub status: Option<DeliveryStatus>,
    pub any_frame: bool,
}

pub(crate) struct PendingSend {
    pub wants_ack: bool,
    pub sync: bool,
    pub deadline: Instant,
    pub dests: Vec<(MemberId, DestProgress)>,
}

impl PendingSend {
    pub(super) fn dest_mut(&mut self, m: &MemberId) -> Option<&mut DestProgress> {
        self.dests.iter_mut().find(|(d, _)| d == m).map(|(_, p)| p)
    }
}

/// What the receiver remembers of one Data frame id (dedup + re-ack of duplicates).
#[derive(Clone, Debug)]
pub(crate) enum Seen {
    Plain,
    /// Delivered with sync_ack; waiting for `complete`.
    Awaiting,
    Done(AckStatus),
}

/// Bounded window of received ids from one sender.
#[derive(Default)]
pub(crate) struct DedupWindow {
    pub seen: BTreeMap<MsgId, Seen>,
    /// Ids at or below this fell out of the window; treated as duplicates.
    pub floor: MsgId,
}

impl DedupWindow {
    pub(super) fn lookup(&self, id: MsgId) -> Option<Seen> {
        if id <= self.floor {
            return Some(Seen::Plain);
        }
        self.seen.get(&id).cloned()
    }
    pub(super) fn insert(&mut self, id: MsgId, s: Seen, cap: usize) {
        self.seen.insert(id, s);
        while self.seen.len() > cap.max(1) {
            if let Some((old, _)) = self.seen.pop_first() {
                self.floor = self.floor.max(old);
            }
        }
    }
}

/// Queues the node hands to its caller.
#[derive(Default)]
pub(crate) struct Outputs {
    pub actions: VecDeque<super::Action>,
    pub events: VecDeque<super::Event>,
}
