//! Deployments, until the farm deployer lands: the deploy-hook plugins are asked first (a
//! veto stops the deployment), then a Wasm component is loaded (or replaced) as a plugin of
//! the artifact's name on every node. Anything else is refused with an explanation.
use super::plugins::map_error;
use super::NodeBackend;
use crate::plugins::ControlOp;
use sha2::{Digest, Sha256};
use shoal_admin::dto::*;
use shoal_admin::BackendError;
use shoal_plugin_host::{Artifact, DeployDecision, Limits, PluginWorld as HostWorld};

fn check_name(name: &str) -> Result<(), BackendError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(BackendError::Invalid(format!(
            "artifact name `{name}` is not usable: use 1..=64 letters, digits, `.`, `_` or `-` (it becomes the plugin's name)"
        )))
    }
}

/// `\0asm` followed by the component-model layer (a core module has version 1, layer 0).
fn is_component(bytes: &[u8]) -> bool {
    matches!(bytes, [0, b'a', b's', b'm', _, _, 1, 0, ..])
}

impl NodeBackend {
    fn hooks_after(&self, f: impl Fn(&str) -> Result<(), shoal_plugin_host::PluginError>) {
        for hook in self.node.plugins.registry.enabled(HostWorld::DeployHook) {
            if let Err(e) = f(&hook) {
                tracing::warn!(hook = %hook, "deploy hook failed after the operation: {e}");
            }
        }
    }

    pub(super) async fn deploy_artifact(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<Deployment, BackendError> {
        check_name(name)?;
        if bytes.is_empty() {
            return Err(BackendError::Invalid(
                "the artifact is empty: send the file as the request body".into(),
            ));
        }
        let artifact = Artifact {
            name: name.to_owned(),
            digest: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
            metadata: vec![(
                "kind".into(),
                if is_component(&bytes) {
                    "wasm-component"
                } else {
                    "other"
                }
                .into(),
            )],
        };
        if let DeployDecision::Veto(reason) =
            self.node.plugins.registry.deploy_hooks_before(&artifact)
        {
            self.emit(
                EventKind::Deploy,
                name,
                format!("deployment of {name} vetoed: {reason}"),
            );
            return Err(BackendError::Conflict(format!(
                "deployment of {name} vetoed by a deploy hook: {reason}"
            )));
        }
        if !is_component(&bytes) {
            return Err(BackendError::Invalid(format!(
                "{name} is not a WebAssembly component: only Wasm components can be deployed until the farm deployer lands (build plugins for wasm32-wasip2 or wrap a module with `wasm-tools component new`)"
            )));
        }
        let exists = self.node.plugins.registry.info(name).is_ok();
        let op = if exists {
            ControlOp::Reload {
                name: name.to_owned(),
                bytes: Some(bytes.clone()),
            }
        } else {
            ControlOp::Load {
                name: name.to_owned(),
                bytes: bytes.clone(),
                config: Vec::new(),
                limits: Limits::default(),
                policy: Default::default(),
                world: None,
                contexts: Vec::new(),
            }
        };
        {
            let mut s = self.lock();
            let meta = s.plugin_meta.entry(name.to_owned()).or_default();
            meta.size_bytes = bytes.len() as u64;
            meta.loaded_ms = now_ms();
        }
        let (_, results) = self
            .node
            .plugins
            .apply_everywhere(&self.node.channel, op)
            .await
            .map_err(map_error)?;
        self.hooks_after(|hook| {
            self.node
                .plugins
                .registry
                .deploy_hook_after(hook, &artifact)
        });
        let mut nodes: Vec<NodeDeployState> = results
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
            .collect();
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
            digest: artifact.digest.clone(),
            size_bytes: artifact.size,
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
        let op = ControlOp::Unload {
            name: name.to_owned(),
        };
        let (_, results) = self
            .node
            .plugins
            .apply_everywhere(&self.node.channel, op)
            .await
            .map_err(map_error)?;
        self.hooks_after(|hook| {
            self.node
                .plugins
                .registry
                .deploy_hook_after_undeploy(hook, name)
        });
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
