//! shoal-cluster: the sans-io core of shoal's group channel (what Tomcat calls Tribes).
//!
//! Nothing here opens a socket or reads a clock. Time enters as `now: Instant` arguments,
//! bytes enter through `handle_*` methods, and everything the core wants done leaves through
//! `poll_action` / `poll_event` / `poll_timeout` (the quinn-proto / foca shape). The tokio
//! side lives in `shoal-net`; the deterministic simulation lives in `sim` (feature `testing`).
//!
//! Module map, in the order data flows. Outbound: the caller's payload enters `Node::send`
//! (`node`) with its `options` → runs down the `interceptor` stack (layers from
//! `interceptors`) → is framed by `frame` → leaves as `Action::Send` bytes. Inbound: bytes
//! enter `Node::handle_frame` → `frame` decodes → `auth` checks handshakes → the stack runs
//! upwards → the message leaves as `Event::Received`.
//! - `member`: member identity (16-byte id, name/route, receiver address, domain, incarnation).
//! - `options`: Tomcat's send-option bits (byte message, use_ack, sync_ack, async, udp).
//! - `frame`: the versioned envelope and the length-prefixed frame codec (bincode).
//! - `auth`: cluster secret, HMAC'd beacons and handshakes.
//! - `interceptor`: the interceptor trait and the ordered stack.
//! - [`interceptors`]: the native interceptors (Order, Fragmentation, Encrypt, ...), a public
//!   namespace: the catalogue with `build` and `NAMES`.
//! - [`roles`]: the member-role protocol between nodes and balancers (meta keys, the ready
//!   and drain notices, the draining header), a public namespace of constants read by
//!   shoal-node, shoal-balancer and the binary. Imports `member`.
//! - `node/`: the channel state machine: membership, failure detection, acks, dedup.
//! - `sim/` (only with the `testing` feature): seeded simulated network (delay, reorder,
//!   duplicate, reset, partition, kill, restart) driving N nodes on virtual time; the
//!   deterministic tests use it. It feeds `node` exactly as shoal-net does.
//!
//! Imports between modules (A → B: A uses B; no arrow runs back):
//! sim → node, interceptor, frame, auth, member, options; interceptors → node, interceptor,
//! frame, member; node → interceptor, frame, auth, member, options; interceptor → frame,
//! member, options; frame → member, options; auth → member; roles → member; member, options: none.
//!
//! Where Tomcat's interceptors live: the message-transforming ones are layers of the
//! [`InterceptorStack`] ([`interceptors`]); TcpFailureDetector and TcpPing are the node's own
//! failure detector ([`NodeConfig`]'s `suspect_after`, `verify_timeout`, `ping_interval`),
//! StaticMembership and MessageDispatch are shoal-net's discovery and async queue. All four
//! also exist as pass-through layers that carry their settings, so a configured stack lists
//! them; [`interceptors::configure_node`] copies the failure-detector settings into the
//! [`NodeConfig`].

#![warn(unreachable_pub)]

mod auth;
mod frame;
mod interceptor;
pub mod interceptors;
mod member;
mod node;
mod options;
pub mod roles;
#[cfg(feature = "testing")]
pub mod sim;

pub use auth::ClusterSecret;
pub use frame::{
    AckStatus, Body, Envelope, FrameCodec, FrameError, MsgId, DEFAULT_MAX_FRAME, PROTOCOL_VERSION,
};
pub use interceptor::{
    ChannelMessage, Interceptor, InterceptorError, InterceptorStack, LayerCounts, LayerInfo,
    StackError,
};
pub use member::{Member, MemberId};
pub use node::{
    Action, ConnId, DeliveryStatus, Direction, DisappearReason, Event, Node, NodeConfig, NodeStats,
    PeerStats,
};
pub use options::SendOptions;
