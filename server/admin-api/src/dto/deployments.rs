//! Farm deployments: what an upload asks for, and where each node stands.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// What an artifact becomes on each node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A Wasm component of any plugin world, loaded under the deployment's name
    /// (metadata `contexts` and `config.<key>`).
    #[default]
    Plugin,
    /// A context with its application component (metadata `path`, `context` as TOML,
    /// `config.<key>`).
    Application,
    /// An opaque file, available on each node as `files/<name>` under the farm directory.
    File,
}

/// Query of `PUT /api/v1/deployments/{name}`. Metadata goes in further query parameters
/// named `meta.<key>` (e.g. `meta.contexts=/app`, `meta.config.greeting=hello`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeployQuery {
    /// Version label (default: the first 12 hex digits of the sha256).
    #[param(example = "1.4.2")]
    pub version: Option<String>,
    /// `plugin` (default), `file` or `application`.
    pub kind: Option<ArtifactKind>,
    /// ed25519 signature (128 hex digits) of the manifest (name, version, kind, sha256,
    /// size, metadata); required when the nodes set `[farm] require_signatures`.
    pub signature: Option<String>,
}

/// A deploy as the backend receives it (the body is streamed beside it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployRequest {
    pub name: String,
    pub version: Option<String>,
    pub kind: ArtifactKind,
    /// Hex of the ed25519 signature, if any.
    pub signature: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// State of a deployment on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeployState {
    /// Behind the cluster (it converges: fetches, verifies, then applies).
    Pending,
    /// Receiving or verifying the content of a rollout.
    Staging,
    /// Verified and waiting for every node before activation.
    Staged,
    /// The deployment's current version is live here.
    Active,
    /// Refused or failed here (`detail` says why).
    Failed,
}

/// Per-node state of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeDeployState {
    pub node: String,
    pub state: DeployState,
    /// Version this node runs (or stages).
    pub version: Option<String>,
    /// sha256 (hex) of what this node runs (or stages).
    pub digest: Option<String>,
    pub generation: Option<u64>,
    pub detail: Option<String>,
    /// When this node made the version live, by its own clock (ms since the epoch), as it
    /// reported to the node that coordinated the rollout (absent on other nodes' views).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_ms: Option<u64>,
}

/// An artifact deployed to the whole cluster (farm deployment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    #[schema(example = "shop.wasm")]
    pub name: String,
    pub kind: ArtifactKind,
    pub version: String,
    /// sha256 of the content (hex).
    pub digest: String,
    pub size_bytes: u64,
    /// Grows by one with every deploy, undeploy or rollback of the name.
    pub generation: u64,
    pub signed: bool,
    pub metadata: BTreeMap<String, String>,
    /// The version a rollback returns to, if any.
    pub previous_version: Option<String>,
    /// When this node made the current version live (ms since the epoch).
    pub deployed_ms: u64,
    /// The spread between the first and the last node's activation instant of the rollout
    /// that made the current version live (each node's own clock; known on the node that
    /// coordinated it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_skew_ms: Option<u64>,
    pub nodes: Vec<NodeDeployState>,
}

/// Why a deploy, undeploy or rollback was refused with 409: the `reason` member of the
/// problem, beside its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictReason {
    /// Another rollout of the same name is running (`competing` names it); retry when it
    /// has finished.
    DeployInProgress,
    /// A rollback was asked for but the name has no previous version.
    NoPreviousVersion,
}

/// The rollout that holds a name, in a 409 `deploy-in-progress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompetingDeploy {
    /// The rollout's id (`<node>/<incarnation>.<seq>`).
    #[schema(example = "node1/1765111234567.3")]
    pub deploy: String,
    /// The node coordinating it.
    #[schema(example = "node1")]
    pub node: String,
    /// The version it deploys (absent for an undeploy).
    pub version: Option<String>,
}

/// A refused deployment change: the text and its typed reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployConflict {
    pub reason: ConflictReason,
    pub competing: Option<CompetingDeploy>,
    pub detail: String,
}

/// Where one node stands in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutNodeState {
    /// Receiving the content (`bytes_received` of `size_bytes`), or verifying it.
    Receiving,
    /// Verified (and test-loaded); waits for every node before activation.
    Staged,
    /// The change is live here.
    Active,
    /// Refused or failed here (`detail` says why); nobody activates.
    Failed,
    /// Left the cluster during the rollout: not waited for; converges when it returns.
    Excluded,
    /// Had not staged when the rollout was aborted (another node failed): nothing changed here.
    Cancelled,
}

/// One node's progress in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RolloutNode {
    pub node: String,
    pub state: RolloutNodeState,
    /// Bytes this node acknowledged to the coordinating node.
    pub bytes_received: u64,
    /// Why it failed, or what it waits for.
    pub detail: Option<String>,
}

/// The stage a rollout is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutPhase {
    /// The coordinating node checks its own copy.
    Checking,
    /// Nodes receive and verify the content.
    Staging,
    /// Every node staged; activation sent, waiting for confirmations.
    Committing,
    Done,
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutOutcome {
    /// Live on every node (that stayed).
    Activated,
    /// Nothing was activated anywhere (`error` names each failed node and its reason).
    Aborted,
}

/// A deploy, undeploy or rollback coordinated by this node, with each node's progress:
/// the running ones and the last one of each name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rollout {
    #[schema(example = "shop.wasm")]
    pub name: String,
    /// The rollout's id (coordinating node, incarnation, sequence).
    pub id: String,
    /// True for an undeploy (no content is transferred).
    pub undeploy: bool,
    pub kind: Option<ArtifactKind>,
    pub version: Option<String>,
    /// sha256 (hex) of the content being deployed.
    pub digest: Option<String>,
    pub size_bytes: u64,
    pub phase: RolloutPhase,
    pub outcome: Option<RolloutOutcome>,
    /// When aborted: each failed node and its reason.
    pub error: Option<String>,
    /// When this node started it (ms since the epoch).
    pub started_ms: u64,
    pub nodes: Vec<RolloutNode>,
}
