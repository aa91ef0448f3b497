//! shoal-net: the tokio side of shoal's group channel. It owns sockets and the clock and drives
//! the sans-io core of `shoal-cluster` (`Node`).
//!
//! Module map:
//! - [`channel`]: the public handle [`Channel`] (send / receive / membership / counters).
//! - `runtime`: start-up and handle-shared state; `driver` (+ `driver_events`): the task that
//!   owns the `Node`, carries out its actions and dispatches its events.
//! - `conn`: per-connection reader and writer tasks, connect, failure-detector probe.
//! - [`listener`]: the TCP receiver with Tomcat's auto-bind.
//! - [`discovery`]: candidate providers (static, multicast, DNS, in-memory twin).
//! - [`config`]: the `[cluster]` TOML section; [`settings`]: its resolved runtime form.
//! - [`stats`]: per-peer counters for the admin API.
//!
//! Design notes (the choices a reader would ask about):
//! - **One driver task** owns the `Node`; handles talk to it over an unbounded command
//!   channel. Sockets report over two bounded channels: connection set-up and probe results
//!   on a small priority channel, frames on a bounded one (TCP pushes back on a peer that
//!   sends faster than this node processes).
//! - **Writes**: frames produced in one driver iteration go to each connection's writer as
//!   one batch and leave in one `writev`. The driver never awaits a writer, so two nodes
//!   flooding each other cannot deadlock.
//! - **MessageDispatch**: an ASYNCHRONOUS send first takes `payload × destinations` bytes
//!   from a semaphore (`cluster.sender.queue_bytes`, 64 MiB); the permit rides on the frames
//!   and is released when they reach the socket. A full queue makes `send` wait and counts
//!   `queue_full`; it never turns the send synchronous (Tomcat's silent fallback).
//! - **Probe** (TcpFailureDetector verification): a fresh TCP connect, then the peer's first
//!   frame (its handshake `Challenge`) within `verify_timeout`. Refused = dead at once (kill
//!   -9); accepted by the kernel but no Challenge (hung or stopped process) = dead too.
//! - **Incoming** messages wait for the application in a queue bounded by bytes
//!   (`ChannelSettings::incoming_bytes`, 64 MiB); above it the driver stops reading frames
//!   and TCP pushes back on the senders (see `backlog`).
mod backlog;
pub mod channel;
pub mod config;
mod config_check;
mod conn;
pub mod discovery;
mod driver;
mod driver_events;
mod driver_stack;
mod driver_stats;
pub mod error;
pub mod listener;
mod runtime;
pub mod settings;
pub mod stats;

pub use channel::{
    Channel, Completion, Incoming, IncomingMessage, MembershipEvent, Outcome, SendReport,
    StackChangeError,
};
pub use config::ClusterConfig;
pub use error::NetError;
pub use settings::ChannelSettings;
pub use stats::{ChannelStats, PeerStats};
