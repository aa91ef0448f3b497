//! Plugin operations. Every change goes through `Plugins::apply_everywhere`: applied here
//! first (a mistake is reported before anything else changes), then on every member with
//! SYNCHRONIZED_ACK; the answer shows, per node, whether it confirmed.
use super::NodeBackend;
use crate::plugins::{ControlOp, Place, PlaceError};
use shoal_admin::dto::*;
use shoal_admin::BackendError;
use shoal_plugin_host::{
    FailurePolicy as HostPolicy, Limits, PluginError, PluginInfo, PluginState as HostState,
    PluginWorld as HostWorld,
};
use std::time::Duration;

/// What the registry does not keep but the API shows.
#[derive(Clone, Default)]
pub(super) struct PluginMeta {
    pub label: Option<String>,
    pub size_bytes: u64,
    pub loaded_ms: u64,
    /// Outcome of the last operation per node (name).
    pub last: Vec<(String, Result<(), String>)>,
}

pub(super) fn map_error(e: PluginError) -> BackendError {
    match e {
        PluginError::NotLoaded { name, loaded } => BackendError::NotFound {
            what: "plugin",
            name,
            hint: if loaded.is_empty() { String::new() } else { format!(" (loaded: {loaded})") },
        },
        PluginError::AlreadyLoaded { name } => BackendError::Conflict(format!(
            "a plugin named `{name}` is already loaded: pass replace=true to hot-reload a new version, or unload it first"
        )),
        PluginError::Engine(m) => BackendError::Internal(format!("plugin engine: {m}")),
        other => BackendError::Invalid(other.to_string()),
    }
}

pub(super) fn world_to_host(w: PluginWorld) -> HostWorld {
    match w {
        PluginWorld::ChannelInterceptor => HostWorld::ChannelInterceptor,
        PluginWorld::Valve => HostWorld::Valve,
        PluginWorld::UrlFilter => HostWorld::UrlFilter,
        PluginWorld::DeployHook => HostWorld::DeployHook,
    }
}

fn world_from_host(w: HostWorld) -> PluginWorld {
    match w {
        HostWorld::ChannelInterceptor => PluginWorld::ChannelInterceptor,
        HostWorld::Valve => PluginWorld::Valve,
        HostWorld::UrlFilter => PluginWorld::UrlFilter,
        HostWorld::DeployHook => PluginWorld::DeployHook,
    }
}

fn policy_to_host(p: FailurePolicy) -> HostPolicy {
    match p {
        FailurePolicy::FailOpen => HostPolicy::FailOpen,
        FailurePolicy::FailClosed => HostPolicy::FailClosed,
        FailurePolicy::Reload => HostPolicy::Reload {
            backoff: Duration::from_millis(100),
            max_restarts: 5,
        },
    }
}

/// A JSON object as the `(key, value)` strings plugins receive; strings stay as they
/// are, other values as JSON text.
pub(super) fn config_pairs(v: &serde_json::Value) -> Result<Vec<(String, String)>, BackendError> {
    let obj = match v {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Object(o) => o,
        other => {
            return Err(BackendError::Invalid(format!(
                "plugin configuration must be a JSON object of settings, e.g. {{\"pattern\": \"*.css\"}}; got {other}"
            )))
        }
    };
    let mut pairs: Vec<(String, String)> = obj
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect();
    pairs.sort();
    Ok(pairs)
}

impl NodeBackend {
    fn state_of(info: &PluginInfo) -> PluginState {
        match info.state {
            HostState::Enabled => PluginState::Enabled,
            HostState::Disabled => PluginState::Disabled,
            HostState::CrashLoop(_) => PluginState::Failed,
        }
    }

    /// Per node: this node's real state; members that did not confirm the last operation
    /// are `pending` with the reason, the others are taken to be in the same state.
    fn node_states(&self, info: &PluginInfo, meta: &PluginMeta) -> Vec<NodePluginState> {
        let local = Self::state_of(info);
        let local_error = match &info.state {
            HostState::CrashLoop(why) => Some(why.clone()),
            _ => info
                .last_error
                .clone()
                .filter(|_| local == PluginState::Failed),
        };
        let mut out = vec![NodePluginState {
            node: self.local_name(),
            state: local,
            error: local_error,
        }];
        for m in self.node.channel.members() {
            let failed = meta
                .last
                .iter()
                .find(|(n, _)| *n == m.name)
                .and_then(|(_, r)| r.clone().err());
            out.push(match failed {
                Some(e) => NodePluginState {
                    node: m.name,
                    state: PluginState::Pending,
                    error: Some(format!("did not confirm the last operation: {e}")),
                },
                None => NodePluginState {
                    node: m.name,
                    state: local,
                    error: None,
                },
            });
        }
        out
    }

    pub(super) fn plugin_view(&self, info: PluginInfo) -> Plugin {
        let meta = self
            .lock()
            .plugin_meta
            .get(&info.name)
            .cloned()
            .unwrap_or_default();
        let contexts = &self.node.http.contexts();
        let attached_to = match info.world {
            HostWorld::Valve | HostWorld::UrlFilter => contexts
                .iter()
                .filter(|c| self.node.plugins.placement.applies(&info.name, &c.path))
                .map(|c| super::sessions::api_name(&c.path))
                .collect(),
            HostWorld::ChannelInterceptor => vec!["channel".into()],
            HostWorld::DeployHook => Vec::new(),
        };
        let f = &info.failures;
        let policy = match info.policy {
            HostPolicy::FailOpen => FailurePolicy::FailOpen,
            HostPolicy::FailClosed => FailurePolicy::FailClosed,
            HostPolicy::Reload { .. } => FailurePolicy::Reload,
        };
        let warnings = self.placement_warnings(&info);
        Plugin {
            wit_version: info.wit_version.clone(),
            generation: info.generation,
            label: meta.label.clone(),
            warnings,
            digest: info.digest.clone(),
            world: world_from_host(info.world),
            state: Self::state_of(&info),
            policy,
            limits: PluginLimits {
                memory_bytes: info.limits.memory_bytes as u64,
                call_timeout_ms: info.limits.call_timeout.as_millis() as u64,
                max_instances: info.limits.max_instances,
            },
            failures: FailureCounts {
                traps: f.traps,
                timeouts: f.timeouts,
                memory: f.memory,
                bad_output: f.bad_output,
                total: f.traps + f.timeouts + f.memory + f.bad_output + f.instantiation + f.busy,
            },
            attached_to,
            config: serde_json::Value::Object(
                info.config
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            ),
            size_bytes: meta.size_bytes,
            loaded_ms: if meta.loaded_ms == 0 {
                self.started_ms
            } else {
                meta.loaded_ms
            },
            nodes: self.node_states(&info, &meta),
            name: info.name,
        }
    }

    pub(super) fn plugin_by_name(&self, name: &str) -> Result<Plugin, BackendError> {
        let info = self.node.plugins.registry.info(name).map_err(map_error)?;
        Ok(self.plugin_view(info))
    }

    /// Applies `op` on every node, records per-node outcomes, emits an event.
    pub(super) async fn apply(
        &self,
        op: ControlOp,
        what: &str,
    ) -> Result<Vec<(String, Result<(), String>)>, BackendError> {
        let name = op.plugin_name().unwrap_or("pipeline").to_owned();
        let (_, results) = self
            .node
            .plugins
            .apply_everywhere(&self.node.channel, op)
            .await
            .map_err(map_error)?;
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect();
        self.lock()
            .plugin_meta
            .entry(name.clone())
            .or_default()
            .last = results.clone();
        let message = if failed.is_empty() {
            format!("plugin {name} {what} on {} node(s)", results.len())
        } else {
            format!(
                "plugin {name} {what} here; not confirmed by {}",
                failed.join("; ")
            )
        };
        self.emit(EventKind::Plugin, &name, message);
        Ok(results)
    }

    /// A plugin operation another member applied here (see `runtime::demultiplex`): the
    /// event tells this node's watchers too.
    pub fn remote_operation(
        &self,
        op: &ControlOp,
        from: shoal_cluster::MemberId,
        result: &Result<(), String>,
    ) {
        let (name, verb) = match op {
            ControlOp::Load { name, .. } => (name.as_str(), "loaded"),
            ControlOp::Configure { name, .. } => (name.as_str(), "reconfigured"),
            ControlOp::SetEnabled {
                name,
                enabled: true,
            } => (name.as_str(), "enabled"),
            ControlOp::SetEnabled {
                name,
                enabled: false,
            } => (name.as_str(), "disabled"),
            ControlOp::Reload { name, .. } => (name.as_str(), "reloaded"),
            ControlOp::Unload { name } => (name.as_str(), "unloaded"),
            ControlOp::Reorder { .. } => ("pipeline", "reordered"),
            ControlOp::Update { name, .. } => (name.as_str(), "updated"),
        };
        let by = self.member_name(&from);
        let message = match result {
            Ok(()) => format!("plugin {name} {verb} here at {by}'s request"),
            Err(e) => format!("plugin {name} could not be {verb} here at {by}'s request: {e}"),
        };
        if let (
            ControlOp::Load { bytes, .. }
            | ControlOp::Reload {
                bytes: Some(bytes), ..
            },
            Ok(()),
        ) = (op, result)
        {
            let mut s = self.lock();
            let meta = s.plugin_meta.entry(name.to_owned()).or_default();
            meta.size_bytes = bytes.len() as u64;
            meta.loaded_ms = now_ms();
        }
        if matches!((op, result), (ControlOp::Unload { .. }, Ok(()))) {
            self.lock().plugin_meta.remove(name);
        }
        self.emit(EventKind::Plugin, name, message);
    }

    /// Why `info` (a valve) may never run where it is: an enabled valve before it on one of
    /// its contexts answered every one of its calls (an application, like the bench app).
    fn placement_warnings(&self, info: &PluginInfo) -> Vec<String> {
        if info.world != HostWorld::Valve {
            return Vec::new();
        }
        let plugins = &self.node.plugins;
        let list = plugins.registry.list();
        let mut out = Vec::new();
        for ctx in self.node.http.contexts() {
            if !plugins.placement.applies(&info.name, &ctx.path) {
                continue;
            }
            let before = list
                .iter()
                .take_while(|p| p.name != info.name)
                .filter(|p| p.world == HostWorld::Valve && p.state == HostState::Enabled)
                .filter(|p| plugins.placement.applies(&p.name, &ctx.path));
            for app in before {
                if app.responded > 0 && app.responded == app.calls {
                    out.push(format!(
                        "valve {} never runs in {}: it is placed after {}, which answered every one of its {} requests; move it with `shoal ctl contexts pipeline {} --set ...` or load it with --before {}",
                        info.name, ctx.path, app.name, app.calls, super::sessions::api_name(&ctx.path), app.name
                    ));
                }
            }
        }
        out
    }

    /// The registry order with `name` placed at `position` (see [`Position`]); `contexts`
    /// are where it runs (empty: every context), for the names a position may use.
    fn order_with(
        &self,
        name: &str,
        position: &Position,
        contexts: &[String],
    ) -> Result<Vec<String>, BackendError> {
        let place = match position {
            Position::Before(s) => Place::Before(s),
            Position::After(s) => Place::After(s),
        };
        self.node
            .plugins
            .order_with(name, place)
            .map_err(|e| match e {
                PlaceError::NativeStage => BackendError::Invalid(format!(
                    "plugin {name}: plugins run between ReplicationValve and app, and native stages keep their place; use --after ReplicationValve (first) or --before app (last), or name a plugin"
                )),
                PlaceError::Unknown => {
                    let here: Vec<String> = self
                        .node
                        .http
                        .contexts()
                        .iter()
                        .filter(|c| contexts.is_empty() || contexts.contains(&c.path))
                        .flat_map(|c| self.pipeline(c))
                        .map(|st| st.name)
                        .filter(|n| n != name)
                        .collect();
                    let (Position::Before(s) | Position::After(s)) = position;
                    BackendError::NotFound {
                        what: "pipeline stage",
                        name: s.to_owned(),
                        hint: format!(" (stages where plugin {name} goes: {})", here.join(", ")),
                    }
                }
            })
    }

    fn limits_to_host(l: &PluginLimits) -> Limits {
        Limits {
            memory_bytes: l.memory_bytes as usize,
            call_timeout: Duration::from_millis(l.call_timeout_ms),
            max_instances: l.max_instances,
            ..Limits::default()
        }
    }

    fn limits_from_host(l: &Limits) -> PluginLimits {
        PluginLimits {
            memory_bytes: l.memory_bytes as u64,
            call_timeout_ms: l.call_timeout.as_millis() as u64,
            max_instances: l.max_instances,
        }
    }

    /// Loads a plugin, or replaces it (`replace`): the component, and every other field
    /// given (configuration, policy, limits, placement, position); what is not given keeps
    /// its current value on replace and takes the default on load.
    pub(super) async fn load(&self, r: LoadPlugin) -> Result<Plugin, BackendError> {
        let config = r.config.as_ref().map(config_pairs).transpose()?;
        let contexts = match (r.world, r.attach.as_deref()) {
            (PluginWorld::ChannelInterceptor, None | Some("channel"))
            | (PluginWorld::DeployHook, None) => None,
            (PluginWorld::ChannelInterceptor, Some(o)) => {
                return Err(BackendError::Invalid(format!(
                    "a channel-interceptor attaches to `channel`, not `{o}`"
                )))
            }
            (PluginWorld::DeployHook, Some(_)) => {
                return Err(BackendError::Invalid(
                    "a deploy-hook is not attached: omit `attach`".into(),
                ))
            }
            (_, None) => None,
            (_, Some(ctx)) => Some(vec![self.context_config(ctx)?.path]),
        };
        let placed = matches!(r.world, PluginWorld::Valve | PluginWorld::UrlFilter);
        if r.position.is_some() && !placed {
            return Err(BackendError::Invalid(format!(
                "plugin {}: before/after place valves and URL filters in a pipeline; a {:?} has no place there (interceptors: PUT /api/v1/channel/interceptors/order)",
                r.name, r.world
            )));
        }
        let current = self.node.plugins.registry.info(&r.name).ok();
        if current.is_some() && !r.replace {
            return Err(map_error(PluginError::AlreadyLoaded { name: r.name }));
        }
        if let Some(info) = &current {
            if world_from_host(info.world) != r.world {
                return Err(BackendError::Invalid(format!(
                    "plugin {} is a {:?}; a replacement must be one too (unload it first to load a {:?})",
                    r.name, world_from_host(info.world), r.world
                )));
            }
        }
        // A new valve runs before the context's application (the first of its plugins);
        // other new plugins go last; a replaced one keeps its place unless told.
        let position = match (&r.position, &current, r.world) {
            (Some(p), _, _) => Some(p.clone()),
            (None, None, PluginWorld::Valve) => Some(Position::After("ReplicationValve".into())),
            _ => None,
        };
        let placed_in = contexts.clone().unwrap_or_default();
        let order = match &position {
            Some(p) => Some(self.order_with(&r.name, p, &placed_in)?),
            None => None,
        };
        {
            let mut s = self.lock();
            let meta = s.plugin_meta.entry(r.name.clone()).or_default();
            if r.label.is_some() || current.is_none() {
                meta.label = r.label.clone();
            }
            meta.size_bytes = r.component.len() as u64;
            meta.loaded_ms = now_ms();
        }
        let Some(info) = current else {
            let limits = r.limits.over(&PluginLimits::default_limits());
            let op = ControlOp::Load {
                name: r.name.clone(),
                bytes: r.component,
                config: config.unwrap_or_default(),
                limits: Self::limits_to_host(&limits),
                policy: policy_to_host(r.policy.unwrap_or(FailurePolicy::DEFAULT)),
                world: Some(world_to_host(r.world)),
                contexts: placed_in,
            };
            if let Err(e) = self.apply(op, "loaded").await {
                self.lock().plugin_meta.remove(&r.name);
                return Err(e);
            }
            if let Some(order) = order {
                self.apply(ControlOp::Reorder { order }, "placed").await?;
            }
            return self.plugin_by_name(&r.name);
        };
        self.apply(
            ControlOp::Reload {
                name: r.name.clone(),
                bytes: Some(r.component),
            },
            "replaced",
        )
        .await?;
        if let Some(config) = config {
            self.apply(
                ControlOp::Configure {
                    name: r.name.clone(),
                    config,
                },
                "reconfigured",
            )
            .await?;
        }
        let limits = (!r.limits.is_empty())
            .then(|| Self::limits_to_host(&r.limits.over(&Self::limits_from_host(&info.limits))));
        if r.policy.is_some() || limits.is_some() || contexts.is_some() {
            self.apply(
                ControlOp::Update {
                    name: r.name.clone(),
                    policy: r.policy.map(policy_to_host),
                    limits,
                    contexts,
                },
                "updated",
            )
            .await?;
        }
        if let Some(order) = order {
            self.apply(ControlOp::Reorder { order }, "placed").await?;
        }
        self.plugin_by_name(&r.name)
    }
}
