//! Wasm plugins (deployments: `deployments.rs`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Extension point a plugin implements (one WIT world each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginWorld {
    ChannelInterceptor,
    Valve,
    UrlFilter,
    DeployHook,
}

/// State of a plugin (overall, or on one node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginState {
    Enabled,
    Disabled,
    /// Disabled by its failure policy (crash loop); reload or enable to retry.
    Failed,
    /// Being applied; not every node confirmed yet.
    Pending,
}

/// What happens when the plugin traps, loops, exhausts memory or returns garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Skip the plugin.
    FailOpen,
    /// Valve: 503; interceptor: drop with an error to the sender.
    FailClosed,
    /// New instance with backoff; a crash loop disables it.
    Reload,
}

/// Sandbox limits of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PluginLimits {
    pub memory_bytes: u64,
    pub call_timeout_ms: u64,
    pub max_instances: u32,
}

/// Failures counted since load, by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FailureCounts {
    pub traps: u64,
    pub timeouts: u64,
    pub memory: u64,
    pub bad_output: u64,
    pub total: u64,
}

/// State of a plugin or deployment on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodePluginState {
    pub node: String,
    pub state: PluginState,
    /// Why the node is not in the requested state, if it is not.
    pub error: Option<String>,
}

/// A loaded plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plugin {
    #[schema(example = "url-filter")]
    pub name: String,
    #[schema(example = "0.1.0")]
    pub version: String,
    /// SHA-256 of the component, hex.
    pub digest: String,
    pub world: PluginWorld,
    pub state: PluginState,
    pub policy: FailurePolicy,
    pub limits: PluginLimits,
    pub failures: FailureCounts,
    /// Where it is attached: context names (valves, filters) or `channel`.
    pub attached_to: Vec<String>,
    /// Its configuration (given to the plugin at load time).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub size_bytes: u64,
    pub loaded_ms: u64,
    /// Per-node state: plugin operations apply to every node.
    pub nodes: Vec<NodePluginState>,
}

/// Query of the load call; the body is the component (`application/wasm` bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LoadPluginQuery {
    /// Unique plugin name (letters, digits, `-`, `_`, `.`; 1..=64 characters).
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    pub world: PluginWorld,
    /// Where to attach it: a context name, or `channel` for an interceptor.
    pub attach: Option<String>,
    /// Plugin version label (default `0.0.0`).
    pub version: Option<String>,
    pub policy: Option<FailurePolicy>,
    /// Configuration as a JSON object (URL-encoded text).
    pub config: Option<String>,
    /// Replace a plugin of the same name (hot reload: in-flight calls finish on the old one).
    pub replace: Option<bool>,
}

/// A plugin load request as the backend receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlugin {
    pub name: String,
    pub world: PluginWorld,
    pub attach: Option<String>,
    pub version: String,
    pub policy: FailurePolicy,
    pub config: serde_json::Value,
    pub replace: bool,
    pub component: Vec<u8>,
}

/// Raw bytes of an upload (a component or an artifact), sent as the request body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Upload(pub Vec<u8>);
