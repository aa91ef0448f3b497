//! Members, health, readiness and cluster events.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// `ok` when every check passed, `degraded` otherwise (still live: no restart needed).
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
    pub checks: Vec<Check>,
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
