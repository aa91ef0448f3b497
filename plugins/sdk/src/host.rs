//! What the node offers every plugin, whichever world it implements.
#[cfg(feature = "deploy-hook")]
use crate::deploy::{raw_host as raw, LogLevel, MemberInfo};
#[cfg(feature = "channel-interceptor")]
use crate::interceptor::{raw_host as raw, LogLevel, MemberInfo};
#[cfg(feature = "url-filter")]
use crate::url_filter::{raw_host as raw, LogLevel, MemberInfo};
#[cfg(feature = "valve")]
use crate::valve::{raw_host as raw, LogLevel, MemberInfo};

pub fn log_debug(message: &str) {
    raw::log(LogLevel::Debug, message)
}
pub fn log_info(message: &str) {
    raw::log(LogLevel::Info, message)
}
pub fn log_warn(message: &str) {
    raw::log(LogLevel::Warn, message)
}
pub fn log_error(message: &str) {
    raw::log(LogLevel::Error, message)
}
/// Nanoseconds since a fixed point; never goes backwards.
pub fn monotonic_now() -> u64 {
    raw::monotonic_now()
}
/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> u64 {
    raw::wall_clock_ms()
}
/// Random bytes from the node (at most 4096 per call).
pub fn random_bytes(len: u32) -> Vec<u8> {
    raw::random_bytes(len)
}
/// Adds to the counter `plugin.<name>.<counter>` of the node's metrics.
pub fn counter_add(name: &str, delta: u64) {
    raw::counter_add(name, delta)
}
/// The total of counter `name` over every instance of this plugin (0 if never added to).
/// New in `shoal:plugin@0.2.0`.
pub fn counter_get(name: &str) -> u64 {
    raw::counter_get(name)
}
/// Sets the gauge `plugin.<name>.<gauge>` of the node's metrics.
pub fn gauge_set(name: &str, value: i64) {
    raw::gauge_set(name, value)
}
/// The whole configuration given at load time.
pub fn config() -> Vec<(String, String)> {
    raw::config()
}
/// One configuration value.
pub fn config_get(key: &str) -> Option<String> {
    raw::config_get(key)
}
pub fn local_member() -> MemberInfo {
    raw::local_member()
}
pub fn members() -> Vec<MemberInfo> {
    raw::members()
}
/// Sessions held by this node.
pub fn active_sessions() -> u64 {
    raw::active_sessions()
}
