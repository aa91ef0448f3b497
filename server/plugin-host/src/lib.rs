//! wasmtime host for shoal's WebAssembly component plugins (WIT package
//! `shoal:plugin@0.2.0` in `wit/`; components built against the frozen `0.1.0` in
//! `wit/v0.1.0/` are linked beside it, see [`SUPPORTED_WIT_VERSIONS`]).
//!
//! # Module map
//!
//! A call flows down this list and its answer back up; no module imports one above it
//! that imports it back.
//!
//! - `registry.rs`: [`PluginRegistry`]: load / reload / configure / enable / disable /
//!   reorder / unload / list. Compiles through `engine`, detects the world and WIT version
//!   through `wit`, and builds a new `generation` for every change.
//! - `calls.rs`: the typed calls on the registry ([`PluginRegistry::valve_call`],
//!   [`PluginRegistry::url_filter`], [`PluginRegistry::deploy_hook_before`] and friends) and
//!   `run`, which takes an instance from the current generation, calls it under its limits
//!   and hands a failure to the plugin's policy.
//! - `valve_app.rs`: [`ValveApp`], a valve-world component serving a context as its
//!   application (outside the registry's list), calling through `calls`.
//! - `http_app.rs`: [`HttpAppHost`] and [`HttpApp`], `wasi:http` applications (world
//!   `shoal:http-app/http-app`, `wit/http-app/`): their own async engine and linker
//!   (WASI, `wasi:http`, the session interface), one instance per request.
//! - `interceptor.rs`: [`WasmInterceptor`], an interceptor plugin as a layer of
//!   `shoal_cluster`'s stack, calling through `calls`.
//! - `plugin.rs`: a loaded plugin: its current generation, health and failure policy;
//!   `failure_log.rs`: identical failures logged once per window, with a count.
//! - `generation.rs`: one generation of a plugin (what a load or reload makes, numbered in
//!   [`PluginInfo::generation`]): the compiled component, its template and instance pool.
//! - `engine.rs`: [`EngineOptions`] and the one wasmtime engine (pooling allocator, epoch
//!   interruption driven by a ticker thread, compiled-component cache, the linker from `wit`).
//! - `wit/`: WIT compatibility, everything that depends on which `shoal:plugin` versions
//!   exist: [`SUPPORTED_WIT_VERSIONS`], detection, the linker, typed templates and exports
//!   (`mod.rs`), the only `bindgen!`s (`bindings.rs`), and every 0.1.0 conversion
//!   (`v0_1.rs`).
//! - `imports.rs`: the host functions plugins import (current version), acting on `state`.
//! - `state.rs`: the data of every store: the plugin's shared context, memory limiter,
//!   session slot, empty WASI context.
//! - `session.rs`: [`SessionAccess`], lent to a valve for one call; [`MemorySession`].
//! - `facts.rs` ([`ClusterFacts`]), `metrics.rs` ([`MetricSample`]), `types.rs` (the public
//!   host-side types), `error.rs` ([`PluginError`]): leaves, importing nothing above.
//!
//! # What a plugin author can rely on
//!
//! - An instance serves one call at a time. A plugin has up to `max_instances` instances
//!   (default 4); concurrent calls go to different instances, so state kept in the
//!   instance's memory (statics) is per instance: good for caches and compiled config,
//!   not for anything that must be seen by every request (use the session or metrics).
//! - Instances are reused: state persists between calls served by the same instance,
//!   until the plugin is reloaded or reconfigured (a new version starts with fresh
//!   instances; calls in flight finish on the old version).
//! - A call that traps, exceeds its time or memory limit, or returns invalid output
//!   discards its instance; the next call gets a fresh one (after the backoff under the
//!   `reload` policy).
//! - Configuration is fixed for the life of a version. Nothing is granted beyond the
//!   `host` interface: no files, network, environment or clocks other than its own.
//!
//! Failures never surface as errors of the call API: the plugin's [`FailurePolicy`]
//! answers (see its variants). `Err(PluginError)` means a caller or operator mistake.
//!
//! # Calling from async code
//!
//! Calls are synchronous and run on the caller's thread: a call takes microseconds, but a
//! misbehaving plugin holds the thread up to its `call_timeout` (and a call waiting for a
//! free instance up to the same). With the default 100 ms that is tolerable on a tokio
//! worker; with longer limits call through `tokio::task::spawn_blocking`.
mod calls;
mod engine;
mod error;
mod facts;
mod failure_log;
mod generation;
mod http_app;
mod imports;
mod interceptor;
mod metrics;
mod plugin;
mod registry;
mod session;
mod state;
mod types;
mod valve_app;
mod wit;

pub use engine::EngineOptions;
pub use error::PluginError;
pub use facts::{ClusterFacts, MemberFact, SharedFacts};
pub use http_app::{AppFailure, HttpApp, HttpAppHost};
pub use interceptor::WasmInterceptor;
pub use metrics::{MetricKind, MetricSample};
pub use registry::{PluginRegistry, PluginSpec};
pub use session::{MemorySession, SessionAccess};
pub use types::{
    Artifact, DeployDecision, FailureCounts, FailurePolicy, HttpRequest, HttpResponse, Limits,
    PluginInfo, PluginState, PluginWorld, ValveOutcome,
};
pub use valve_app::ValveApp;
pub use wit::{CURRENT_WIT_VERSION, SUPPORTED_WIT_VERSIONS};

// The registry is shared between request handlers and the channel's stack.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<PluginRegistry>();
    shared::<WasmInterceptor>();
};

/// Where the build put the example components (`plugins/target/components`), and why not
/// if it could not (empty when they were built). For tests, benches and demos.
pub mod examples {
    use std::path::PathBuf;

    /// `<dir>/<name>.component.wasm`, or the reason the examples are missing.
    pub fn component_path(name: &str) -> Result<PathBuf, String> {
        let error = env!("SHOAL_PLUGIN_BUILD_ERROR");
        if !error.is_empty() {
            return Err(format!("example plugins were not built: {error}"));
        }
        let path =
            PathBuf::from(env!("SHOAL_PLUGIN_COMPONENTS")).join(format!("{name}.component.wasm"));
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} is missing: rebuild shoal-plugin-host (its build.rs builds plugins/)",
                path.display()
            ))
        }
    }

    /// The bytes of an example component.
    pub fn component(name: &str) -> Result<Vec<u8>, String> {
        let path = component_path(name)?;
        std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}
