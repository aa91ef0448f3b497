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
//! - [`sim`]: seeded simulated network (drop, delay, duplicate, reorder, partition).

pub mod auth;
pub mod frame;
pub mod interceptor;
pub mod interceptors;
pub mod member;
pub mod node;
pub mod options;
pub mod sim;

pub use frame::{Body, Envelope, FrameCodec, FrameError, MsgId, PROTOCOL_VERSION};
pub use interceptor::{ChannelMessage, Interceptor, InterceptorError, InterceptorStack};
pub use member::{Member, MemberId};
pub use node::{Action, ConnId, DeliveryStatus, DisappearReason, Event, Node, NodeConfig};
pub use options::SendOptions;
