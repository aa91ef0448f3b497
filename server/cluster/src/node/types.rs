//! Public types of the node API: config, actions, events, outcomes, counters.
use crate::auth::ClusterSecret;
use crate::frame::{MsgId, DEFAULT_MAX_FRAME};
use crate::member::{Member, MemberId};
use crate::options::SendOptions;
use std::net::SocketAddr;
use std::time::Duration;

/// Identifies one TCP connection for the life of the process.
///
/// Two allocators share the space so they never collide: the node allocates the ids of the
/// connections it asks for (`Action::Connect`) with [`ConnId::NODE_BIT`] set; the io layer
/// allocates the ids of accepted sockets below it (use [`ConnId::inbound`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// Set on every id the node allocates.
    pub const NODE_BIT: u64 = 1 << 63;

    /// The id for the `n`th accepted socket (io layer side). `n` must stay below 2^63.
    pub fn inbound(n: u64) -> ConnId {
        ConnId(n & !Self::NODE_BIT)
    }
    /// True for ids allocated by the node for its own `Action::Connect`.
    pub fn is_node_allocated(self) -> bool {
        self.0 & Self::NODE_BIT != 0
    }
}

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
    /// A connection that has not finished its handshake by then is closed (slowloris guard).
    pub handshake_timeout: Duration,
    /// Received message ids remembered per sender to drop retransmitted duplicates.
    pub dedup_window: usize,
    /// How long the address of a dropped member keeps being redialed (partition heal).
    pub redial_for: Duration,
    /// Frames per member waiting for an ack or for a connection being re-established; while
    /// the member has no connection, a send beyond this fails at once with "queue full"
    /// (never a silent switch to blocking).
    pub outbox_limit: usize,
}

impl NodeConfig {
    /// Defaults (see `Default`) with this secret and domain.
    pub fn new(secret: ClusterSecret, domain: impl Into<String>) -> Self {
        NodeConfig {
            secret,
            domain: domain.into(),
            ..NodeConfig::default()
        }
    }

    /// Checks the timing relations the failure detector relies on; the error names the
    /// setting (config loaders prefix it with their file and section).
    pub fn validate(&self) -> Result<(), String> {
        let ms = |d: Duration| d.as_millis();
        let positive = [
            ("ping_interval", self.ping_interval),
            ("suspect_after", self.suspect_after),
            ("verify_timeout", self.verify_timeout),
            ("ack_timeout", self.ack_timeout),
            ("reconnect_min", self.reconnect_min),
            ("heartbeat", self.heartbeat),
            ("handshake_timeout", self.handshake_timeout),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(format!("{name} must be greater than 0 ms"));
            }
        }
        if self.suspect_after <= self.ping_interval {
            return Err(format!(
                "suspect_after ({} ms) must be longer than ping_interval ({} ms), or live members are suspected between two pings (3x is a good ratio)",
                ms(self.suspect_after),
                ms(self.ping_interval)
            ));
        }
        if self.reconnect_max < self.reconnect_min {
            return Err(format!(
                "reconnect_max ({} ms) is shorter than reconnect_min ({} ms)",
                ms(self.reconnect_max),
                ms(self.reconnect_min)
            ));
        }
        if self.max_frame < 1024 {
            return Err(format!(
                "max_frame ({} bytes) must be at least 1024 bytes",
                self.max_frame
            ));
        }
        if self.dedup_window == 0 || self.outbox_limit == 0 {
            return Err("dedup_window and outbox_limit must be greater than 0".to_string());
        }
        Ok(())
    }
}

impl Default for NodeConfig {
    /// Tuned so that a member killed with kill -9 is dropped within 1 s: its connection
    /// resets at once (suspect → probe refused → drop), and a silent one (partition, frozen
    /// host) is suspected after 600 ms and dropped 300 ms later if the probe gets no answer.
    fn default() -> Self {
        NodeConfig {
            secret: ClusterSecret::new(Vec::new()),
            domain: "default".to_string(),
            ping_interval: Duration::from_millis(200),
            suspect_after: Duration::from_millis(600),
            verify_timeout: Duration::from_millis(300),
            ack_timeout: Duration::from_millis(3000),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            heartbeat: Duration::from_millis(100),
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(2),
            dedup_window: 8192,
            redial_for: Duration::from_secs(60),
            outbox_limit: 10_000,
        }
    }
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

impl std::fmt::Display for DisappearReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisappearReason::Crashed(r) => write!(f, "crashed ({r})"),
            DisappearReason::Left => write!(f, "left"),
            DisappearReason::Restarted => write!(f, "restarted"),
            DisappearReason::Timeout => write!(f, "timed out"),
        }
    }
}

#[derive(Debug)]
pub enum Action {
    /// Open a TCP connection to `addr` and report it with `conn`.
    Connect { conn: ConnId, addr: SocketAddr },
    /// Write these bytes (one or more whole frames) to `conn`.
    Send { conn: ConnId, bytes: Vec<u8> },
    /// Close `conn`; `reason` is for the log. The node has already forgotten `conn`; a later
    /// `handle_disconnected` for it is ignored.
    Close { conn: ConnId, reason: String },
    /// Verify that `member` is alive over a fresh TCP connection (TcpFailureDetector).
    Probe { member: MemberId, addr: SocketAddr },
}

#[derive(Debug, Clone)]
pub enum Event {
    MemberAdded(Member),
    MemberDisappeared {
        member: Member,
        reason: DisappearReason,
    },
    MemberSuspected {
        member: Member,
        reason: String,
    },
    /// A message that went through the receive stack. With `SYNCHRONIZED_ACK` in `options`
    /// the application must call `Node::complete` when it has processed it.
    Received {
        from: MemberId,
        id: MsgId,
        options: SendOptions,
        payload: Vec<u8>,
    },
    /// Every destination of send `id` has an outcome.
    SendComplete {
        id: MsgId,
        results: Vec<(MemberId, DeliveryStatus)>,
    },
    /// A handshake failed (wrong secret, other domain, refused by the peer, protocol
    /// violation before authentication); the connection is closed. For logs and counters.
    HandshakeFailed {
        peer: SocketAddr,
        reason: String,
    },
}

/// Per-peer counters for the admin API (`Node::peer_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Data frames written / received (after dedup).
    pub tx_messages: u64,
    pub rx_messages: u64,
    pub acks_sent: u64,
    pub acks_received: u64,
    /// Destinations of sends to this peer that ended Failed.
    pub failures: u64,
    pub retransmits: u64,
    /// Duplicate Data frames dropped by the dedup window.
    pub duplicates: u64,
    /// Gauge: frames sent and not yet acked.
    pub unacked: u64,
    /// Gauge: frames waiting for a connection.
    pub queued: u64,
    /// True while the peer is suspected and being verified.
    pub suspected: bool,
    /// True while a handshaken connection to the peer is open.
    pub connected: bool,
}

/// Node-wide counters (`Node::node_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub members: u64,
    pub handshakes_ok: u64,
    pub handshakes_failed: u64,
    pub connections_open: u64,
    pub sends: u64,
    pub send_failures: u64,
    pub received: u64,
    pub suspicions: u64,
    pub drops: u64,
}
