//! shoal-node: one shoal node, wired from the library crates.
//!
//! - [`link`]: sessions over the real channel ([`link::ChannelLink`]).
//! - [`plugins`]: plugins from the config, and operator operations applied cluster-wide.
//! - [`wasm_valves`]: Wasm valve plugins as one valve in each context's pipeline.
//! - [`url_filters`]: Wasm URL filter plugins as each context's ReplicationValve filter.
//! - [`admin`]: the admin API's backend over the running node ([`admin::NodeBackend`]).
//! - [`runtime`]: [`runtime::start`] (listeners + config → a running node) and its handle.
pub mod admin;
pub mod link;
pub mod plugins;
pub mod runtime;
pub mod url_filters;
pub mod wasm_valves;

pub use runtime::{start, NodeParts, RunningNode};
