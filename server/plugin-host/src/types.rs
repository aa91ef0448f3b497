//! Host-side values crossing the plugin boundary: what callers hand in and get back.
//! They mirror the WIT records but belong to this crate, so callers never see bindings.
use std::fmt;
use std::time::Duration;

/// The extension point a component implements (one WIT world each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginWorld {
    ChannelInterceptor,
    Valve,
    UrlFilter,
    DeployHook,
}

impl PluginWorld {
    pub const ALL: [PluginWorld; 4] = [
        PluginWorld::ChannelInterceptor,
        PluginWorld::Valve,
        PluginWorld::UrlFilter,
        PluginWorld::DeployHook,
    ];

    /// The WIT world name, e.g. `url-filter`.
    pub fn wit_name(self) -> &'static str {
        match self {
            PluginWorld::ChannelInterceptor => "channel-interceptor",
            PluginWorld::Valve => "valve",
            PluginWorld::UrlFilter => "url-filter",
            PluginWorld::DeployHook => "deploy-hook",
        }
    }

    /// An export only this world has: how a component's world is recognised.
    pub(crate) fn marker_export(self) -> &'static str {
        match self {
            PluginWorld::ChannelInterceptor => "on-send",
            PluginWorld::Valve => "handle",
            PluginWorld::UrlFilter => "may-touch-session",
            PluginWorld::DeployHook => "before-deploy",
        }
    }
}

impl fmt::Display for PluginWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wit_name())
    }
}

/// Per-plugin sandbox limits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Linear memory per instance; growing past it traps.
    pub memory_bytes: usize,
    /// Wall time per call, enforced with epoch interruption (granularity: the engine tick).
    pub call_timeout: Duration,
    /// Instances serving calls at once; more concurrent calls wait for a free one, at most
    /// `call_timeout`, then fail as `busy`.
    pub max_instances: u32,
    /// Largest response body / rewritten payload a call may return.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 << 20,
            call_timeout: Duration::from_millis(100),
            max_instances: 4,
            max_output_bytes: 8 << 20,
        }
    }
}

/// What happens when a call fails (trap, time or memory limit, bad output).
/// In every case the failed instance is discarded and the failure counted and logged.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Skip the plugin for that call: a valve passes, a filter allows replication,
    /// an interceptor passes the message, a deploy hook allows.
    FailOpen,
    /// Valve: 503. Interceptor: the message is dropped and the sender gets an error.
    /// URL filter: the session replicates. Deploy hook: veto.
    #[default]
    FailClosed,
    /// Answer as `FailClosed`, then wait `backoff` (doubling per consecutive failure, at most
    /// 30 s) before the next instance is created; calls in between get the fail-closed
    /// answer. More than `max_restarts` consecutive failures disable the plugin (crash loop).
    Reload {
        backoff: Duration,
        max_restarts: u32,
    },
}

/// Whether a plugin takes calls.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "reason")]
pub enum PluginState {
    Enabled,
    /// Turned off by the operator; calls skip it.
    Disabled,
    /// Turned off by the reload policy after a crash loop; `enable` turns it back on.
    CrashLoop(String),
}

/// Failures by kind, since load.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FailureCounts {
    pub traps: u64,
    pub timeouts: u64,
    pub memory: u64,
    pub bad_output: u64,
    pub instantiation: u64,
    pub busy: u64,
    /// Calls answered by the policy without running (backoff, crash loop, disabled).
    pub skipped: u64,
}

/// One row of [`crate::PluginRegistry::list`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    /// The reload generation: 1 at load; every reload, reconfiguration or change of limits
    /// makes the next one (logged as `generation=`). Not the WIT package version.
    pub generation: u64,
    /// Lowercase hex SHA-256 of the component bytes.
    pub digest: String,
    pub world: PluginWorld,
    /// The `shoal:plugin` package version the component was built against, e.g. `0.2.0`.
    pub wit_version: String,
    pub state: PluginState,
    pub limits: Limits,
    pub policy: FailurePolicy,
    pub config: Vec<(String, String)>,
    pub calls: u64,
    /// Valve calls the plugin answered itself (`respond`, not its failure policy): equal
    /// to `calls` for an application, so a valve placed after it never runs.
    pub responded: u64,
    pub failures: FailureCounts,
    pub last_error: Option<String>,
    /// Instances alive for the current version.
    pub instances: u32,
}

/// A request as valves and URL filters see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// Path including the context, not decoded.
    pub path: String,
    /// Query string without `?`; empty when absent.
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// Given to valves that want it (see [`crate::PluginRegistry::valve_wants_body`]).
    pub body: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a valve decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValveOutcome {
    /// Continue the pipeline, setting these request headers (replace same-named ones;
    /// an empty value removes the header) and adding these response headers.
    Next {
        set_request_headers: Vec<(String, String)>,
        add_response_headers: Vec<(String, String)>,
    },
    /// Answer now.
    Respond(HttpResponse),
}

impl ValveOutcome {
    /// Continue unchanged.
    pub fn pass() -> ValveOutcome {
        ValveOutcome::Next {
            set_request_headers: Vec::new(),
            add_response_headers: Vec::new(),
        }
    }
}

/// An artifact offered to the farm deployer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    /// Lowercase hex SHA-256 of the bytes.
    pub digest: String,
    pub size: u64,
    pub metadata: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeployDecision {
    Allow,
    Veto(String),
}
