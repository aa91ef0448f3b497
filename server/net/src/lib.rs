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
pub mod channel;
pub mod config;
mod config_check;
mod conn;
pub mod discovery;
mod driver;
mod driver_events;
mod driver_stats;
pub mod error;
pub mod listener;
mod runtime;
pub mod settings;
pub mod stats;

pub use channel::{
    Channel, Completion, Incoming, IncomingMessage, MembershipEvent, Outcome, SendReport,
};
pub use config::ClusterConfig;
pub use error::NetError;
pub use settings::ChannelSettings;
pub use stats::{ChannelStats, PeerStats};
