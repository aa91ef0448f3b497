//! The data of every store (one per instance): what all instances of a plugin share, the
//! memory limiter, the session slot and the (empty) WASI context. The host functions that
//! act on it are in `imports.rs`.
use crate::facts::ClusterFacts;
use crate::metrics::PluginMetrics;
use crate::session::SessionSlot;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Log lines a plugin may write per second (all its instances together); the rest are
/// dropped so that a chatty or hostile plugin cannot flood the node's log.
const MAX_LOG_LINES_PER_SEC: u32 = 200;

/// What all instances of one plugin share: identity, configuration and where their
/// metrics and facts go.
pub(crate) struct PluginContext {
    pub name: String,
    pub config: Vec<(String, String)>,
    pub metrics: Arc<PluginMetrics>,
    pub facts: Arc<dyn ClusterFacts>,
    /// Origin of `host.monotonic-now`.
    pub epoch: Instant,
    /// Start of the current one-second log window and lines written in it.
    pub log_window: Mutex<(Instant, u32)>,
}

impl PluginContext {
    pub(crate) fn new(
        name: &str,
        config: Vec<(String, String)>,
        metrics: Arc<PluginMetrics>,
        facts: Arc<dyn ClusterFacts>,
        epoch: Instant,
    ) -> PluginContext {
        PluginContext {
            name: name.to_string(),
            config,
            metrics,
            facts,
            epoch,
            log_window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Whether one more log line fits this second's budget.
    pub(crate) fn may_log(&self) -> bool {
        let Ok(mut w) = self.log_window.lock() else {
            return false;
        };
        let now = Instant::now();
        if now.duration_since(w.0).as_secs() >= 1 {
            if w.1 > MAX_LOG_LINES_PER_SEC {
                tracing::warn!(target: "shoal::plugin", plugin = %self.name, dropped = w.1 - MAX_LOG_LINES_PER_SEC, "plugin log lines dropped (over {MAX_LOG_LINES_PER_SEC}/s)");
            }
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
        w.1 <= MAX_LOG_LINES_PER_SEC
    }
}

/// Enforces the plugin's memory limit and remembers that it did, so a failure can be
/// reported as "memory limit" rather than as a generic trap.
pub(crate) struct Limiter {
    pub memory_bytes: usize,
    pub hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            // An error traps right away: a guest allocator would otherwise see a failed
            // grow and usually trap anyway, with a less useful message.
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded",
                self.memory_bytes
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

pub(crate) struct HostState {
    pub plugin: Arc<PluginContext>,
    pub limiter: Limiter,
    pub session: SessionSlot,
    /// WASI with nothing granted: no preopened directories, environment, arguments,
    /// sockets or stdio; only what components built for wasip2 need to link.
    pub wasi: WasiCtx,
    pub table: ResourceTable,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<PluginContext>, memory_bytes: usize) -> HostState {
        HostState {
            plugin,
            limiter: Limiter {
                memory_bytes,
                hit: false,
            },
            session: SessionSlot::default(),
            // Spelled out although they are the defaults: a default changing upstream must
            // not grant anything.
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .socket_addr_check(|_, _| Box::pin(async { false }))
                .build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
