//! Deployments, until the farm deployer lands (a stand-in it will replace): the deploy-hook
//! plugins are asked first (a veto stops the deployment), then a Wasm component is loaded
//! (or replaced) as a plugin of the artifact's name on every node. Anything else is refused.
//!
//! Data flow: the admin backend (`admin/deploy.rs`) checks the name and body with
//! `shoal_admin::rules`, then [`prepare`] (artifact facts, deploy hooks, component check) →
//! [`Prepared::apply`] (a plugin operation over the channel, [`Plugins::apply_everywhere`],
//! then the hooks' `after`) → per-node results the backend turns into DTOs and events.
use crate::plugins::{ControlOp, Plugins};
use sha2::{Digest, Sha256};
use shoal_net::Channel;
use shoal_plugin_host::{Artifact, DeployDecision, Limits, PluginError, PluginWorld};

/// What each node answered: its name, and why it failed if it did.
pub type NodeResults = Vec<(String, Result<(), String>)>;

/// Why an artifact is not deployed before anything changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A deploy hook said no.
    #[error("deployment of {name} vetoed by a deploy hook: {reason}")]
    Vetoed { name: String, reason: String },
    /// Only Wasm components can be deployed for now.
    #[error("{name} is not a WebAssembly component: only Wasm components can be deployed until the farm deployer lands (build plugins for wasm32-wasip2 or wrap a module with `wasm-tools component new`)")]
    NotComponent { name: String },
}

/// An artifact the hooks accepted, ready to be applied on every node.
pub struct Prepared {
    /// What the hooks saw (name, digest, size, kind).
    pub artifact: Artifact,
    bytes: Vec<u8>,
}

/// `\0asm` followed by the component-model layer (a core module has version 1, layer 0).
fn is_component(bytes: &[u8]) -> bool {
    matches!(bytes, [0, b'a', b's', b'm', _, _, 1, 0, ..])
}

/// Describes `bytes` as artifact `name`, asks the deploy hooks, and checks that it is a
/// component.
pub fn prepare(plugins: &Plugins, name: &str, bytes: Vec<u8>) -> Result<Prepared, Refused> {
    let kind = if is_component(&bytes) {
        "wasm-component"
    } else {
        "other"
    };
    let artifact = Artifact {
        name: name.to_owned(),
        digest: hex::encode(Sha256::digest(&bytes)),
        size: bytes.len() as u64,
        metadata: vec![("kind".into(), kind.into())],
    };
    if let DeployDecision::Veto(reason) = plugins.registry.deploy_hooks_before(&artifact) {
        return Err(Refused::Vetoed {
            name: name.to_owned(),
            reason,
        });
    }
    if !is_component(&bytes) {
        return Err(Refused::NotComponent {
            name: name.to_owned(),
        });
    }
    Ok(Prepared { artifact, bytes })
}

impl Prepared {
    /// Loads the component as plugin `artifact.name` on every node (reloads it if loaded),
    /// then tells the deploy hooks.
    pub async fn apply(
        &self,
        plugins: &Plugins,
        channel: &Channel,
    ) -> Result<NodeResults, PluginError> {
        let name = self.artifact.name.clone();
        let op = if plugins.registry.info(&name).is_ok() {
            ControlOp::Reload {
                name,
                bytes: Some(self.bytes.clone()),
            }
        } else {
            ControlOp::Load {
                name,
                bytes: self.bytes.clone(),
                config: Vec::new(),
                limits: Limits::default(),
                policy: Default::default(),
                world: None,
                contexts: Vec::new(),
            }
        };
        let (_, results) = plugins.apply_everywhere(channel, op).await?;
        hooks_after(plugins, |hook| {
            plugins.registry.deploy_hook_after(hook, &self.artifact)
        });
        Ok(results)
    }
}

/// Unloads the plugin of deployment `name` on every node, then tells the deploy hooks.
pub async fn undeploy(
    plugins: &Plugins,
    channel: &Channel,
    name: &str,
) -> Result<NodeResults, PluginError> {
    let op = ControlOp::Unload {
        name: name.to_owned(),
    };
    let (_, results) = plugins.apply_everywhere(channel, op).await?;
    hooks_after(plugins, |hook| {
        plugins.registry.deploy_hook_after_undeploy(hook, name)
    });
    Ok(results)
}

fn hooks_after(plugins: &Plugins, f: impl Fn(&str) -> Result<(), PluginError>) {
    for hook in plugins.registry.enabled(PluginWorld::DeployHook) {
        if let Err(e) = f(&hook) {
            tracing::warn!(hook = %hook, "deploy hook failed after the operation: {e}");
        }
    }
}
