//! The wasmtime engine shared by every plugin: pooling allocator, epoch interruption driven
//! by a ticker thread, one linker with the host imports, and the compiled-component cache.
use crate::error::PluginError;
use crate::state::HostState;
use crate::wit;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How the engine is built.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Preallocate instance slots (fast instantiation). Falls back to on-demand allocation,
    /// with a log line, where the sandbox refuses the reservation.
    pub pooling: bool,
    /// Instance slots of the pool; also the most instances alive across all plugins.
    pub pool_instances: u32,
    /// The largest memory limit a plugin may have (pool slot size).
    pub max_memory_bytes: usize,
    /// Epoch tick: the granularity of per-call time limits.
    pub tick: Duration,
    /// Where compiled code is kept across restarts (wasmtime's cache, keyed by the bytes
    /// and the engine's configuration). `None`: compile at every start. Needs the
    /// `compile-cache` feature (else the engine refuses to start, saying so).
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            pooling: true,
            pool_instances: 128,
            max_memory_bytes: 256 << 20,
            tick: Duration::from_millis(1),
            cache_dir: None,
        }
    }
}

pub(crate) struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub options: EngineOptions,
    /// Whether the pooling allocator is in use (false after a fallback).
    pub pooling: bool,
    /// Compiled components by SHA-256 of their bytes: a reload of the same bytes (or a
    /// reconfiguration) does not compile again.
    compiled: Mutex<HashMap<String, Component>>,
    ticker: Ticker,
}

impl PluginEngine {
    pub(crate) fn new(options: EngineOptions) -> Result<PluginEngine, PluginError> {
        let (engine, pooling) = match build_engine(&options, options.pooling) {
            Ok(engine) => (engine, options.pooling),
            Err(e) if options.pooling => {
                tracing::warn!(error = %e, "plugin engine: pooling allocator unavailable here; using on-demand allocation");
                (build_engine(&options, false)?, false)
            }
            Err(e) => return Err(e),
        };
        let linker = wit::linker(&engine)
            .map_err(|e| PluginError::Engine(format!("linking host imports: {e:#}")))?;
        let ticker = Ticker::start(&engine, options.tick);
        Ok(PluginEngine {
            engine,
            linker,
            options,
            pooling,
            compiled: Mutex::default(),
            ticker,
        })
    }

    /// The compiled component for `bytes` (whose digest is `digest`), compiling on a miss.
    pub(crate) fn compile(
        &self,
        name: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<Component, PluginError> {
        if let Some(c) = self
            .compiled
            .lock()
            .ok()
            .and_then(|m| m.get(digest).cloned())
        {
            return Ok(c);
        }
        check_header(name, bytes)?;
        let component = Component::new(&self.engine, bytes).map_err(|e| PluginError::Compile {
            name: name.to_string(),
            reason: format!("{e:#}"),
        })?;
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(digest.to_string(), component.clone());
        }
        Ok(component)
    }

    /// Drops cached compilations no loaded plugin uses.
    pub(crate) fn retain_compiled(&self, digests: &[String]) {
        if let Ok(mut m) = self.compiled.lock() {
            m.retain(|d, _| digests.contains(d));
        }
    }

    /// Epoch ticks for a time limit (at least one).
    pub(crate) fn ticks(&self, limit: Duration) -> u64 {
        (limit.as_nanos() / self.options.tick.as_nanos().max(1)).max(1) as u64
    }

    pub(crate) fn shutdown(&mut self) {
        self.ticker.stop();
    }

    /// Keeps epoch time running while the returned guard (held by a plugin generation) lives.
    pub(crate) fn tick_guard(&self) -> TickGuard {
        self.ticker.guard()
    }
}

/// Tells "not wasm" and "core module" apart from a broken component, for clearer errors.
fn check_header(name: &str, bytes: &[u8]) -> Result<(), PluginError> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(PluginError::NotWasm {
            name: name.to_string(),
        });
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(PluginError::CoreModule {
            name: name.to_string(),
        });
    }
    Ok(())
}

fn build_engine(options: &EngineOptions, pooling: bool) -> Result<Engine, PluginError> {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(options.pool_instances)
            // wasip2 components carry a few core instances (adapters, shims).
            .total_core_instances(options.pool_instances * 4)
            .total_memories(options.pool_instances * 2)
            .total_tables(options.pool_instances * 4)
            .max_memory_size(options.max_memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    if let Some(dir) = &options.cache_dir {
        set_cache(&mut config, dir)?;
    }
    let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    if pooling {
        // The pool reserves its address space lazily on some platforms: probe it now so a
        // refusal shows up here (and falls back) rather than at the first plugin.
        probe(&engine)?;
    }
    Ok(engine)
}

#[cfg(feature = "compile-cache")]
fn set_cache(config: &mut Config, dir: &std::path::Path) -> Result<(), PluginError> {
    let mut cache_config = wasmtime::CacheConfig::new();
    cache_config.with_directory(dir.to_path_buf());
    let cache = wasmtime::Cache::new(cache_config)
        .map_err(|e| PluginError::Engine(format!("compile cache in {}: {e:#}", dir.display())))?;
    config.cache(Some(cache));
    Ok(())
}

#[cfg(not(feature = "compile-cache"))]
fn set_cache(_config: &mut Config, dir: &std::path::Path) -> Result<(), PluginError> {
    Err(PluginError::Engine(format!(
        "compile cache in {}: this build has no compile cache; build shoal-plugin-host \
         with the `compile-cache` feature or leave `cache_dir` unset",
        dir.display()
    )))
}

/// `(component)` in binary form (magic, component-model version 0x0d, layer 1). Binary
/// rather than text so a node without plugins never runs the WAT parser (its code pages
/// would count in every node's resident memory).
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

fn probe(engine: &Engine) -> Result<(), PluginError> {
    let component = Component::new(engine, EMPTY_COMPONENT)
        .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    let linker: Linker<()> = Linker::new(engine);
    let mut store = wasmtime::Store::new(engine, ());
    linker
        .instantiate(&mut store, &component)
        .map(|_| ())
        .map_err(|e| PluginError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every tick; stops when told or when the engine is gone.
/// Epoch time only matters while plugin code can run, i.e. while a plugin version exists
/// (loaded, or finishing calls after an unload): without one the thread parks instead of
/// waking every millisecond (~1.5% of a core per node with no plugin at all).
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    /// One strong count per live plugin version ([`TickGuard`]), plus the ticker's own.
    versions: Arc<()>,
    thread: Option<JoinHandle<()>>,
}

/// Held by every plugin version: the ticker runs while any exists.
pub(crate) struct TickGuard {
    _live: Arc<()>,
}

/// How long a parked ticker sleeps before it looks again (a new version also wakes it).
const PARKED_RECHECK: Duration = Duration::from_millis(100);

impl Ticker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let versions = Arc::new(());
        let (weak, flag, live) = (engine.weak(), stop.clone(), Arc::downgrade(&versions));
        let thread = std::thread::Builder::new()
            .name("shoal-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if live.strong_count() <= 1 {
                        std::thread::park_timeout(PARKED_RECHECK);
                        continue;
                    }
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| tracing::error!(error = %e, "plugin engine: cannot start the epoch ticker; time limits will not fire"))
            .ok();
        Ticker {
            stop,
            versions,
            thread,
        }
    }

    /// A guard for a new plugin version; wakes a parked ticker.
    pub(crate) fn guard(&self) -> TickGuard {
        let guard = TickGuard {
            _live: self.versions.clone(),
        };
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        guard
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_probe_component_is_valid() {
        let config = {
            let mut c = wasmtime::Config::new();
            c.wasm_component_model(true);
            c
        };
        let engine = wasmtime::Engine::new(&config).unwrap_or_else(|e| panic!("{e:#}"));
        // An invalid probe would not fail PluginEngine::new: it would silently fall back
        // to on-demand allocation. So check the bytes themselves.
        super::probe(&engine).unwrap_or_else(|e| panic!("{e}"));
    }
}
