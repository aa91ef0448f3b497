//! The errors of shoal-net: [`NetError`] (start-up and configuration) and
//! [`StackChangeError`] (a refused change of the live interceptor stack).
use shoal_cluster::StackError;
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

/// Why a change of the live interceptor stack was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StackChangeError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("the channel has shut down")]
    Closed,
}
