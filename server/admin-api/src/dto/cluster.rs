//! Members, health, readiness and cluster events.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time::rfc3339;

/// What the local failure detector currently believes about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answering beacons/pings.
    Alive,
    /// Missed its deadline; a TCP check is under way before it is dropped.
    Suspect,
    /// Dropped from the view (its sessions were taken over).
    Gone,
}

/// One member of the cluster as seen by the node that answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// The member's route, e.g. `node1` (the suffix of `JSESSIONID=<id>.<route>`).
    #[schema(example = "node1")]
    pub name: String,
    /// 16-byte unique id, hex; a restarted node comes back with a new one.
    #[schema(example = "6f1c0e7a9b2d4c55a1e0f3b2c4d5e6f7")]
    pub id: String,
    /// `host:port` of the member's TCP receiver.
    #[schema(example = "127.0.0.1:4000")]
    pub address: String,
    /// Cluster partition (Tomcat's domain).
    pub domain: String,
    pub state: MemberState,
    /// When the member entered `state`, unix milliseconds.
    pub since_ms: u64,
    /// `since_ms` as RFC 3339 UTC.
    #[schema(example = "2026-11-22T14:26:36.123Z")]
    pub since: String,
    /// Why the member is in `state` (e.g. `joined by multicast beacon`, `TCP check failed`).
    pub reason: Option<String>,
    /// True for the node that answered this request.
    pub local: bool,
}

/// The node answering: its member record plus process facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocalNode {
    pub member: Member,
    /// shoal version of this node.
    pub version: String,
    /// Process start, unix milliseconds.
    pub started_ms: u64,
    /// Contexts (web applications) this node serves.
    pub contexts: Vec<String>,
}

/// Liveness: the process answers and its main loops tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when every check passed, `degraded` otherwise (still live: no restart needed),
    /// `draining` while the node drains before it exits (see `/api/v1/cluster/drain`).
    #[schema(example = "ok")]
    pub status: String,
    pub checks: Vec<Check>,
}

/// One named check of [`Health`] or [`Readiness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    #[schema(example = "membership")]
    pub name: String,
    pub ok: bool,
    /// What was seen, and if not ok, what it waits for.
    pub detail: String,
}

/// Readiness: may a balancer send traffic here (state transfer done, HTTP listening)?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ready`, `not-ready` (a check fails: see `checks`) or `draining` (the node takes no
    /// new sessions and exits once its sessions are safe elsewhere).
    #[schema(example = "ready")]
    pub status: String,
    pub checks: Vec<Check>,
}

/// Where a node's drain is. Only `serving`, `notifying` and `grace` can be seen through the
/// admin API: it closes with the HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DrainPhase {
    /// Not draining.
    Serving,
    /// New sessions refused; telling the balancers that joined the cluster.
    Notifying,
    /// Still serving sticky requests while balancers with a static backend list see the
    /// drain in their health probes.
    Grace,
    /// HTTP listener closed; requests in flight finish.
    Closing,
    /// Leaving the cluster: peers take over (BackupManager promotes the backups).
    Leaving,
}

/// A node's drain for rolling deploys: `POST /api/v1/cluster/drain` starts it (like SIGTERM),
/// `GET` follows it. The process exits (status 0) once nothing would be lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DrainStatus {
    /// The node that answers (its route).
    #[schema(example = "node1")]
    pub node: String,
    /// True from the drain request until the process exits.
    pub draining: bool,
    pub phase: DrainPhase,
    /// What started the drain: `api`, `signal` (SIGTERM, Ctrl-C) or `control` (`quit` on
    /// the control stdin); null while serving.
    #[schema(example = "api")]
    pub trigger: Option<String>,
    /// When the drain started, unix milliseconds; null while serving.
    pub since_ms: Option<u64>,
    /// `since_ms` as RFC 3339 UTC.
    pub since: Option<String>,
    /// What the drain does, in order.
    pub steps: Vec<String>,
    /// What is happening now, for people.
    pub detail: String,
}

impl MemberState {
    /// How many of `members` are in this state (health checks and metrics count them).
    pub fn count_in(self, members: &[Member]) -> usize {
        members.iter().filter(|m| m.state == self).count()
    }
}

impl DrainStatus {
    /// A node draining since `since_ms`, started by `trigger`, now in `phase`.
    pub fn draining(
        node: String,
        phase: DrainPhase,
        trigger: &str,
        since_ms: u64,
        detail: String,
    ) -> DrainStatus {
        DrainStatus {
            node,
            draining: true,
            phase,
            trigger: Some(trigger.to_owned()),
            since_ms: Some(since_ms),
            since: Some(rfc3339(since_ms)),
            steps: drain_steps(),
            detail,
        }
    }

    /// A node that is not draining; `detail` says how to start a drain on it.
    pub fn serving(node: String, detail: &str) -> DrainStatus {
        DrainStatus {
            node,
            draining: false,
            phase: DrainPhase::Serving,
            trigger: None,
            since_ms: None,
            since: None,
            steps: drain_steps(),
            detail: detail.to_owned(),
        }
    }
}

/// The steps of a drain, as shown in [`DrainStatus::steps`] (the node and the in-memory
/// backend describe the same sequence).
pub fn drain_steps() -> Vec<String> {
    [
        "stop taking new sessions (readiness answers 503 `draining`)",
        "tell the balancers: members with role `balancer` at once, static balancers through their health probes",
        "keep serving sticky requests for a short grace, then close the HTTP listener and let requests in flight finish",
        "hand the sessions over: leave the cluster after flushing replication (DeltaManager peers hold every session; BackupManager peers promote their backups)",
        "exit with status 0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// What an [`Event`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    MemberAdded,
    MemberSuspect,
    MemberGone,
    Deploy,
    Undeploy,
    Plugin,
    Session,
    /// The node started draining (API, CLI, SIGTERM).
    Drain,
}

/// A cluster event, as sent on `/api/v1/events` (SSE, `event:` = kind, `id:` = seq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Increasing per node; SSE clients resume with `Last-Event-ID`.
    pub seq: u64,
    pub at_ms: u64,
    pub kind: EventKind,
    /// What the event is about: a member name, an artifact, a plugin.
    pub subject: String,
    /// Human-readable description, including the reason where there is one.
    pub message: String,
}
