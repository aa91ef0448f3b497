//! `[[plugin]]` of a node's file: a Wasm component loaded at start. Plain data: shoal-node
//! turns an entry into the plugin host's spec (`shoal_node::plugins::spec`) and resolves its
//! path (`shoal_node::plugins::resolve_path`).
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `[[plugin]]` in the node's config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    pub name: String,
    /// Path of the component (`.wasm`); relative paths are relative to the config file.
    /// `example:NAME` names an example built by the project (e.g. `example:bench-app`).
    pub path: String,
    /// Given to the plugin through `host.config`.
    #[serde(default)]
    pub config: HashMap<String, String>,
    /// Contexts whose pipeline runs this valve / filter; empty = all.
    #[serde(default)]
    pub contexts: Vec<String>,
    #[serde(default)]
    pub policy: PolicyName,
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u32,
    #[serde(default = "default_timeout_ms")]
    pub call_timeout_ms: u64,
    #[serde(default = "default_instances")]
    pub max_instances: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
}

// One set of defaults for every way of loading a plugin (config file, API, `shoal ctl`).
fn default_memory_mib() -> u32 {
    shoal_admin::dto::DEFAULT_MEMORY_MIB
}
fn default_timeout_ms() -> u64 {
    shoal_admin::dto::DEFAULT_CALL_TIMEOUT_MS
}
fn default_instances() -> u32 {
    shoal_admin::dto::DEFAULT_MAX_INSTANCES
}
fn yes() -> bool {
    true
}

/// `policy` of a `[[plugin]]`: what the host does when the plugin traps or times out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    FailOpen,
    #[default]
    FailClosed,
    Reload,
}
