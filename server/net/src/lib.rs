//! shoal-net: the tokio side of shoal's group channel. It owns sockets and the clock and drives
//! the sans-io core of `shoal-cluster` (`Node`).
//!
//! Module map, in the order data flows. Outbound: the application calls [`Channel`] →
//! a `command` → the `driver` (which owns the `Node`) → `conn` writers → the socket.
//! Inbound: socket → `conn` readers (or `listener` for accepted sockets, `discovery` for
//! candidate addresses) → `driver` → `incoming` queue / `types` events → the application.
//! - `channel`: the public handle [`Channel`]: send, membership, counters, live stack changes.
//! - `types`: what the channel hands out ([`Outcome`], [`SendReport`], [`MembershipEvent`]).
//! - `incoming`: the receive side ([`Incoming`], [`IncomingMessage`], [`Completion`]); a
//!   completion travels back to the driver as a command.
//! - `command`: the requests handles send to the driver task (`Command`, `StackChange`).
//! - `start`: start-up (bind, discovery, spawn the driver); hands the pieces to `channel`.
//! - `shared`: state handles read without asking the driver (view, events, send queue).
//! - `driver/`: the task that owns the `Node`, carries out its actions (`mod.rs`), dispatches
//!   its events (`events`), changes the live stack (`stack`) and snapshots counters (`stats`).
//! - `conn`: per-connection reader and writer tasks, connect, failure-detector probe.
//! - `listener`: the TCP receiver with Tomcat's auto-bind; accepted sockets go to the driver.
//! - `backlog`: the byte bound on messages waiting for the application (pauses reading).
//! - `discovery/`: candidate providers (static, multicast, DNS; the in-memory twin only with
//!   the `testing` feature), feeding addresses to the driver.
//! - `config/`: the `[cluster]` TOML section (`mod.rs`) and its validation (`check`);
//!   `settings`: its resolved runtime form, read by `start`.
//! - `stats`: per-peer and channel counters for the admin API; `error`: the crate's errors.
//!
//! Imports between modules (A → B: A uses B; no arrow runs back):
//! channel → start, shared, command, incoming, types, discovery, settings, stats, error;
//! start → driver, shared, command, incoming, discovery, listener, settings, backlog, error;
//! driver → shared, command, incoming, types, conn, discovery, stats;
//! shared → discovery, types, backlog; incoming → command, backlog; command → types, stats;
//! listener → conn, error; discovery → conn, config, error; conn → stats;
//! settings → config, error; error → config; types, stats, backlog, config: none.
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
#![warn(unreachable_pub)]

mod backlog;
mod channel;
mod command;
mod config;
mod conn;
mod discovery;
mod driver;
mod error;
mod incoming;
mod listener;
mod settings;
mod shared;
mod start;
mod stats;
mod types;

pub use channel::Channel;
pub use config::{
    ClusterConfig, ConfigError, DnsConfig, FailureDetectorConfig, InterceptorConfig,
    MembershipConfig, MulticastConfig, Provider, ReceiverConfig, SenderConfig, SECRET_ENV,
};
pub use discovery::{
    BoxFuture, Discovery, DnsDiscovery, MulticastDiscovery, MulticastStats, StaticDiscovery,
};
#[cfg(feature = "testing")]
pub use discovery::{MemoryDiscovery, MemoryNet};
pub use error::{NetError, StackChangeError};
pub use incoming::{Completion, Incoming, IncomingMessage};
pub use settings::{loopback_settings, ChannelSettings};
pub use stats::{ChannelStats, PeerStats};
pub use types::{MembershipEvent, Outcome, SendReport};
