//! Every conversion between `shoal:plugin@0.1.0` and the current version, in one place
//! (dropping 0.1.0 means deleting this file, its module in `bindings.rs` and its variants in
//! `mod.rs`):
//! - the 0.1.0 host imports, for components built against it: each call is converted to
//!   the current (0.2.0) import and its result back. 0.1.0 lacks `counter-get`; everything
//!   else has the same meaning in both versions;
//! - the 0.1.0 channel-interceptor exports, called with the current types: 0.1.0's
//!   `send-verdict` lacks `narrow`, everything else has the same shape.
use super::bindings::types as cur_types;
use super::bindings::v0_1::interceptor::ChannelInterceptor;
use super::bindings::v0_1::{channel, deploy_types, host, http, types};
use super::bindings::{channel as cur_channel, host as cur_host, http as cur_http};
use crate::session::SessionResource;
use crate::state::HostState;
use wasmtime::component::Resource;
use wasmtime::Store;

impl From<types::LogLevel> for cur_types::LogLevel {
    fn from(l: types::LogLevel) -> Self {
        match l {
            types::LogLevel::Trace => cur_types::LogLevel::Trace,
            types::LogLevel::Debug => cur_types::LogLevel::Debug,
            types::LogLevel::Info => cur_types::LogLevel::Info,
            types::LogLevel::Warn => cur_types::LogLevel::Warn,
            types::LogLevel::Error => cur_types::LogLevel::Error,
        }
    }
}

impl From<cur_types::MemberInfo> for types::MemberInfo {
    fn from(m: cur_types::MemberInfo) -> Self {
        types::MemberInfo {
            id: m.id,
            name: m.name,
            address: m.address,
            domain: m.domain,
        }
    }
}

impl From<channel::SendVerdict> for cur_channel::SendVerdict {
    fn from(v: channel::SendVerdict) -> Self {
        match v {
            channel::SendVerdict::Pass => cur_channel::SendVerdict::Pass,
            channel::SendVerdict::Rewrite(p) => cur_channel::SendVerdict::Rewrite(p),
            channel::SendVerdict::Drop => cur_channel::SendVerdict::Drop,
            channel::SendVerdict::Error(e) => cur_channel::SendVerdict::Error(e),
        }
    }
}

impl From<channel::ReceiveVerdict> for cur_channel::ReceiveVerdict {
    fn from(v: channel::ReceiveVerdict) -> Self {
        match v {
            channel::ReceiveVerdict::Pass => cur_channel::ReceiveVerdict::Pass,
            channel::ReceiveVerdict::Rewrite(p) => cur_channel::ReceiveVerdict::Rewrite(p),
            channel::ReceiveVerdict::Drop => cur_channel::ReceiveVerdict::Drop,
        }
    }
}

/// Runs `call` on `message` as a 0.1.0 record: its fields are moved in and back out, not
/// copied (the payload can be large).
fn lend<R>(message: &mut cur_channel::Message, call: impl FnOnce(&channel::Message) -> R) -> R {
    let empty = cur_channel::Message {
        id: 0,
        from: String::new(),
        destinations: Vec::new(),
        options: 0,
        payload: Vec::new(),
    };
    let m = std::mem::replace(message, empty);
    let old = channel::Message {
        id: m.id,
        from: m.from,
        destinations: m.destinations,
        options: m.options,
        payload: m.payload,
    };
    let result = call(&old);
    *message = cur_channel::Message {
        id: old.id,
        from: old.from,
        destinations: old.destinations,
        options: old.options,
        payload: old.payload,
    };
    result
}

pub(super) fn on_send(
    interceptor: &ChannelInterceptor,
    store: &mut Store<HostState>,
    message: &mut cur_channel::Message,
) -> wasmtime::Result<cur_channel::SendVerdict> {
    lend(message, |m| interceptor.call_on_send(store, m)).map(Into::into)
}

pub(super) fn on_receive(
    interceptor: &ChannelInterceptor,
    store: &mut Store<HostState>,
    message: &mut cur_channel::Message,
) -> wasmtime::Result<cur_channel::ReceiveVerdict> {
    lend(message, |m| interceptor.call_on_receive(store, m)).map(Into::into)
}

impl types::Host for HostState {}
impl channel::Host for HostState {}
impl deploy_types::Host for HostState {}
impl http::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, l: types::LogLevel, message: String) {
        cur_host::Host::log(self, l.into(), message)
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
        cur_host::Host::local_member(self).into()
    }
    fn members(&mut self) -> Vec<types::MemberInfo> {
        cur_host::Host::members(self)
            .into_iter()
            .map(Into::into)
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
