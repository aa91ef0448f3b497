//! Plugins of a node: loading them from the config at start, and applying operator
//! operations (load, configure, enable, disable, reload, unload, reorder) on *every* node.
//!
//! An operation asked of one node is applied there first (so a mistake is reported before
//! anything else changes), then sent to every other member as a [`ControlOp`] with
//! SYNCHRONIZED_ACK: the answer lists, per node, whether it applied it.
//!
//! Channel-interceptor plugins also change the live interceptor stack once the channel runs
//! ([`Plugins::attach_channel`]): load inserts `wasm:<name>` at the bottom (closest to the
//! network), unload removes it, and reorder moves the `wasm:` layers among the positions
//! they hold. The channel's driver applies each change between two messages (no message is
//! lost or run twice through a layer; see shoal-net's `driver_stack.rs`). Each node changes
//! its own stack when it applies the operation, so for a short while nodes differ: an
//! interceptor that rewrites payloads for its peer must tolerate that (see the
//! checksum-interceptor's `accept-unsealed` and plugins/README.md).
use serde::{Deserialize, Serialize};
use shoal_cluster::SendOptions;
use shoal_net::Channel;
use shoal_plugin_host::{
    FailurePolicy, Limits, PluginError, PluginInfo, PluginRegistry, PluginSpec, PluginWorld,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// `[[plugin]]` of the node's file (plain data, in shoal-config so the config is read
/// without this crate).
pub use shoal_config::{PluginEntry, PolicyName};

/// The plugin host's spec of a `[[plugin]]` entry: its config sorted, its limits, its policy.
pub fn spec(entry: &PluginEntry) -> PluginSpec {
    let mut config: Vec<(String, String)> = entry
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    config.sort();
    PluginSpec {
        config,
        limits: Limits {
            memory_bytes: entry.memory_mib as usize * 1024 * 1024,
            call_timeout: Duration::from_millis(entry.call_timeout_ms),
            max_instances: entry.max_instances,
            ..Limits::default()
        },
        policy: match entry.policy {
            PolicyName::FailOpen => FailurePolicy::FailOpen,
            PolicyName::FailClosed => FailurePolicy::FailClosed,
            PolicyName::Reload => FailurePolicy::Reload {
                backoff: Duration::from_millis(100),
                max_restarts: 5,
            },
        },
        world: None,
    }
}

/// Resolves an entry's `path` against the config file's directory; `example:NAME` names an
/// example built by the project (e.g. `example:bench-app`).
pub fn resolve_path(
    entry: &PluginEntry,
    base: Option<&std::path::Path>,
) -> Result<PathBuf, String> {
    if let Some(example) = entry.path.strip_prefix("example:") {
        return shoal_plugin_host::examples::component_path(example);
    }
    let p = PathBuf::from(&entry.path);
    Ok(match base {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    })
}

/// Which contexts each plugin applies to (empty or absent = every context).
#[derive(Default)]
pub struct Placement(RwLock<HashMap<String, Vec<String>>>);

impl Placement {
    pub fn set(&self, plugin: &str, contexts: Vec<String>) {
        if let Ok(mut m) = self.0.write() {
            m.insert(plugin.to_string(), contexts);
        }
    }
    pub fn remove(&self, plugin: &str) {
        if let Ok(mut m) = self.0.write() {
            m.remove(plugin);
        }
    }
    pub fn applies(&self, plugin: &str, context: &str) -> bool {
        match self.0.read() {
            Ok(m) => m
                .get(plugin)
                .is_none_or(|c| c.is_empty() || c.iter().any(|x| x == context)),
            Err(_) => true,
        }
    }
}

/// Where a valve or URL filter goes among the node's plugins: the registry's order is the
/// order they run in, between a context's ReplicationValve and its application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place<'a> {
    /// Just before this plugin; before `app` (the context's application) = last.
    Before(&'a str),
    /// Just after this plugin; after `ReplicationValve` = first.
    After(&'a str),
}

/// Why a [`Place`] names nowhere a plugin can go.
#[derive(Debug, PartialEq, Eq)]
pub enum PlaceError {
    /// A native stage other than the two ends plugins run between.
    NativeStage,
    /// No plugin of that name on this node.
    Unknown,
}

/// The native stages of a context's pipeline, which keep their place.
const NATIVE_STAGES: [&str; 5] = [
    "SessionValve",
    "JvmRouteBinderValve",
    "UrlFilter",
    "ReplicationValve",
    "app",
];

/// An operator operation, applied on every node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlOp {
    Load {
        name: String,
        bytes: Vec<u8>,
        config: Vec<(String, String)>,
        limits: Limits,
        policy: FailurePolicy,
        world: Option<PluginWorld>,
        contexts: Vec<String>,
    },
    Configure {
        name: String,
        config: Vec<(String, String)>,
    },
    SetEnabled {
        name: String,
        enabled: bool,
    },
    /// New bytes, or `None` to restart the current version with fresh instances.
    Reload {
        name: String,
        bytes: Option<Vec<u8>>,
    },
    Unload {
        name: String,
    },
    Reorder {
        order: Vec<String>,
    },
    /// What a replace changes besides the component (API `replace=true` with a policy,
    /// limits or `attach`): `None` keeps the current value.
    Update {
        name: String,
        policy: Option<FailurePolicy>,
        limits: Option<Limits>,
        contexts: Option<Vec<String>>,
    },
}

const MAGIC: &[u8; 4] = b"SHC\x01";

impl ControlOp {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        match bincode::serde::encode_to_vec(self, bincode::config::standard()) {
            Ok(b) => out.extend(b),
            Err(e) => tracing::error!("cannot encode control operation: {e}"),
        }
        out
    }
    pub fn is_control(payload: &[u8]) -> bool {
        payload.len() >= 4 && &payload[..4] == MAGIC
    }
    pub fn decode(payload: &[u8]) -> Result<ControlOp, String> {
        if !Self::is_control(payload) {
            return Err("not a control message".into());
        }
        bincode::serde::decode_from_slice(&payload[4..], bincode::config::standard())
            .map(|(op, _)| op)
            .map_err(|e| {
                format!("malformed control message (run the same shoal version on all nodes): {e}")
            })
    }

    pub fn plugin_name(&self) -> Option<&str> {
        match self {
            ControlOp::Load { name, .. }
            | ControlOp::Configure { name, .. }
            | ControlOp::SetEnabled { name, .. }
            | ControlOp::Reload { name, .. }
            | ControlOp::Unload { name }
            | ControlOp::Update { name, .. } => Some(name),
            ControlOp::Reorder { .. } => None,
        }
    }
}

/// The node's plugins: the registry plus placement.
pub struct Plugins {
    pub registry: Arc<PluginRegistry>,
    pub placement: Arc<Placement>,
    /// The bytes of each loaded plugin (reload without new bytes, and for new members).
    bytes: RwLock<HashMap<String, Arc<Vec<u8>>>>,
    /// The running channel, whose stack interceptor plugins join and leave; unset while the
    /// node starts (interceptors of the config are then put in the stack it is built with).
    channel: OnceLock<Channel>,
}

impl Plugins {
    pub fn new(registry: Arc<PluginRegistry>) -> Arc<Plugins> {
        Arc::new(Plugins {
            registry,
            placement: Arc::new(Placement::default()),
            bytes: RwLock::default(),
            channel: OnceLock::new(),
        })
    }

    /// From now on, loading, unloading and reordering interceptor plugins changes the live
    /// stack of `channel`. Called once the channel runs (a second call is ignored).
    pub fn attach_channel(&self, channel: Channel) {
        let _ = self.channel.set(channel);
    }

    /// The stack's name of an interceptor plugin's layer.
    pub fn layer_name(plugin: &str) -> String {
        format!("wasm:{plugin}")
    }

    fn is_interceptor(&self, name: &str) -> bool {
        self.registry
            .info(name)
            .is_ok_and(|i| i.world == PluginWorld::ChannelInterceptor)
    }

    /// Enqueues a stack change now (changes keep the order of the operations) and logs it
    /// if the driver refuses it.
    fn change_stack<F>(&self, what: String, change: impl FnOnce(&Channel) -> F)
    where
        F: std::future::Future<Output = Result<(), shoal_net::StackChangeError>> + Send + 'static,
    {
        let Some(channel) = self.channel.get() else {
            return;
        };
        let done = change(channel);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = done.await {
                    tracing::warn!("interceptor stack: cannot {what}: {e}");
                }
            });
        }
    }

    /// Applies `op` to this node only.
    pub fn apply_local(&self, op: &ControlOp) -> Result<Option<PluginInfo>, PluginError> {
        let r = &self.registry;
        match op {
            ControlOp::Load {
                name,
                bytes,
                config,
                limits,
                policy,
                world,
                contexts,
            } => {
                let spec = PluginSpec {
                    config: config.clone(),
                    limits: limits.clone(),
                    policy: policy.clone(),
                    world: *world,
                };
                let info = r.load(name, bytes, spec)?;
                self.placement.set(name, contexts.clone());
                if let Ok(mut b) = self.bytes.write() {
                    b.insert(name.clone(), Arc::new(bytes.clone()));
                }
                if info.world == PluginWorld::ChannelInterceptor && self.channel.get().is_some() {
                    let layer = r.interceptor(name)?;
                    self.change_stack(format!("insert wasm:{name}"), |c| {
                        c.insert_interceptor(None, Box::new(layer))
                    });
                }
                Ok(Some(info))
            }
            ControlOp::Configure { name, config } => r.configure(name, config.clone()).map(Some),
            ControlOp::SetEnabled {
                name,
                enabled: true,
            } => r.enable(name).map(Some),
            ControlOp::SetEnabled {
                name,
                enabled: false,
            } => r.disable(name).map(Some),
            ControlOp::Reload { name, bytes } => {
                let bytes = match bytes {
                    Some(b) => Arc::new(b.clone()),
                    None => self.bytes_of(name)?,
                };
                let info = r.reload(name, &bytes)?;
                if let Ok(mut b) = self.bytes.write() {
                    b.insert(name.clone(), bytes);
                }
                Ok(Some(info))
            }
            ControlOp::Unload { name } => {
                if self.is_interceptor(name) {
                    // Enqueued first: the layer leaves at the driver's next step; a message
                    // reaching it in between passes untouched, as for a disabled plugin.
                    let layer = Self::layer_name(name);
                    self.change_stack(format!("remove {layer}"), |c| c.remove_interceptor(&layer));
                }
                r.unload(name)?;
                self.placement.remove(name);
                if let Ok(mut b) = self.bytes.write() {
                    b.remove(name);
                }
                Ok(None)
            }
            ControlOp::Update {
                name,
                policy,
                limits,
                contexts,
            } => {
                let mut info = r.info(name)?;
                if let Some(limits) = limits {
                    info = r.set_limits(name, limits.clone())?;
                }
                if let Some(policy) = policy {
                    info = r.set_policy(name, policy.clone())?;
                }
                if let Some(contexts) = contexts {
                    self.placement.set(name, contexts.clone());
                }
                Ok(Some(info))
            }
            ControlOp::Reorder { order } => {
                let names: Vec<&str> = order.iter().map(String::as_str).collect();
                r.reorder(&names)?;
                let layers: Vec<String> = order
                    .iter()
                    .filter(|n| self.is_interceptor(n))
                    .map(|n| Self::layer_name(n))
                    .collect();
                if layers.len() > 1 {
                    self.change_stack(format!("reorder {layers:?}"), |c| {
                        let refs: Vec<&str> = layers.iter().map(String::as_str).collect();
                        c.reorder_interceptors(&refs)
                    });
                }
                Ok(None)
            }
        }
    }

    /// The names of the loaded plugins in registry order, without `name`.
    pub fn names_except(&self, name: &str) -> Vec<String> {
        self.registry
            .list()
            .into_iter()
            .map(|p| p.name)
            .filter(|n| n != name)
            .collect()
    }

    /// The registry's order with plugin `name` (loaded or not) moved to `place`: for a
    /// [`ControlOp::Reorder`]. The admin API's `before`/`after` and a farm artifact's
    /// metadata `before`/`after` both place a plugin with it.
    pub fn order_with(&self, name: &str, place: Place<'_>) -> Result<Vec<String>, PlaceError> {
        let mut order = self.names_except(name);
        let (stage, after) = match place {
            Place::Before(s) => (s, false),
            Place::After(s) => (s, true),
        };
        // A plugin's name first (a plugin may be called `app`), then the two ends.
        let index = match (order.iter().position(|n| n == stage), stage, after) {
            (Some(i), _, false) => i,
            (Some(i), _, true) => i + 1,
            (None, "app", false) => order.len(),
            (None, "ReplicationValve", true) => 0,
            (None, s, _) if NATIVE_STAGES.contains(&s) => return Err(PlaceError::NativeStage),
            (None, _, _) => return Err(PlaceError::Unknown),
        };
        order.insert(index, name.to_owned());
        Ok(order)
    }

    fn bytes_of(&self, name: &str) -> Result<Arc<Vec<u8>>, PluginError> {
        self.bytes
            .read()
            .ok()
            .and_then(|b| b.get(name).cloned())
            .ok_or_else(|| PluginError::NotLoaded {
                name: name.to_string(),
                loaded: String::new(),
            })
    }

    /// Applies `op` here, then on every other member; returns per node (name) the outcome.
    pub async fn apply_everywhere(
        &self,
        channel: &Channel,
        op: ControlOp,
    ) -> Result<(Option<PluginInfo>, Vec<(String, Result<(), String>)>), PluginError> {
        let info = self.apply_local(&op)?;
        let mut results = vec![(channel.local().name.clone(), Ok(()))];
        let members = channel.members();
        let dests: Vec<_> = members.iter().map(|m| m.id).collect();
        if !dests.is_empty() {
            let opts = SendOptions(SendOptions::USE_ACK | SendOptions::SYNCHRONIZED_ACK);
            let report = channel.send(&dests, op.encode(), opts).await;
            for (id, outcome) in report.results {
                let name = members
                    .iter()
                    .find(|m| m.id == id)
                    .map(|m| m.name.clone())
                    .unwrap_or_else(|| id.to_hex());
                let r = match outcome {
                    shoal_net::Outcome::Failed(why) => Err(why),
                    _ => Ok(()),
                };
                results.push((name, r));
            }
        }
        Ok((info, results))
    }
}
