//! {{name}}: a shoal deploy hook (world `deploy-hook`). It vetoes artifacts larger than
//! `max-size` bytes (configuration; absent = no limit).
use shoal_plugin_sdk::deploy::{Artifact, Decision, DeployHook};
use shoal_plugin_sdk::host;

struct Plugin;

impl DeployHook for Plugin {
    fn before_deploy(artifact: Artifact) -> Decision {
        let limit = host::config_get("max-size").and_then(|m| m.trim().parse::<u64>().ok());
        match limit {
            Some(max) if artifact.size > max => Decision::Veto(format!(
                "{} is {} bytes, over the limit of {max}",
                artifact.name, artifact.size
            )),
            _ => Decision::Allow,
        }
    }

    fn after_deploy(artifact: Artifact) {
        host::log_info(&format!("deployed {} ({} bytes)", artifact.name, artifact.size));
    }

    fn after_undeploy(name: String) {
        host::log_info(&format!("undeployed {name}"));
    }
}

shoal_plugin_sdk::export_deploy_hook!(Plugin);
