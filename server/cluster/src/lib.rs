//! shoal-cluster: the sans-io core of shoal's group channel (what Tomcat calls Tribes).
//!
//! Nothing here opens a socket or reads a clock. Time enters as `now: Instant` arguments,
//! bytes enter through `handle_*` methods, and everything the core wants done leaves through
//! `poll_action` / `poll_event` / `poll_timeout` (the quinn-proto / foca shape). The tokio
//! side lives in `shoal-net`; the deterministic simulation lives in `sim`.
//!
//! Module map:
//! - [`member`]: member identity (16-byte id, name/route, receiver address, domain, incarnation).
//! - [`options`]: Tomcat's send-option bits (byte message, use_ack, sync_ack, async, udp).
//! - [`frame`]: the versioned envelope and the length-prefixed frame codec (bincode).
//! - [`auth`]: cluster secret, HMAC'd beacons and handshakes.
//! - [`interceptor`]: the interceptor trait and the ordered stack.
//! - [`interceptors`]: the native interceptors (Order, Fragmentation, Encrypt, ...).
//! - [`node`]: the channel state machine: membership, failure detection, acks, dedup.
//! - [`sim`]: seeded simulated network (delay, reorder, duplicate, reset, partition, kill,
//!   restart) driving N nodes on virtual time; the deterministic tests use it.
//!
//! Where Tomcat's interceptors live: the message-transforming ones are layers of the
//! [`InterceptorStack`] ([`interceptors`]); TcpFailureDetector and TcpPing are the node's own
//! failure detector ([`NodeConfig`]'s `suspect_after`, `verify_timeout`, `ping_interval`),
//! StaticMembership and MessageDispatch are shoal-net's discovery and async queue. All four
//! also exist as pass-through layers that carry their settings, so a configured stack lists
//! them; [`interceptors::configure_node`] copies the failure-detector settings into the
//! [`NodeConfig`].

pub mod auth;
pub mod frame;
pub mod interceptor;
pub mod interceptors;
pub mod member;
pub mod node;
pub mod options;
pub mod roles;
pub mod sim;

pub use frame::{Body, Envelope, FrameCodec, FrameError, MsgId, PROTOCOL_VERSION};
pub use interceptor::{ChannelMessage, Interceptor, InterceptorError, InterceptorStack};
pub use member::{Member, MemberId};
pub use node::{Action, ConnId, DeliveryStatus, DisappearReason, Event, Node, NodeConfig};
pub use options::SendOptions;
