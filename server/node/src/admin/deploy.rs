//! Deployments ([`crate::farm`]) as the admin API shows them: the request translated to a
//! [`DeployRequest`](crate::farm::DeployRequest), the farm's view as [`Deployment`]s with
//! every node's state, its errors as [`BackendError`]s, and the `deploy` / `undeploy`
//! events. Translation only.
use super::NodeBackend;
use crate::farm::{self, DeployError, FarmView, Notice, UploadError};
use shoal_admin::dto::*;
use shoal_admin::{rules, ArtifactBody, BackendError};
use shoal_farm::{
    Change, Entry, FarmError, Holder, Kind, NodeId, NodeState, Outcome, Phase, RolloutStatus,
    Target,
};
use std::sync::{Arc, Weak};

fn kind_dto(k: Kind) -> ArtifactKind {
    match k {
        Kind::Plugin => ArtifactKind::Plugin,
        Kind::Application => ArtifactKind::Application,
        Kind::File => ArtifactKind::File,
    }
}

fn kind_of(k: ArtifactKind) -> Kind {
    match k {
        ArtifactKind::Plugin => Kind::Plugin,
        ArtifactKind::Application => Kind::Application,
        ArtifactKind::File => Kind::File,
    }
}

/// A 409 with its typed reason and, if known, the rollout holding the name.
fn conflict(reason: ConflictReason, holder: Option<Holder>, detail: String) -> BackendError {
    BackendError::DeployConflict(DeployConflict {
        reason,
        competing: holder.map(|h| CompetingDeploy {
            deploy: h.deploy.to_string(),
            node: h.deploy.origin.to_string(),
            version: h.version,
        }),
        detail,
    })
}

fn map_error(e: DeployError) -> BackendError {
    let msg = e.to_string();
    match e {
        DeployError::Upload(UploadError::TooLarge { .. }) => BackendError::TooLarge(msg),
        DeployError::Upload(UploadError::Truncated { .. }) => BackendError::Invalid(msg),
        DeployError::Upload(UploadError::Storage(_)) => BackendError::Internal(msg),
        DeployError::Farm(f) => match f {
            FarmError::Conflict { holder, .. } => {
                conflict(ConflictReason::DeployInProgress, Some(holder), msg)
            }
            FarmError::NoPrevious { .. } => conflict(ConflictReason::NoPreviousVersion, None, msg),
            FarmError::NotDeployed { name } => BackendError::not_found("deployment", name),
            FarmError::Refused(_) | FarmError::Invalid(_) => BackendError::Invalid(msg),
            FarmError::NotReady | FarmError::NoQuorum { .. } => BackendError::Unavailable(msg),
            FarmError::Wire(_) => BackendError::Internal(msg),
        },
        // Another rollout of the name held a member: the 409 of two deploys at once.
        DeployError::Aborted {
            conflict: Some(holder),
            ..
        } => conflict(ConflictReason::DeployInProgress, Some(holder), msg),
        DeployError::Aborted { .. } => BackendError::Invalid(msg),
        DeployError::Busy(_, holder) => conflict(ConflictReason::DeployInProgress, holder, msg),
        DeployError::Unavailable(_) => BackendError::Unavailable(msg),
    }
}

/// One node's state from the catalog it announced (or this node's own).
fn from_entry(node: &str, ours: &Entry, theirs: Option<&Entry>) -> NodeDeployState {
    let mut s = NodeDeployState {
        node: node.to_string(),
        state: DeployState::Pending,
        version: None,
        digest: None,
        generation: None,
        detail: None,
        activated_ms: None,
    };
    let Some(e) = theirs else {
        s.detail = Some("has not announced this deployment yet; it converges".into());
        return s;
    };
    s.generation = Some(e.generation);
    if let Some(sm) = e.manifest() {
        s.version = Some(sm.manifest.version.clone());
        s.digest = Some(sm.manifest.sha256.to_string());
    }
    if e.generation == ours.generation && e.deploy == ours.deploy {
        s.state = DeployState::Active;
    } else if e.order(ours).is_lt() {
        s.detail = Some(format!("runs {}; it converges", e.describe()));
    } else {
        s.state = DeployState::Active;
        s.detail = Some(format!("ahead of this node: {}", e.describe()));
    }
    if matches!(e.target, Target::Removed) && s.state == DeployState::Active {
        s.state = DeployState::Pending;
        s.detail = Some(format!("{} here", e.describe()));
    }
    s
}

/// The deployment `name` as this node sees it; `None` if it is not deployed.
fn deployment(view: &FarmView, name: &str) -> Option<Deployment> {
    let slot = view.slot(name)?;
    let cur = &slot.current;
    let sm = cur.manifest()?;
    let m = &sm.manifest;
    let rollout = view
        .rollouts
        .get(name)
        .filter(|r| r.phase != Phase::Done || r.deploy == cur.deploy);
    let mut nodes = Vec::new();
    let mut names: Vec<String> = vec![view.me.clone()];
    names.extend(view.peers.keys().map(|n| n.0.clone()));
    if let Some(r) = rollout {
        for n in r.nodes.keys() {
            if !names.contains(&n.0) {
                names.push(n.0.clone());
            }
        }
    }
    for node in names {
        let from_rollout = rollout.and_then(|r| r.nodes.get(&NodeId::new(node.clone())));
        let mut s = match from_rollout {
            Some(p) => {
                let (state, detail) = match &p.state {
                    NodeState::Staging => (
                        DeployState::Staging,
                        Some(format!("{} of {} bytes", p.bytes_staged, p.size)),
                    ),
                    NodeState::Staged => (DeployState::Staged, None),
                    NodeState::Failed(r) => (DeployState::Failed, Some(r.clone())),
                    NodeState::Excluded => (
                        DeployState::Pending,
                        Some("left during the rollout; converges when it returns".into()),
                    ),
                    NodeState::Activated => (DeployState::Active, None),
                };
                NodeDeployState {
                    node: node.clone(),
                    state,
                    version: Some(m.version.clone()),
                    digest: Some(m.sha256.to_string()),
                    generation: Some(cur.generation),
                    detail,
                    activated_ms: p.activated_ms,
                }
            }
            None if node == view.me => from_entry(&node, cur, Some(cur)),
            None => {
                let theirs = view
                    .peers
                    .get(&NodeId::new(node.clone()))
                    .and_then(|es| es.iter().find(|e| e.name == name));
                from_entry(&node, cur, theirs)
            }
        };
        if node == view.me {
            if let Some(reason) = view.failures.get(name) {
                s.state = DeployState::Failed;
                s.detail = Some(reason.clone());
            }
        }
        nodes.push(s);
    }
    Some(Deployment {
        name: name.to_string(),
        kind: kind_dto(m.kind),
        version: m.version.clone(),
        digest: m.sha256.to_string(),
        size_bytes: m.size,
        generation: cur.generation,
        signed: sm.signature.is_some(),
        metadata: m.metadata.clone(),
        previous_version: slot
            .previous
            .as_ref()
            .and_then(|p| p.manifest())
            .map(|p| p.manifest.version.clone()),
        deployed_ms: view.applied_ms.get(name).copied().unwrap_or(0),
        activation_skew_ms: rollout
            .filter(|r| r.deploy == cur.deploy)
            .and_then(|r| r.activation_skew_ms()),
        nodes,
    })
}

/// A rollout coordinated here, as the API shows it.
fn rollout(view: &FarmView, r: &RolloutStatus) -> Rollout {
    let sm = match &r.change {
        Change::Deploy(sm) => Some(&sm.manifest),
        Change::Undeploy => None,
    };
    let aborted = matches!(r.outcome, Some(Outcome::Aborted { .. }));
    let nodes = r
        .nodes
        .iter()
        .map(|(n, p)| {
            let (state, detail) = match &p.state {
                NodeState::Staging | NodeState::Staged if aborted => (
                    RolloutNodeState::Cancelled,
                    Some(
                        "the rollout was aborted (see the failed nodes); nothing changed here"
                            .into(),
                    ),
                ),
                NodeState::Staging => (RolloutNodeState::Receiving, None),
                NodeState::Staged => (RolloutNodeState::Staged, None),
                NodeState::Activated => (RolloutNodeState::Active, None),
                NodeState::Failed(reason) => (RolloutNodeState::Failed, Some(reason.clone())),
                NodeState::Excluded => (
                    RolloutNodeState::Excluded,
                    Some("left during the rollout; converges when it returns".into()),
                ),
            };
            RolloutNode {
                node: n.0.clone(),
                state,
                bytes_received: p.bytes_staged,
                detail,
            }
        })
        .collect();
    let (outcome, error) = match &r.outcome {
        None => (None, None),
        Some(Outcome::Activated { .. }) => (Some(RolloutOutcome::Activated), None),
        Some(aborted @ Outcome::Aborted { .. }) => {
            (Some(RolloutOutcome::Aborted), Some(aborted.summary()))
        }
    };
    Rollout {
        name: r.name.clone(),
        id: r.deploy.to_string(),
        undeploy: sm.is_none(),
        kind: sm.map(|m| kind_dto(m.kind)),
        version: sm.map(|m| m.version.clone()),
        digest: sm.map(|m| m.sha256.to_string()),
        size_bytes: sm.map_or(0, |m| m.size),
        phase: match r.phase {
            Phase::LocalCheck => RolloutPhase::Checking,
            Phase::Staging => RolloutPhase::Staging,
            Phase::Committing => RolloutPhase::Committing,
            Phase::Done => RolloutPhase::Done,
        },
        outcome,
        error,
        started_ms: view.rollout_started_ms.get(&r.name).copied().unwrap_or(0),
        nodes,
    }
}

impl NodeBackend {
    /// Rollouts coordinated here, most recent first.
    pub(super) fn rollout_list(&self) -> Vec<Rollout> {
        let view = self.node.farm.view();
        let mut out: Vec<Rollout> = view.rollouts.values().map(|r| rollout(&view, r)).collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
        out
    }

    pub(super) async fn deploy_artifact(
        &self,
        request: DeployRequest,
        body: ArtifactBody,
    ) -> Result<Deployment, BackendError> {
        rules::check_artifact_name(&request.name)?;
        let name = request.name.clone();
        let signature = match &request.signature {
            None => None,
            Some(hex_sig) => Some(hex::decode(hex_sig.trim()).map_err(|e| {
                BackendError::Invalid(format!(
                    "signature: not hex ({e}); give the 128 hex digits of the ed25519 signature"
                ))
            })?),
        };
        let req = farm::DeployRequest {
            name: name.clone(),
            version: request.version,
            kind: kind_of(request.kind),
            metadata: request.metadata,
            signature,
        };
        let farm = self.node.farm.clone();
        let r = farm.deploy(req, body).await;
        self.finish(EventKind::Deploy, &name, "deployed", r)?;
        self.deployment_of(&name)
    }

    pub(super) async fn undeploy_artifact(&self, name: &str) -> Result<(), BackendError> {
        if self.deployment_of(name).is_err() {
            return Err(BackendError::not_found("deployment", name));
        }
        let r = self.node.farm.undeploy(name).await;
        self.finish(EventKind::Undeploy, name, "undeployed", r)
    }

    pub(super) async fn rollback_artifact(&self, name: &str) -> Result<Deployment, BackendError> {
        self.deployment_of(name)?;
        let r = self.node.farm.rollback(name).await;
        self.finish(EventKind::Deploy, name, "rolled back", r)?;
        self.deployment_of(name)
    }

    /// The event of a rollout coordinated here, and its error for the API.
    fn finish(
        &self,
        kind: EventKind,
        name: &str,
        done: &str,
        r: Result<(), DeployError>,
    ) -> Result<(), BackendError> {
        match r {
            Ok(()) => {
                let d = self.deployment_of(name).ok();
                let what = d
                    .as_ref()
                    .map(|d| format!("{name}@{} ({} bytes)", d.version, d.size_bytes))
                    .unwrap_or_else(|| name.to_string());
                let skew = d
                    .and_then(|d| d.activation_skew_ms)
                    .map(|ms| format!(", activation skew {ms} ms"))
                    .unwrap_or_default();
                self.emit(kind, name, format!("{what} {done} on every node{skew}"));
                Ok(())
            }
            Err(e) => {
                let e = map_error(e);
                self.emit(kind, name, format!("{name} not {done}: {e}"));
                Err(e)
            }
        }
    }

    pub(super) fn deployment_of(&self, name: &str) -> Result<Deployment, BackendError> {
        deployment(&self.node.farm.view(), name)
            .ok_or_else(|| BackendError::not_found("deployment", name))
    }

    pub(super) fn deployment_list(&self) -> Vec<Deployment> {
        let view = self.node.farm.view();
        view.catalog
            .iter()
            .filter_map(|s| deployment(&view, &s.current.name))
            .collect()
    }
}

/// Farm notices of this node (slots made live here, entries refused) as admin events.
pub(super) async fn follow(backend: Weak<NodeBackend>, farm: Arc<farm::Farm>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = farm.notices();
    loop {
        let notice = match rx.recv().await {
            Ok(n) => n,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let Some(b) = backend.upgrade() else { return };
        match notice {
            Notice::Applied { name, what, result } => {
                let message = match result {
                    Ok(()) => format!("{what} live on {}", b.local_name()),
                    Err(e) => format!("{what} failed on {}: {e}", b.local_name()),
                };
                b.emit(EventKind::Deploy, &name, message);
            }
            Notice::Refused { from, reason } => {
                b.emit(
                    EventKind::Deploy,
                    &from,
                    format!("an entry from {from} was refused here: {reason}"),
                );
            }
        }
    }
}
