//! The `deploy-hook` world: the farm deployer asks `before-deploy` before an artifact is
//! activated anywhere, and notifies after deploy and undeploy.
wit_bindgen::generate!({
    world: "deploy-hook",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "__export_deploy_world",
    default_bindings_module: "shoal_plugin_sdk::deploy",
    runtime_path: "shoal_plugin_sdk::wit_bindgen::rt",
});

pub use self::shoal::plugin::host as raw_host;
pub use self::shoal::plugin::types::{LogLevel, MemberInfo};
/// The trait a deploy hook implements.
pub use self::Guest as DeployHook;

impl Artifact {
    /// A metadata value by key.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Exports a type implementing [`DeployHook`].
#[macro_export]
macro_rules! export_deploy_hook {
    ($t:ident) => {
        $crate::deploy::__export_deploy_world!($t with_types_in $crate::deploy);
    };
}
