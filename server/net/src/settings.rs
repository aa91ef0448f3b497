//! Resolved runtime settings of a channel (what [`crate::Channel::start`] takes), built from a
//! validated [`ClusterConfig`] plus the secret. Tests and benches build them directly.
use crate::config::{ClusterConfig, MembershipConfig};
use crate::error::NetError;
use shoal_cluster::{ClusterSecret, NodeConfig};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ChannelSettings {
    pub name: String,
    pub meta: BTreeMap<String, String>,
    /// Receiver address (listened on and advertised).
    pub bind: IpAddr,
    pub port: u16,
    pub auto_bind: u16,
    pub node: NodeConfig,
    pub connect_timeout: Duration,
    /// MessageDispatch budget for asynchronous sends, bytes.
    pub queue_bytes: usize,
    /// Received payload bytes the application may leave unread before this node stops
    /// reading from its peers (backpressure through TCP).
    pub incoming_bytes: usize,
    pub membership: MembershipConfig,
    /// Seed of the core's RNG (nonces are still fresh per process unless set).
    pub seed: Option<u64>,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl ClusterConfig {
    /// The secret from `secret`, else from the environment variable named by `secret_env`.
    /// `None` = no secret: the node runs loopback-only (see README, "Cluster authentication").
    pub fn resolve_secret(&self) -> Option<String> {
        match &self.secret {
            Some(s) if !s.is_empty() => Some(s.clone()),
            _ => std::env::var(&self.secret_env)
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// Validates and resolves. Without a secret a non-loopback receiver address is replaced by
    /// 127.0.0.1 with a warning, so an unauthenticated node is never reachable from the network.
    pub fn settings(&self, secret: Option<String>) -> Result<ChannelSettings, NetError> {
        self.validate()?;
        let mut bind: IpAddr = self.receiver.address.parse().map_err(|_| {
            NetError::Config(crate::config::ConfigError {
                key: "cluster.receiver.address".into(),
                message: "not an IP address".into(),
            })
        })?;
        let secret = match secret {
            Some(s) => ClusterSecret::new(s.into_bytes()),
            None => {
                tracing::warn!(
                    "no cluster secret (cluster.secret or ${}): this node accepts any peer and binds loopback only; set a secret for a real cluster",
                    self.secret_env
                );
                if !bind.is_loopback() {
                    tracing::warn!("receiver address {bind} replaced by 127.0.0.1 because there is no cluster secret");
                    bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
                }
                ClusterSecret::new(Vec::new())
            }
        };
        let f = &self.failure_detector;
        Ok(ChannelSettings {
            name: self.name.clone(),
            meta: self.meta.clone(),
            bind,
            port: self.receiver.port,
            auto_bind: self.receiver.auto_bind,
            node: NodeConfig {
                secret,
                domain: self.domain.clone(),
                ping_interval: ms(f.ping_interval_ms),
                suspect_after: ms(f.suspect_after_ms),
                verify_timeout: ms(f.verify_timeout_ms),
                ack_timeout: ms(self.sender.timeout_ms),
                reconnect_min: ms(f.reconnect_min_ms),
                reconnect_max: ms(f.reconnect_max_ms),
                heartbeat: ms(f.heartbeat_ms),
                max_frame: self.max_frame,
                ..NodeConfig::default()
            },
            connect_timeout: ms(self.sender.connect_timeout_ms),
            queue_bytes: self.sender.queue_bytes,
            incoming_bytes: 64 * 1024 * 1024,
            membership: self.membership.clone(),
            seed: None,
        })
    }
}

/// Settings for a loopback test node: OS-chosen port, the given secret, static members.
pub fn loopback_settings(name: &str, secret: &str, members: Vec<String>) -> ChannelSettings {
    let mut c = ClusterConfig {
        name: name.into(),
        ..ClusterConfig::default()
    };
    c.receiver.port = 0;
    c.membership.members = members;
    // Defaults are valid and a fixed name is checked by the caller's tests; fall back loudly.
    match c.settings(Some(secret.into())) {
        Ok(s) => s,
        Err(e) => panic!("loopback_settings({name:?}): {e}"),
    }
}
