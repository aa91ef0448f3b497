//! Validation of the `[cluster]` section: every bad value is reported with its dotted key.
use super::{ClusterConfig, Provider};
use std::net::{IpAddr, Ipv4Addr};

/// A bad value: the dotted key and what to do about it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: format!("cluster.{key}"),
        message: message.into(),
    }
}

impl ClusterConfig {
    /// Checks every value; the first problem found is returned with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !name_ok(&self.name) {
            return Err(err(
                "name",
                format!(
                    "{:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                    self.name
                ),
            ));
        }
        if self.domain.is_empty() {
            return Err(err("domain", "must not be empty"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_frame) {
            return Err(err(
                "max_frame",
                format!("{} is outside 1024..=67108864 bytes", self.max_frame),
            ));
        }
        let addr: IpAddr = self.receiver.address.parse().map_err(|_| {
            err(
                "receiver.address",
                format!("{:?} is not an IP address", self.receiver.address),
            )
        })?;
        if addr.is_unspecified() {
            return Err(err(
                "receiver.address",
                "an unspecified address cannot be advertised to members; give this host's address",
            ));
        }
        if self.receiver.auto_bind == 0 {
            return Err(err(
                "receiver.auto_bind",
                "must be at least 1 (the number of ports tried)",
            ));
        }
        if self.sender.timeout_ms == 0 || self.sender.connect_timeout_ms == 0 {
            return Err(err(
                "sender",
                "timeout_ms and connect_timeout_ms must be > 0",
            ));
        }
        if self.sender.queue_bytes < self.max_frame {
            return Err(err("sender.queue_bytes", "must be at least max_frame"));
        }
        self.validate_membership()?;
        self.validate_detector()?;
        for (i, ic) in self.interceptor.iter().enumerate() {
            if ic.name.is_empty() {
                return Err(err(&format!("interceptor[{i}].name"), "must not be empty"));
            }
        }
        Ok(())
    }

    fn validate_membership(&self) -> Result<(), ConfigError> {
        let m = &self.membership;
        for (i, s) in m.members.iter().enumerate() {
            let port_ok = s
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(err(
                    &format!("membership.members[{i}]"),
                    format!("{s:?} is not host:port"),
                ));
            }
        }
        if m.refresh_ms == 0 {
            return Err(err("membership.refresh_ms", "must be > 0"));
        }
        match m.expected_members {
            Some(0) => {
                return Err(err(
                    "membership.expected_members",
                    "must be >= 1 (the cluster's member count, this node included)",
                ))
            }
            Some(_) if m.provider == Provider::Static => {
                return Err(err(
                    "membership.expected_members",
                    "is for multicast and DNS membership; with provider = \"static\" the members list is the expected count (remove one of them)",
                ))
            }
            _ => {}
        }
        match m.provider {
            Provider::Static if m.members.is_empty() => {
                // A lone node is legal (it waits for others to list it); nothing to check.
            }
            Provider::Multicast => {
                let a: Ipv4Addr = m.multicast.address.parse().map_err(|_| {
                    err(
                        "membership.multicast.address",
                        format!("{:?} is not an IPv4 address", m.multicast.address),
                    )
                })?;
                if !a.is_multicast() {
                    return Err(err(
                        "membership.multicast.address",
                        format!("{a} is not a multicast address (224.0.0.0/4)"),
                    ));
                }
                if m.multicast.port == 0 || m.multicast.frequency_ms == 0 {
                    return Err(err(
                        "membership.multicast",
                        "port and frequency_ms must be > 0",
                    ));
                }
                if let Some(i) = &m.multicast.interface {
                    i.parse::<Ipv4Addr>().map_err(|_| {
                        err(
                            "membership.multicast.interface",
                            format!("{i:?} is not an IPv4 interface address"),
                        )
                    })?;
                }
            }
            Provider::Dns if m.dns.name.is_empty() => {
                return Err(err(
                    "membership.dns.name",
                    "provider = \"dns\" needs a name to resolve",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_detector(&self) -> Result<(), ConfigError> {
        let f = &self.failure_detector;
        let all = [
            ("ping_interval_ms", f.ping_interval_ms),
            ("suspect_after_ms", f.suspect_after_ms),
            ("verify_timeout_ms", f.verify_timeout_ms),
            ("heartbeat_ms", f.heartbeat_ms),
            ("reconnect_min_ms", f.reconnect_min_ms),
            ("reconnect_max_ms", f.reconnect_max_ms),
        ];
        for (k, v) in all {
            if v == 0 {
                return Err(err(&format!("failure_detector.{k}"), "must be > 0"));
            }
        }
        if f.suspect_after_ms <= f.ping_interval_ms {
            return Err(err(
                "failure_detector.suspect_after_ms",
                "must exceed ping_interval_ms, or idle members would be suspected",
            ));
        }
        if f.reconnect_max_ms < f.reconnect_min_ms {
            return Err(err(
                "failure_detector.reconnect_max_ms",
                "must be >= reconnect_min_ms",
            ));
        }
        Ok(())
    }
}
