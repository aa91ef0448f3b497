//! Contexts, their pipelines, sessions and manager/valve statistics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Session manager of a context (Tomcat's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManagerKind {
    /// Every node holds every session (DeltaManager).
    Delta,
    /// Primary + N backups (BackupManager).
    Backup,
    /// Sessions in memory while in use and in a store behind it (PersistentManager, or the
    /// PersistentValve with `mode = "per-request"`).
    Persistent,
}

/// When a request's response goes out relative to replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationMode {
    /// After the replicas acknowledged applying the change.
    Sync,
    /// Immediately; replication follows.
    Async,
}

/// Kind of a pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    Valve,
    UrlFilter,
    /// The handler at the end of the pipeline.
    App,
}

/// One stage of a context's pipeline, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStage {
    /// Unique within the pipeline; used by the reorder call.
    #[schema(example = "ReplicationValve")]
    pub name: String,
    pub kind: StageKind,
    /// The Wasm plugin behind this stage, `null` for a native one.
    pub plugin: Option<String>,
    pub enabled: bool,
}

/// A context (web application) served by the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Context {
    /// Name used in URLs of this API: the path without its leading `/` (`ROOT` for `/`).
    #[schema(example = "app")]
    pub name: String,
    /// URL path prefix, e.g. `/app`.
    #[schema(example = "/app")]
    pub path: String,
    pub manager: ManagerKind,
    pub replication: ReplicationMode,
    /// Backups per session (BackupManager only, 0 for Delta).
    pub backups: u32,
    pub pipeline: Vec<PipelineStage>,
    pub active_sessions: u64,
}

/// New order of a pipeline or interceptor stack: every current name exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderRequest {
    #[schema(example = json!(["url-filter", "ReplicationValve", "JvmRouteBinderValve", "app"]))]
    pub order: Vec<String>,
}

/// Filters and paging of the session list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// Only ids starting with this.
    pub prefix: Option<String>,
    /// Only sessions idle for at least this many seconds.
    #[param(minimum = 0)]
    pub min_idle_secs: Option<u64>,
    /// Only sessions whose primary or a backup lives on this node (member name).
    pub node: Option<String>,
    /// Index of the first item (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// Page size, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// One session, without its attribute values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionSummary {
    pub id: String,
    pub context: String,
    /// Member name holding the primary copy (Delta: the node that last served it).
    pub primary: String,
    /// Members holding a backup (Delta: every other member).
    pub backups: Vec<String>,
    pub created_ms: u64,
    pub last_access_ms: u64,
    /// Milliseconds since the last access, at the time of the answer.
    pub idle_ms: u64,
    pub max_inactive_secs: u64,
    pub attribute_count: u32,
    /// Sum of attribute value sizes.
    pub size_bytes: u64,
    /// Incremented on every change; replicas never apply an older one.
    pub version: u64,
    pub principal: Option<String>,
}

/// A page of sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionPage {
    pub items: Vec<SessionSummary>,
    /// Matching sessions in total (for paging).
    pub total: u64,
    pub offset: u64,
    pub limit: u32,
}

/// An attribute value, rendered three ways so that an operator can read any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attribute {
    pub name: String,
    pub size_bytes: u64,
    /// The value as UTF-8 text, if it is valid UTF-8.
    pub text: Option<String>,
    /// The value parsed as JSON, if it is JSON.
    pub json: Option<serde_json::Value>,
    /// The value as lowercase hex (first 4 KiB).
    pub hex: String,
    /// True when `hex` was cut at 4 KiB.
    pub truncated: bool,
}

impl Attribute {
    /// Renders raw bytes as text / JSON / hex.
    pub fn from_bytes(name: &str, value: &[u8]) -> Self {
        const HEX_MAX: usize = 4096;
        let text = std::str::from_utf8(value).ok().map(str::to_owned);
        let json = serde_json::from_slice(value).ok();
        Self {
            name: name.to_owned(),
            size_bytes: value.len() as u64,
            text,
            json,
            hex: hex::encode(&value[..value.len().min(HEX_MAX)]),
            truncated: value.len() > HEX_MAX,
        }
    }
}

/// One session with its attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionDetail {
    pub session: SessionSummary,
    pub attributes: Vec<Attribute>,
}

/// Result of expiring all sessions of a context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExpiredCount {
    pub expired: u64,
}

/// Sessions held by one node for one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeSessionCount {
    pub node: String,
    pub context: String,
    pub primary: u64,
    pub backup: u64,
}

/// Counters of one valve (Tomcat's ReplicationValve statistics and their kin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValveStats {
    pub name: String,
    pub requests: u64,
    pub total_time_us: u64,
    pub max_time_us: u64,
    pub failures: u64,
}

/// Statistics of a context's session manager (DeltaManager/BackupManager counters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManagerStats {
    pub context: String,
    pub sessions_active: u64,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    pub max_active: u64,
    pub rejected: u64,
    /// Messages sent, per message type (e.g. `delta`, `accessed`, `expire`).
    pub messages_sent: BTreeMap<String, u64>,
    pub messages_received: BTreeMap<String, u64>,
    pub state_transfers: u64,
    pub conflicts: u64,
    pub replication_time_avg_us: u64,
    pub replication_time_max_us: u64,
    /// Since when the counters run (last reset), unix milliseconds.
    pub since_ms: u64,
    pub valves: Vec<ValveStats>,
    /// The session store of a persistent context (`manager = "persistent"`) or behind a
    /// replicated one (`store = …` on a delta or backup context, written behind the requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreStats>,
}

/// How a context uses its session store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StoreRole {
    /// `manager = "persistent"`: the store holds every session, memory only those in use.
    Persistent,
    /// A replicated context with a store: changes are saved behind the requests.
    WriteBehind,
}

/// The session store of a context, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoreStats {
    pub role: StoreRole,
    /// The store's kind: `file`, `sqlite`, `postgres`, `mysql`, `redis`.
    pub name: String,
    /// Where it is (address or path, table or key prefix; never a password).
    pub describe: String,
    /// Why the store counts as down (absent while it answers), or why its check at start failed.
    pub degraded: Option<String>,
    /// The last store error seen, also after the store recovered (absent if none).
    pub last_error: Option<String>,
    /// Sessions with changes not yet in the store, their bytes (write-behind; 0 for a
    /// persistent context), and the age of the oldest change (ms): the lag.
    pub queue_depth: u64,
    pub queue_bytes: u64,
    pub queue_lag_ms: u64,
    /// Persistent: changes refused because the write queue was full. Write-behind: requests
    /// that waited for room in the queue (nothing is dropped).
    pub queue_full: u64,
    /// Lost compare-and-sets. Persistent: requests answered with a retryable conflict;
    /// write-behind: resolved by the managers' rank.
    pub conflicts: u64,
    /// Sessions loaded from the store (write-behind: on a miss, at a cold start).
    pub loads: u64,
    /// Rows saved (compare-and-set) and removed.
    pub saves: u64,
    pub removes: u64,
    /// Store operations that failed or timed out (each is retried or answered as unavailable).
    pub errors: u64,
    /// Store operations timed by this node, their mean and slowest duration (µs).
    pub ops_timed: u64,
    pub latency_avg_us: u64,
    pub latency_max_us: u64,
    /// Persistent: sessions held in memory on this node (the others are in the store only).
    pub in_memory: Option<u64>,
    /// Sessions of this context in the store (absent when the store did not answer in time).
    pub stored: Option<u64>,
}
