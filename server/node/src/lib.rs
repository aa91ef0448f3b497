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
//! - `session_access.rs`: the session as plugins and applications see it.
//! - `wasm_valves.rs`: Wasm valve plugins as one valve in each context's pipeline.
//! - `url_filters.rs`: Wasm URL filter plugins as each context's ReplicationValve filter.
//! - [`drain`]: the drain trigger (API, signal, stdin → one [`drain::Drain`]), the valve that
//!   marks responses, and the sequence that takes the node out ([`drain::run`]).
//! - [`farm`]: the farm deployer: `shoal_farm`'s sans-io core driven over the channel
//!   (its own magic prefix), a content-addressed directory under `[farm] dir`, two-phase
//!   activation everywhere or nowhere, deploy hooks, and the readiness gate (a node serves
//!   only once it holds the cluster's deployments). `plugin` artifacts go live through
//!   [`plugins`] locally on each node; `file` artifacts as `files/<name>`.
//! - [`apps`]: a context's application from a component (`wasi:http/incoming-handler` or
//!   valve-world), compiled and test-instantiated before it goes live.
//! - `admin/`: [`NodeBackend`], the admin API's backend: translates between the concepts
//!   above and `shoal_admin`'s DTOs, nothing more.
mod admin;
pub mod apps;
pub mod drain;
pub mod farm;
mod link;
pub mod plugins;
pub mod roles;
mod runtime;
mod session_access;
mod url_filters;
mod wasm_valves;

pub use admin::{NodeBackend, NodeView};
pub use link::ChannelLink;
pub use runtime::{start, NodeParts, RunningNode};
