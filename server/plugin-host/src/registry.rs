//! The plugin registry: load, configure, enable/disable, reload, reorder, unload, list.
//! The typed calls live in `calls.rs`.
use crate::engine::{EngineOptions, PluginEngine};
use crate::error::PluginError;
use crate::facts::ClusterFacts;
use crate::generation::Generation;
use crate::metrics::{MetricKind, MetricSample, PluginMetrics};
use crate::plugin::Plugin;
use crate::state::PluginContext;
use crate::types::{FailurePolicy, Limits, PluginInfo, PluginWorld};
use crate::wit::{detect_version, detect_world};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

/// How to load a plugin.
#[derive(Clone, Debug, Default)]
pub struct PluginSpec {
    /// Given to the plugin through `host.config`; fixed until `configure`.
    pub config: Vec<(String, String)>,
    pub limits: Limits,
    pub policy: FailurePolicy,
    /// The world the caller expects; `None` accepts whichever the component implements.
    pub world: Option<PluginWorld>,
}

#[derive(Default)]
struct Plugins {
    by_name: HashMap<String, Arc<Plugin>>,
    /// Pipeline order: load order unless `reorder` changed it.
    order: Vec<String>,
}

/// All plugins of a node. Cheap to share (`Arc`); every method takes `&self`.
pub struct PluginRegistry {
    /// Created by the first load (see [`PluginRegistry::engine`]).
    engine: OnceLock<PluginEngine>,
    /// Serializes the engine's creation (two first loads at once build one engine).
    engine_init: Mutex<()>,
    options: EngineOptions,
    facts: Arc<dyn ClusterFacts>,
    plugins: RwLock<Plugins>,
}

impl PluginRegistry {
    /// The wasmtime engine (cranelift, the pooling allocator, the epoch ticker) is created
    /// by the first plugin load, not here: a node without plugins never maps or runs that
    /// code, which kept ~10 MiB of its resident memory (README, "Benchmarks").
    pub fn new(
        options: EngineOptions,
        facts: Arc<dyn ClusterFacts>,
    ) -> Result<PluginRegistry, PluginError> {
        Ok(PluginRegistry {
            engine: OnceLock::new(),
            engine_init: Mutex::new(()),
            options,
            facts,
            plugins: RwLock::default(),
        })
    }

    /// The engine, created on first use. An error (no engine can be built here) is
    /// returned to every load until one succeeds.
    pub(crate) fn engine(&self) -> Result<&PluginEngine, PluginError> {
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        let _init = self.engine_init.lock().map_err(|_| poisoned())?;
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        let engine = PluginEngine::new(self.options.clone())?;
        Ok(self.engine.get_or_init(|| engine))
    }

    /// Whether instances come from the pooling allocator (false after a fallback, or when no
    /// engine can be built). Creates the engine if no plugin was loaded yet.
    pub fn pooling(&self) -> bool {
        self.engine().is_ok_and(|e| e.pooling)
    }

    /// Compiles (or reuses the compiled code of) `bytes`, checks the world, creates the
    /// first instance, and adds the plugin at the end of the order, enabled.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        spec: PluginSpec,
    ) -> Result<PluginInfo, PluginError> {
        if self.lookup(name).is_ok() {
            return Err(PluginError::AlreadyLoaded {
                name: name.to_string(),
            });
        }
        let metrics = Arc::new(PluginMetrics::default());
        let version = self.build(
            name,
            bytes,
            1,
            spec.world,
            spec.config,
            spec.limits,
            metrics.clone(),
        )?;
        let plugin = Arc::new(Plugin::new(name, metrics, version, spec.policy));
        let mut plugins = self.plugins.write().map_err(|_| poisoned())?;
        if plugins.by_name.contains_key(name) {
            return Err(PluginError::AlreadyLoaded {
                name: name.to_string(),
            });
        }
        plugins.by_name.insert(name.to_string(), plugin.clone());
        plugins.order.push(name.to_string());
        drop(plugins);
        tracing::info!(plugin = name, "plugin loaded");
        Ok(self.info_of(&plugin))
    }

    /// Hot reload with new bytes (same world, config and limits): new calls go to the new
    /// version as soon as it is ready; calls in flight finish on the old one.
    pub fn reload(&self, name: &str, bytes: &[u8]) -> Result<PluginInfo, PluginError> {
        let plugin = self.lookup(name)?;
        let old = plugin.generation().ok_or_else(poisoned)?;
        let version = self.build(
            name,
            bytes,
            old.number + 1,
            Some(old.world),
            old.context.config.clone(),
            old.limits.clone(),
            plugin.metrics.clone(),
        )?;
        self.swap(&plugin, version)
    }

    /// A new version with this configuration (same component).
    pub fn configure(
        &self,
        name: &str,
        config: Vec<(String, String)>,
    ) -> Result<PluginInfo, PluginError> {
        self.rebuild(name, |_, limits| (config, limits))
    }

    /// A new version with these limits (same component and configuration).
    pub fn set_limits(&self, name: &str, limits: Limits) -> Result<PluginInfo, PluginError> {
        self.rebuild(name, |config, _| (config, limits))
    }

    pub fn set_policy(&self, name: &str, policy: FailurePolicy) -> Result<PluginInfo, PluginError> {
        let plugin = self.lookup(name)?;
        plugin.set_policy(policy);
        Ok(self.info_of(&plugin))
    }

    /// Turns a plugin on again; also clears a crash loop and any backoff.
    pub fn enable(&self, name: &str) -> Result<PluginInfo, PluginError> {
        let plugin = self.lookup(name)?;
        plugin.set_enabled(true);
        Ok(self.info_of(&plugin))
    }

    /// Calls to a disabled plugin are skipped (answered as if it were not there).
    pub fn disable(&self, name: &str) -> Result<PluginInfo, PluginError> {
        let plugin = self.lookup(name)?;
        plugin.set_enabled(false);
        Ok(self.info_of(&plugin))
    }

    /// Removes the plugin; calls in flight finish first (they hold the version).
    pub fn unload(&self, name: &str) -> Result<(), PluginError> {
        let mut plugins = self.plugins.write().map_err(|_| poisoned())?;
        if plugins.by_name.remove(name).is_none() {
            return Err(self.not_loaded(name, &plugins));
        }
        plugins.order.retain(|n| n != name);
        let digests: Vec<String> = plugins
            .by_name
            .values()
            .filter_map(|p| p.generation())
            .map(|v| v.digest.clone())
            .collect();
        drop(plugins);
        if let Some(engine) = self.engine.get() {
            engine.retain_compiled(&digests);
        }
        tracing::info!(plugin = name, "plugin unloaded");
        Ok(())
    }

    /// Puts `names` first, in this order; the others keep their relative order after them.
    pub fn reorder(&self, names: &[&str]) -> Result<(), PluginError> {
        let mut plugins = self.plugins.write().map_err(|_| poisoned())?;
        if let Some(missing) = names.iter().find(|n| !plugins.by_name.contains_key(**n)) {
            return Err(self.not_loaded(missing, &plugins));
        }
        let mut order: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        order.extend(
            plugins
                .order
                .iter()
                .filter(|n| !names.contains(&n.as_str()))
                .cloned(),
        );
        plugins.order = order;
        Ok(())
    }

    /// Every plugin, in pipeline order.
    pub fn list(&self) -> Vec<PluginInfo> {
        let Ok(plugins) = self.plugins.read() else {
            return Vec::new();
        };
        plugins
            .order
            .iter()
            .filter_map(|n| plugins.by_name.get(n))
            .map(|p| self.info_of(p))
            .collect()
    }

    pub fn info(&self, name: &str) -> Result<PluginInfo, PluginError> {
        Ok(self.info_of(&*self.lookup(name)?))
    }

    /// Enabled plugins of `world`, in pipeline order: what a pipeline should call.
    pub fn enabled(&self, world: PluginWorld) -> Vec<String> {
        let Ok(plugins) = self.plugins.read() else {
            return Vec::new();
        };
        plugins
            .order
            .iter()
            .filter_map(|n| plugins.by_name.get(n))
            .filter(|p| p.is_enabled() && p.generation().is_some_and(|v| v.world == world))
            .map(|p| p.name.clone())
            .collect()
    }

    /// What plugins published plus the host's own per-plugin call and failure counters
    /// (`plugin.<name>.host.calls`, `.host.failures`).
    pub fn metrics(&self) -> Vec<MetricSample> {
        let Ok(plugins) = self.plugins.read() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for plugin in plugins.order.iter().filter_map(|n| plugins.by_name.get(n)) {
            out.extend(plugin.metrics.samples(&plugin.name));
            let (calls, f) = plugin.counts();
            let failures =
                f.traps + f.timeouts + f.memory + f.bad_output + f.instantiation + f.busy;
            for (what, value) in [
                ("calls", calls),
                ("failures", failures),
                ("skipped", f.skipped),
            ] {
                let name = format!("plugin.{}.host.{what}", plugin.name);
                out.push(MetricSample {
                    name,
                    kind: MetricKind::Counter,
                    value: value.min(i64::MAX as u64) as i64,
                });
            }
        }
        out
    }

    pub(crate) fn lookup(&self, name: &str) -> Result<Arc<Plugin>, PluginError> {
        let plugins = self.plugins.read().map_err(|_| poisoned())?;
        plugins
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_loaded(name, &plugins))
    }

    fn not_loaded(&self, name: &str, plugins: &Plugins) -> PluginError {
        PluginError::NotLoaded {
            name: name.to_string(),
            loaded: plugins.order.join(", "),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        &self,
        name: &str,
        bytes: &[u8],
        number: u64,
        expected: Option<PluginWorld>,
        config: Vec<(String, String)>,
        limits: Limits,
        metrics: Arc<PluginMetrics>,
    ) -> Result<Generation, PluginError> {
        self.check_limits(name, &limits)?;
        let digest = hex::encode(Sha256::digest(bytes));
        let engine = self.engine()?;
        let component = engine.compile(name, &digest, bytes)?;
        let wit = detect_version(name, &engine.engine, &component)?;
        let world = detect_world(name, &engine.engine, &component)?;
        if let Some(expected) = expected.filter(|e| *e != world) {
            return Err(PluginError::WrongWorld {
                name: name.to_string(),
                expected,
                found: world,
            });
        }
        let context = Arc::new(PluginContext::new(
            name,
            config,
            metrics,
            self.facts.clone(),
            Instant::now(),
        ));
        Generation::new(
            engine,
            number,
            digest,
            (world, wit),
            component,
            context,
            limits,
        )
    }

    fn rebuild(
        &self,
        name: &str,
        change: impl FnOnce(Vec<(String, String)>, Limits) -> (Vec<(String, String)>, Limits),
    ) -> Result<PluginInfo, PluginError> {
        let plugin = self.lookup(name)?;
        let old = plugin.generation().ok_or_else(poisoned)?;
        let (config, limits) = change(old.context.config.clone(), old.limits.clone());
        self.check_limits(name, &limits)?;
        let context = Arc::new(PluginContext::new(
            name,
            config,
            plugin.metrics.clone(),
            self.facts.clone(),
            old.context.epoch,
        ));
        let version = Generation::new(
            self.engine()?,
            old.number + 1,
            old.digest.clone(),
            (old.world, old.wit),
            old.component.clone(),
            context,
            limits,
        )?;
        self.swap(&plugin, version)
    }

    fn swap(&self, plugin: &Plugin, version: Generation) -> Result<PluginInfo, PluginError> {
        let number = version.number;
        *plugin.current.write().map_err(|_| poisoned())? = Arc::new(version);
        tracing::info!(plugin = %plugin.name, generation = number, "plugin generation activated");
        Ok(self.info_of(plugin))
    }

    fn check_limits(&self, name: &str, limits: &Limits) -> Result<(), PluginError> {
        let bad = |reason: String| {
            Err(PluginError::Limits {
                name: name.to_string(),
                reason,
            })
        };
        let max = self.options.max_memory_bytes;
        if limits.memory_bytes > max {
            return bad(format!(
                "memory_bytes {} is over the engine's maximum of {max}",
                limits.memory_bytes
            ));
        }
        if limits.memory_bytes < 64 << 10
            || limits.call_timeout.is_zero()
            || limits.max_instances == 0
        {
            return bad(
                "memory_bytes must be at least 64 KiB, call_timeout and max_instances above zero"
                    .into(),
            );
        }
        Ok(())
    }

    fn info_of(&self, plugin: &Plugin) -> PluginInfo {
        let version = plugin.generation();
        let (state, policy, last_error) = plugin.status();
        let (calls, failures) = plugin.counts();
        PluginInfo {
            name: plugin.name.clone(),
            generation: version.as_ref().map_or(0, |v| v.number),
            digest: version
                .as_ref()
                .map(|v| v.digest.clone())
                .unwrap_or_default(),
            world: version.as_ref().map_or(PluginWorld::Valve, |v| v.world),
            wit_version: version.as_ref().map_or("", |v| v.wit.as_str()).to_string(),
            state,
            limits: version
                .as_ref()
                .map(|v| v.limits.clone())
                .unwrap_or_default(),
            policy,
            config: version
                .as_ref()
                .map(|v| v.context.config.clone())
                .unwrap_or_default(),
            calls,
            responded: plugin.responded(),
            failures,
            last_error,
            instances: version.as_ref().map_or(0, |v| v.alive()),
        }
    }
}

impl Drop for PluginRegistry {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.get_mut() {
            engine.shutdown();
        }
    }
}

fn poisoned() -> PluginError {
    PluginError::Engine("a lock was poisoned by a panic; restart the node".into())
}
