//! The data of every store (one per instance) and the host functions plugins import.
use crate::bindings::{channel, deploy_types, host, http, types};
use crate::facts::{ClusterFacts, MemberFact};
use crate::metrics::PluginMetrics;
use crate::session::{SessionResource, SessionSlot};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const MAX_LOG_BYTES: usize = 4096;
/// Log lines a plugin may write per second (all its instances together); the rest are
/// dropped so that a chatty or hostile plugin cannot flood the node's log.
const MAX_LOG_LINES_PER_SEC: u32 = 200;
const MAX_RANDOM_BYTES: u32 = 4096;

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
    fn may_log(&self) -> bool {
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

fn member_info(m: MemberFact) -> types::MemberInfo {
    types::MemberInfo {
        id: m.id,
        name: m.name,
        address: m.address,
        domain: m.domain,
    }
}

impl types::Host for HostState {}
impl channel::Host for HostState {}
impl deploy_types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::LogLevel, mut message: String) {
        if !self.plugin.may_log() {
            return;
        }
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = self.plugin.name.as_str();
        match level {
            types::LogLevel::Trace => tracing::trace!(target: "shoal::plugin", plugin, "{message}"),
            types::LogLevel::Debug => tracing::debug!(target: "shoal::plugin", plugin, "{message}"),
            types::LogLevel::Info => tracing::info!(target: "shoal::plugin", plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(target: "shoal::plugin", plugin, "{message}"),
            types::LogLevel::Error => tracing::error!(target: "shoal::plugin", plugin, "{message}"),
        }
    }

    fn monotonic_now(&mut self) -> u64 {
        self.plugin.epoch.elapsed().as_nanos() as u64
    }

    fn wall_clock_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        use rand::RngCore;
        let mut bytes = vec![0u8; len.min(MAX_RANDOM_BYTES) as usize];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        self.plugin
            .metrics
            .counter_add(&self.plugin.name, &name, delta);
    }

    fn counter_get(&mut self, name: String) -> u64 {
        self.plugin.metrics.counter(&name)
    }

    fn gauge_set(&mut self, name: String, value: i64) {
        self.plugin
            .metrics
            .gauge_set(&self.plugin.name, &name, value);
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.plugin.config.clone()
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.plugin
            .config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn local_member(&mut self) -> types::MemberInfo {
        member_info(self.plugin.facts.local_member())
    }

    fn members(&mut self) -> Vec<types::MemberInfo> {
        self.plugin
            .facts
            .members()
            .into_iter()
            .map(member_info)
            .collect()
    }

    fn active_sessions(&mut self) -> u64 {
        self.plugin.facts.active_sessions()
    }
}

impl http::Host for HostState {}

/// Outside a valve call (a plugin keeping the borrowed handle is impossible: borrows end
/// with the call) every method acts on "no session".
impl http::HostSession for HostState {
    fn id(&mut self, _: Resource<SessionResource>) -> Option<String> {
        self.session.with(|s| s.id()).flatten()
    }
    fn is_new(&mut self, _: Resource<SessionResource>) -> bool {
        self.session.with(|s| s.is_new()).unwrap_or(false)
    }
    fn get(&mut self, _: Resource<SessionResource>, name: String) -> Option<Vec<u8>> {
        self.session.with(|s| s.get(&name)).flatten()
    }
    fn set(&mut self, _: Resource<SessionResource>, name: String, value: Vec<u8>) {
        self.session.with(|s| s.set(&name, value));
    }
    fn remove(&mut self, _: Resource<SessionResource>, name: String) {
        self.session.with(|s| s.remove(&name));
    }
    fn attribute_names(&mut self, _: Resource<SessionResource>) -> Vec<String> {
        self.session
            .with(|s| s.attribute_names())
            .unwrap_or_default()
    }
    fn invalidate(&mut self, _: Resource<SessionResource>) {
        self.session.with(|s| s.invalidate());
    }
    fn create(&mut self, _: Resource<SessionResource>) -> String {
        self.session.with(|s| s.create()).unwrap_or_default()
    }
    fn drop(&mut self, _: Resource<SessionResource>) -> wasmtime::Result<()> {
        Ok(())
    }
}
