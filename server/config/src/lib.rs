//! shoal-config: the node's TOML file (`shoal node --config FILE`), read as the binary reads
//! it. Each section's type lives in the crate that owns the concept (`[cluster]` shoal-net,
//! `[http]` shoal-http, `[admin]` shoal-admin, `[farm]` shoal-farm); this crate puts them
//! together, applies the command line's overrides and validates the whole.
//!
//! It sits low in the crate graph so that the fuzz target `node_config` (tests/fuzz) calls
//! the same code without linking the node (plugin host, stores).
//!
//! # Layout
//! - `file.rs`: [`Config`] (the file, unknown keys refused) and [`Overrides`] (the flags).
//! - `plugin.rs`: [`PluginEntry`], `[[plugin]]` (shoal-node turns it into a plugin spec).
//! - `log.rs`: [`LogConfig`] and [`LogFormat`], `[log]` (read before the rest of the file).
#![warn(unreachable_pub)]

mod file;
mod log;
mod plugin;

pub use file::{Config, Overrides};
pub use log::{LogConfig, LogFormat};
pub use plugin::{PluginEntry, PolicyName};
