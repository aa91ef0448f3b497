//! The one error type of shoal-net.
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot bind the cluster receiver on {address} ports {first}..={last}: {reason} (free a port, or change cluster.receiver.port / auto_bind)")]
    Bind {
        address: String,
        first: u16,
        last: u16,
        reason: String,
    },
    #[error("multicast membership on {group}: {reason} (check cluster.membership.multicast, or use provider = \"static\")")]
    Multicast { group: SocketAddr, reason: String },
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("the channel has shut down")]
    Closed,
}
