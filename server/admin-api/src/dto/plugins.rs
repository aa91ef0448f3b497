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
/// The default, wherever a plugin is loaded (config file, API, `shoal ctl`), is
/// `fail-closed` ([`FailurePolicy::DEFAULT`]).
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

impl FailurePolicy {
    /// The policy of a plugin loaded without one (the documented default).
    pub const DEFAULT: FailurePolicy = FailurePolicy::FailClosed;
}

/// Default sandbox limits of a plugin loaded without them (the same as a `[[plugin]]`
/// entry of the node's config without them).
pub const DEFAULT_MEMORY_MIB: u32 = 16;
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 100;
pub const DEFAULT_MAX_INSTANCES: u32 = 4;

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
    /// The `shoal:plugin` WIT package version the component was built against.
    #[schema(example = "0.2.0")]
    pub wit_version: String,
    /// Reload generation on the answering node: 1 at load, +1 per replace, reload,
    /// reconfiguration or change of limits (the node logs it as `generation=`).
    #[schema(example = 1)]
    pub generation: u64,
    /// The operator's label given at load (`label=`), if any; shoal does not interpret it.
    #[schema(example = "2026-12-07.1")]
    pub label: Option<String>,
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
    /// Why the plugin may not run where it is placed (e.g. a valve after an application
    /// valve that answers every request); empty when nothing is wrong.
    #[serde(default)]
    pub warnings: Vec<String>,
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
    /// Valves and URL filters: place it just before this stage of the pipeline (a plugin,
    /// or `app` for last). Default for a valve: first among the plugins, so it runs before
    /// the context's application (also a Wasm one).
    pub before: Option<String>,
    /// Place it just after this stage (a plugin, or `ReplicationValve` for first).
    pub after: Option<String>,
    /// A label of the operator's choosing, shown as `label` (e.g. a build id).
    pub label: Option<String>,
    /// Default `fail-closed`; on replace, the current policy is kept unless given.
    pub policy: Option<FailurePolicy>,
    /// Memory limit in MiB (default 16; on replace, kept unless given).
    pub memory_mib: Option<u32>,
    /// Time limit per call in ms (default 100; on replace, kept unless given).
    pub call_timeout_ms: Option<u64>,
    /// Instances at most (default 4; on replace, kept unless given).
    pub max_instances: Option<u32>,
    /// Configuration as a JSON object (URL-encoded text); on replace, kept unless given.
    pub config: Option<String>,
    /// Replace a plugin of the same name (hot reload: in-flight calls finish on the old
    /// one); every other field given applies too.
    pub replace: Option<bool>,
}

/// Where a valve or URL filter goes in its context's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Just before this stage.
    Before(String),
    /// Just after this stage.
    After(String),
}

/// Limits given with a load; `None` means the default (load) or unchanged (replace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsRequest {
    pub memory_mib: Option<u32>,
    pub call_timeout_ms: Option<u64>,
    pub max_instances: Option<u32>,
}

impl LimitsRequest {
    pub fn is_empty(&self) -> bool {
        self == &LimitsRequest::default()
    }

    /// The limits to apply: given values over `base` (the defaults, or the current ones).
    pub fn over(&self, base: &PluginLimits) -> PluginLimits {
        PluginLimits {
            memory_bytes: self
                .memory_mib
                .map_or(base.memory_bytes, |m| u64::from(m) << 20),
            call_timeout_ms: self.call_timeout_ms.unwrap_or(base.call_timeout_ms),
            max_instances: self.max_instances.unwrap_or(base.max_instances),
        }
    }
}

impl PluginLimits {
    /// The limits of a plugin loaded without any.
    pub fn default_limits() -> PluginLimits {
        PluginLimits {
            memory_bytes: u64::from(DEFAULT_MEMORY_MIB) << 20,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            max_instances: DEFAULT_MAX_INSTANCES,
        }
    }
}

/// A plugin load request as the backend receives it. On replace, every `Some` field (and
/// a non-empty `limits`) changes the plugin; the others keep their current value.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlugin {
    pub name: String,
    pub world: PluginWorld,
    pub attach: Option<String>,
    pub position: Option<Position>,
    pub label: Option<String>,
    pub policy: Option<FailurePolicy>,
    pub limits: LimitsRequest,
    pub config: Option<serde_json::Value>,
    pub replace: bool,
    pub component: Vec<u8>,
}

/// Raw bytes of an upload (a component or an artifact), sent as the request body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Upload(pub Vec<u8>);
