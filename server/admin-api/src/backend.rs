//! [`AdminBackend`]: everything the admin API asks of a node, in one object-safe trait.
//!
//! The HTTP layer only translates; the node (or the in-memory twin, `testing`, in tests and the dev
//! server) does the work. Futures are boxed so that the trait stays object-safe and the
//! router can hold an `Arc<dyn AdminBackend>`.

use std::{future::Future, pin::Pin};

use tokio::sync::broadcast;

use crate::dto::*;

/// A boxed, `Send` future, as returned by every [`AdminBackend`] method.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Result of a backend call.
pub type BackendResult<'a, T> = BoxFuture<'a, Result<T, BackendError>>;

/// The streamed body of an upload, piece by piece as it arrives (never whole in memory);
/// an error item means the upload was cut short (client gone, length mismatch).
pub type ArtifactBody =
    Pin<Box<dyn futures::Stream<Item = Result<axum::body::Bytes, String>> + Send>>;

/// Why a backend call failed. Each message is shown to the operator: say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// `what` (e.g. `context`, `session`, `plugin`) named `name` does not exist.
    #[error("no {what} named `{name}`{hint}")]
    NotFound {
        what: &'static str,
        name: String,
        /// Extra help, e.g. ` (known: app, shop)`; empty or starting with a space.
        hint: String,
    },
    /// The request conflicts with the current state (e.g. a plugin name already in use).
    #[error("{0}")]
    Conflict(String),
    /// A deployment change refused because of another one (HTTP 409 with a typed reason).
    #[error("{}", .0.detail)]
    DeployConflict(crate::dto::DeployConflict),
    /// The request is well-formed but cannot be applied (e.g. not a Wasm component).
    #[error("{0}")]
    Invalid(String),
    /// The upload is larger than the node accepts (HTTP 413).
    #[error("{0}")]
    TooLarge(String),
    /// A node or subsystem needed for the call is unavailable; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or unexpected state: logged with detail, reported as 500.
    #[error("{0}")]
    Internal(String),
}

impl BackendError {
    pub fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            name: name.into(),
            hint: String::new(),
        }
    }
}

/// Operations of the admin API on one node.
///
/// **Cluster-wide plugin and deployment operations.** `load_plugin`, `configure_plugin`,
/// `reorder_pipeline`, `reorder_interceptors`, `set_plugin_enabled`, `reload_plugin`,
/// `unload_plugin`, `deploy` and `undeploy` must be applied on *every* node, not only on the
/// one asked: the implementation sends the operation over the channel (or via the farm
/// deployer) and answers with the per-node state it knows (`nodes` of the result, nodes that
/// have not confirmed yet shown as `pending`). Reads describe the local node's view.
///
/// Implementations must be cheap to call concurrently (`Send + Sync`) and must not block the
/// executor: slow work goes to `spawn_blocking` or to the node's own tasks.
pub trait AdminBackend: Send + Sync + 'static {
    // --- cluster ---
    fn local_node(&self) -> BackendResult<'_, LocalNode>;
    fn members(&self) -> BackendResult<'_, Vec<Member>>;
    fn health(&self) -> BackendResult<'_, Health>;
    fn readiness(&self) -> BackendResult<'_, Readiness>;
    /// This node's drain (phase `serving` until something asks it to drain).
    fn drain_status(&self) -> BackendResult<'_, DrainStatus>;
    /// Starts draining this node exactly as SIGTERM does, and returns at once with the
    /// status (`draining: true`); the drain runs on and the process exits when it is done.
    /// [`BackendError::Conflict`] if the node already drains.
    fn start_drain(&self) -> BackendResult<'_, DrainStatus>;

    // --- contexts and sessions ---
    fn contexts(&self) -> BackendResult<'_, Vec<Context>>;
    fn context(&self, name: &str) -> BackendResult<'_, Context>;
    /// Reorders a context's pipeline; `order` names every current stage exactly once.
    fn reorder_pipeline(&self, context: &str, order: Vec<String>) -> BackendResult<'_, Context>;
    /// Sessions of a context, filtered and paged (`query.limit` already validated).
    fn sessions(&self, context: &str, query: SessionQuery) -> BackendResult<'_, SessionPage>;
    fn session(&self, context: &str, id: &str) -> BackendResult<'_, SessionDetail>;
    /// Expires (invalidates) one session cluster-wide.
    fn expire_session(&self, context: &str, id: &str) -> BackendResult<'_, ()>;
    /// Expires every session of a context cluster-wide; returns how many.
    fn expire_all(&self, context: &str) -> BackendResult<'_, u64>;
    fn session_counts(&self) -> BackendResult<'_, Vec<NodeSessionCount>>;

    // --- statistics ---
    fn manager_stats(&self, context: &str) -> BackendResult<'_, ManagerStats>;
    fn reset_stats(&self, context: &str) -> BackendResult<'_, ()>;

    // --- channel ---
    fn channel(&self) -> BackendResult<'_, ChannelInfo>;
    fn reorder_interceptors(&self, order: Vec<String>) -> BackendResult<'_, ChannelInfo>;
    fn peer_traffic(&self) -> BackendResult<'_, Vec<PeerTraffic>>;

    // --- plugins (cluster-wide, see the trait docs) ---
    fn plugins(&self) -> BackendResult<'_, Vec<Plugin>>;
    fn plugin(&self, name: &str) -> BackendResult<'_, Plugin>;
    fn load_plugin(&self, request: LoadPlugin) -> BackendResult<'_, Plugin>;
    fn configure_plugin(&self, name: &str, config: serde_json::Value) -> BackendResult<'_, Plugin>;
    fn set_plugin_enabled(&self, name: &str, enabled: bool) -> BackendResult<'_, Plugin>;
    /// New instances from the same component (clears a `failed` state).
    fn reload_plugin(&self, name: &str) -> BackendResult<'_, Plugin>;
    fn unload_plugin(&self, name: &str) -> BackendResult<'_, ()>;

    // --- deployments (cluster-wide) ---
    fn deployments(&self) -> BackendResult<'_, Vec<Deployment>>;
    fn deployment(&self, name: &str) -> BackendResult<'_, Deployment>;
    /// Receives `body` (streamed) and deploys it on every node, everywhere or nowhere;
    /// answers when the rollout has ended. Two deploys of one name at once: `Conflict`.
    fn deploy(&self, request: DeployRequest, body: ArtifactBody) -> BackendResult<'_, Deployment>;
    /// Removes the deployment from every node (everywhere or nowhere).
    fn undeploy(&self, name: &str) -> BackendResult<'_, ()>;
    /// Makes the previous version current again on every node.
    fn rollback(&self, name: &str) -> BackendResult<'_, Deployment>;
    /// Rollouts coordinated by this node with each node's progress: the running ones and
    /// the last one of each name, most recent first.
    fn rollouts(&self) -> BackendResult<'_, Vec<Rollout>>;

    // --- events and metrics ---
    /// Events from now on. A lagging receiver loses the oldest events (SSE says so).
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// The most recent events, oldest first (at most `limit`).
    fn recent_events(&self, limit: usize) -> BackendResult<'_, Vec<Event>>;
    /// Prometheus text exposition format (version 0.0.4).
    fn metrics_text(&self) -> BackendResult<'_, String>;
}
