//! The crate's error type: mistakes of the caller or the operator (bad bytes, unknown
//! names, wrong world). A plugin failing at run time is not an error of the call: the
//! plugin's failure policy answers instead (see [`crate::FailurePolicy`]).
use crate::types::PluginWorld;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {name}: not WebAssembly (the file does not start with \\0asm); give a component built for the shoal:plugin WIT (plugins/README.md)")]
    NotWasm { name: String },
    #[error("plugin {name}: a core wasm module, not a component; build it with `shoal plugin build` (or turn it into one with `wasm-tools component new`; see plugins/README.md)")]
    CoreModule { name: String },
    #[error("plugin {name}: invalid component: {reason}")]
    Compile { name: String, reason: String },
    #[error("plugin {name}: exports none of the shoal worlds (channel-interceptor, valve, url-filter, deploy-hook of shoal:plugin {supported}); its exports are [{exports}]")]
    UnknownWorld {
        name: String,
        exports: String,
        supported: String,
    },
    #[error("plugin {name}: built against shoal:plugin@{found}, which this node does not link; supported versions: {supported} (rebuild it against one of them, see plugins/README.md)")]
    UnsupportedVersion {
        name: String,
        found: String,
        supported: String,
    },
    #[error("plugin {name}: imports several versions of shoal:plugin ({found}); build it against one version")]
    MixedVersions { name: String, found: String },
    #[error("plugin {name}: implements the {found} world, but {expected} was asked for")]
    WrongWorld {
        name: String,
        expected: PluginWorld,
        found: PluginWorld,
    },
    #[error("plugin {name}: does not fit the {world} world or needs imports the node does not grant: {reason}")]
    Link {
        name: String,
        world: PluginWorld,
        reason: String,
    },
    #[error("plugin {name}: the first instance failed: {reason}")]
    Instantiate { name: String, reason: String },
    #[error("plugin {name}: is not loaded (loaded: {loaded})")]
    NotLoaded { name: String, loaded: String },
    #[error("plugin {name}: already loaded; use reload to replace it")]
    AlreadyLoaded { name: String },
    #[error("plugin {name}: bad limits: {reason}")]
    Limits { name: String, reason: String },
    #[error("application {name}: not a wasi:http application (it does not export wasi:http/incoming-handler@0.2.x)")]
    NotHttpApp { name: String },
    #[error("plugin engine: {0}")]
    Engine(String),
}
