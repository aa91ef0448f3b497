//! Deployments ([`crate::deploy`]) as the admin API shows them: the name and body checked by
//! `shoal_admin::rules`, per-node results as [`Deployment`]s, and the `deploy` / `undeploy`
//! events. Translation only.
use super::plugins::map_error;
use super::NodeBackend;
use crate::deploy::{self, NodeResults, Refused};
use shoal_admin::dto::*;
use shoal_admin::{rules, BackendError};

fn node_states(results: &NodeResults) -> Vec<NodeDeployState> {
    results
        .iter()
        .map(|(node, r)| NodeDeployState {
            node: node.clone(),
            state: if r.is_ok() {
                DeployState::Deployed
            } else {
                DeployState::Failed
            },
            detail: r.as_ref().err().cloned(),
        })
        .collect()
}

impl NodeBackend {
    pub(super) async fn deploy_artifact(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<Deployment, BackendError> {
        rules::check_artifact(name, &bytes)?;
        let size = bytes.len() as u64;
        let prepared = deploy::prepare(&self.node.plugins, name, bytes).map_err(|refused| {
            let message = refused.to_string();
            match refused {
                Refused::Vetoed { reason, .. } => {
                    self.emit(
                        EventKind::Deploy,
                        name,
                        format!("deployment of {name} vetoed: {reason}"),
                    );
                    BackendError::Conflict(message)
                }
                Refused::NotComponent { .. } => BackendError::Invalid(message),
            }
        })?;
        {
            let mut s = self.lock();
            let meta = s.plugin_meta.entry(name.to_owned()).or_default();
            meta.size_bytes = size;
            meta.loaded_ms = now_ms();
        }
        let results = prepared
            .apply(&self.node.plugins, &self.node.channel)
            .await
            .map_err(map_error)?;
        let mut nodes = node_states(&results);
        for m in self.node.channel.members() {
            if !nodes.iter().any(|n| n.node == m.name) {
                nodes.push(NodeDeployState {
                    node: m.name,
                    state: DeployState::Pending,
                    detail: Some("joined after the deployment was sent".into()),
                });
            }
        }
        let d = Deployment {
            name: name.to_owned(),
            digest: prepared.artifact.digest.clone(),
            size_bytes: prepared.artifact.size,
            deployed_ms: now_ms(),
            nodes,
        };
        {
            let mut s = self.lock();
            s.plugin_meta.entry(name.to_owned()).or_default().last = results;
            s.deployments.retain(|x| x.name != name);
            s.deployments.push(d.clone());
        }
        let failed = d
            .nodes
            .iter()
            .filter(|n| n.state != DeployState::Deployed)
            .count();
        self.emit(
            EventKind::Deploy,
            name,
            format!(
                "{name} ({} bytes) deployed on {} node(s), {failed} not confirmed",
                d.size_bytes,
                d.nodes.len() - failed
            ),
        );
        Ok(d)
    }

    pub(super) async fn undeploy_artifact(&self, name: &str) -> Result<(), BackendError> {
        if !self.lock().deployments.iter().any(|d| d.name == name) {
            return Err(BackendError::not_found("deployment", name));
        }
        let results = deploy::undeploy(&self.node.plugins, &self.node.channel, name)
            .await
            .map_err(map_error)?;
        {
            let mut s = self.lock();
            s.deployments.retain(|d| d.name != name);
            s.plugin_meta.remove(name);
        }
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect();
        let message = if failed.is_empty() {
            format!("{name} undeployed from {} node(s)", results.len())
        } else {
            format!(
                "{name} undeployed here; not confirmed by {}",
                failed.join("; ")
            )
        };
        self.emit(EventKind::Undeploy, name, message);
        Ok(())
    }

    pub(super) fn deployment_list(&self) -> Vec<Deployment> {
        self.lock().deployments.clone()
    }
}
