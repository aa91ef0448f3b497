//! shoal-node: one shoal node, wired from the library crates, and the concepts that belong
//! to a node rather than to any one library (its drain, its deployments, member roles).
//!
//! Module map, in the order data flows through a node:
//! - `runtime.rs`: [`start`] (listeners + [`NodeParts`] → a [`RunningNode`]): builds the
//!   channel, the session registry, the HTTP contexts, the plugins and the admin backend,
//!   and routes incoming channel messages to them.
//! - `link.rs`: sessions over the real channel ([`ChannelLink`]): session messages out to
//!   the channel, channel messages and membership in to the session managers.
//! - [`roles`]: member roles (node / balancer) and the notices a node sends to balancers;
//!   read by `link.rs` (balancers are not session peers) and by the binary.
//! - [`plugins`]: plugins from the config, and operator operations applied cluster-wide
//!   ([`plugins::ControlOp`] over the channel, applied to the plugin host's registry).
//! - `wasm_valves.rs`: Wasm valve plugins as one valve in each context's pipeline.
//! - `url_filters.rs`: Wasm URL filter plugins as each context's ReplicationValve filter.
//! - [`drain`]: the drain trigger (API, signal, stdin → one [`drain::Drain`]), the valve that
//!   marks responses, and the sequence that takes the node out ([`drain::run`]).
//! - `deploy.rs`: deployments (a stand-in the farm deployer replaces): deploy hooks, then
//!   a Wasm component loaded as a plugin on every node via [`plugins`].
//! - `admin/`: [`NodeBackend`], the admin API's backend: translates between the concepts
//!   above and `shoal_admin`'s DTOs, nothing more.
mod admin;
pub mod apps;
mod deploy;
pub mod drain;
mod link;
pub mod plugins;
pub mod roles;
mod runtime;
mod url_filters;
mod wasm_valves;

pub use admin::{NodeBackend, NodeView};
pub use link::ChannelLink;
pub use runtime::{start, NodeParts, RunningNode};
