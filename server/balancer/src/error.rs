//! The one error type of the balancer library.

/// What can go wrong when configuring or starting the balancer.
///
/// Runtime failures of single requests are not errors of this type: they become 502/503/504
/// responses with a plain-text body and are counted in [`crate::BalancerStats`].
#[derive(Debug, thiserror::Error)]
pub enum BalancerError {
    /// A `[[backends]]` entry cannot be used; `index` counts from 0 in the configured list.
    #[error("backend #{index} (route {route:?}, addr {addr:?}): {reason}")]
    InvalidBackend {
        index: usize,
        route: String,
        addr: String,
        reason: String,
    },
    /// Two backends claim the same route, so sticky requests would be ambiguous.
    #[error("backend route {route:?} is configured twice (entries #{first} and #{second}); every node needs its own jvmRoute")]
    DuplicateRoute {
        route: String,
        first: usize,
        second: usize,
    },
    /// The config file could not be read or parsed; `reason` names the line or key.
    #[error("balancer config {path}: {reason}")]
    ConfigFile { path: String, reason: String },
    /// A top-level setting is unusable; `key` is the config key.
    #[error("balancer setting `{key}`: {reason}")]
    InvalidSetting { key: &'static str, reason: String },
}
