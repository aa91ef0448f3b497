//! The host functions plugins import (`shoal:plugin/host`, the `http.session` resource),
//! as of the current WIT version; `wit/v0_1.rs` implements the 0.1.0 ones on top of these.
use crate::facts::MemberFact;
use crate::session::SessionResource;
use crate::state::HostState;
use crate::wit::bindings::{channel, deploy_types, host, http, types};
use std::time::{SystemTime, UNIX_EPOCH};
use wasmtime::component::Resource;

const MAX_LOG_BYTES: usize = 4096;
const MAX_RANDOM_BYTES: u32 = 4096;

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
