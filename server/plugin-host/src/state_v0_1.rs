//! The host imports of `shoal:plugin@0.1.0`, for components built against it: each call is
//! converted to the current (0.2.0) import and its result back. 0.1.0 lacks `counter-get`;
//! everything else has the same meaning in both versions.
use crate::bindings::v0_1::{channel, deploy_types, host, http, types};
use crate::bindings::{host as cur_host, http as cur_http, types as cur_types};
use crate::session::SessionResource;
use crate::state::HostState;
use wasmtime::component::Resource;

fn level(l: types::LogLevel) -> cur_types::LogLevel {
    match l {
        types::LogLevel::Trace => cur_types::LogLevel::Trace,
        types::LogLevel::Debug => cur_types::LogLevel::Debug,
        types::LogLevel::Info => cur_types::LogLevel::Info,
        types::LogLevel::Warn => cur_types::LogLevel::Warn,
        types::LogLevel::Error => cur_types::LogLevel::Error,
    }
}

fn member(m: cur_types::MemberInfo) -> types::MemberInfo {
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
impl http::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, l: types::LogLevel, message: String) {
        cur_host::Host::log(self, level(l), message)
    }
    fn monotonic_now(&mut self) -> u64 {
        cur_host::Host::monotonic_now(self)
    }
    fn wall_clock_ms(&mut self) -> u64 {
        cur_host::Host::wall_clock_ms(self)
    }
    fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        cur_host::Host::random_bytes(self, len)
    }
    fn counter_add(&mut self, name: String, delta: u64) {
        cur_host::Host::counter_add(self, name, delta)
    }
    fn gauge_set(&mut self, name: String, value: i64) {
        cur_host::Host::gauge_set(self, name, value)
    }
    fn config(&mut self) -> Vec<(String, String)> {
        cur_host::Host::config(self)
    }
    fn config_get(&mut self, key: String) -> Option<String> {
        cur_host::Host::config_get(self, key)
    }
    fn local_member(&mut self) -> types::MemberInfo {
        member(cur_host::Host::local_member(self))
    }
    fn members(&mut self) -> Vec<types::MemberInfo> {
        cur_host::Host::members(self)
            .into_iter()
            .map(member)
            .collect()
    }
    fn active_sessions(&mut self) -> u64 {
        cur_host::Host::active_sessions(self)
    }
}

/// The session resource is the same host type in both versions: delegate as is.
impl http::HostSession for HostState {
    fn id(&mut self, r: Resource<SessionResource>) -> Option<String> {
        cur_http::HostSession::id(self, r)
    }
    fn is_new(&mut self, r: Resource<SessionResource>) -> bool {
        cur_http::HostSession::is_new(self, r)
    }
    fn get(&mut self, r: Resource<SessionResource>, name: String) -> Option<Vec<u8>> {
        cur_http::HostSession::get(self, r, name)
    }
    fn set(&mut self, r: Resource<SessionResource>, name: String, value: Vec<u8>) {
        cur_http::HostSession::set(self, r, name, value)
    }
    fn remove(&mut self, r: Resource<SessionResource>, name: String) {
        cur_http::HostSession::remove(self, r, name)
    }
    fn attribute_names(&mut self, r: Resource<SessionResource>) -> Vec<String> {
        cur_http::HostSession::attribute_names(self, r)
    }
    fn invalidate(&mut self, r: Resource<SessionResource>) {
        cur_http::HostSession::invalidate(self, r)
    }
    fn create(&mut self, r: Resource<SessionResource>) -> String {
        cur_http::HostSession::create(self, r)
    }
    fn drop(&mut self, r: Resource<SessionResource>) -> wasmtime::Result<()> {
        cur_http::HostSession::drop(self, r)
    }
}
