//! The `[cluster]` section of a node's TOML file: plain serde structs with Tomcat's defaults,
//! unknown keys refused (`deny_unknown_fields`), checked in one place by [`ClusterConfig::validate`].
//! The binary owns the top-level file struct and adds the file name to errors.
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// Environment variable read for the cluster secret when the file does not hold one.
pub const SECRET_ENV: &str = "SHOAL_CLUSTER_SECRET";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's route (Tomcat's jvmRoute): its member name and the suffix of its session ids.
    pub name: String,
    /// Cluster partition: handshakes from other domains are refused (DomainFilter).
    pub domain: String,
    /// Shared cluster secret. Prefer `secret_env` so the file can be world-readable.
    pub secret: Option<String>,
    /// Environment variable that holds the secret when `secret` is not set.
    pub secret_env: String,
    /// Largest frame sent or accepted, bytes (Fragmentation splits bigger messages).
    pub max_frame: usize,
    pub receiver: ReceiverConfig,
    pub sender: SenderConfig,
    pub membership: MembershipConfig,
    pub failure_detector: FailureDetectorConfig,
    /// Interceptor stack, top (application side) first.
    pub interceptor: Vec<InterceptorConfig>,
    /// Small metadata published with the member (e.g. `contexts = "/app"`).
    pub meta: BTreeMap<String, String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: "node1".into(),
            domain: "default".into(),
            secret: None,
            secret_env: SECRET_ENV.into(),
            max_frame: shoal_cluster::frame::DEFAULT_MAX_FRAME,
            receiver: ReceiverConfig::default(),
            sender: SenderConfig::default(),
            membership: MembershipConfig::default(),
            failure_detector: FailureDetectorConfig::default(),
            interceptor: Vec::new(),
            meta: BTreeMap::new(),
        }
    }
}

/// Tomcat's NioReceiver: TCP, port 4000, auto-bind over 100 ports.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// Address to listen on and to advertise to the other members.
    pub address: String,
    /// First port tried; 0 lets the OS choose (tests).
    pub port: u16,
    /// How many consecutive ports to try from `port` (Tomcat's autoBind).
    pub auto_bind: u16,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            address: "127.0.0.1".into(),
            port: 4000,
            auto_bind: 100,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderConfig {
    /// Ack wait for use_ack / synchronized_ack sends (Tomcat's sender timeout).
    pub timeout_ms: u64,
    /// TCP connect timeout for member connections and failure-detector probes.
    pub connect_timeout_ms: u64,
    /// MessageDispatch queue for asynchronous sends, bytes (Tomcat's maxQueueSize, 64 MiB).
    /// When full, `send` waits (and `queue_full` counts); it never turns synchronous.
    pub queue_bytes: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            timeout_ms: 3000,
            connect_timeout_ms: 1000,
            queue_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Static,
    Multicast,
    Dns,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MembershipConfig {
    pub provider: Provider,
    /// Static members as `host:port` (their receivers). The local node may be listed too.
    pub members: Vec<String>,
    /// How often the static list is offered again (heals partitions and restarts), ms.
    pub refresh_ms: u64,
    pub multicast: MulticastConfig,
    pub dns: DnsConfig,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            provider: Provider::Static,
            members: Vec::new(),
            refresh_ms: 2000,
            multicast: MulticastConfig::default(),
            dns: DnsConfig::default(),
        }
    }
}

/// Tomcat's McastService defaults: 228.0.0.4:45564, a beacon every 500 ms.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MulticastConfig {
    pub address: String,
    pub port: u16,
    pub frequency_ms: u64,
    /// Multicast TTL; 0 keeps beacons on this host.
    pub ttl: u32,
    /// IPv4 address of the interface to send and join on (Tomcat's `bind`); unset = default.
    pub interface: Option<String>,
    /// Receive this host's own beacons (needed for several nodes on one machine).
    pub loopback: bool,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        MulticastConfig {
            address: "228.0.0.4".into(),
            port: 45564,
            frequency_ms: 500,
            ttl: 1,
            interface: None,
            loopback: true,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name resolved periodically (e.g. a Kubernetes headless service); every address is a candidate.
    pub name: String,
    /// Receiver port of the members behind the name; unset = this node's receiver port.
    pub port: Option<u16>,
    /// Resolution period, ms (default 5000).
    pub interval_ms: Option<u64>,
}

/// Timings of TcpPing + TcpFailureDetector. Defaults detect a killed member in well under 1 s.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailureDetectorConfig {
    /// A Ping goes to a member that was sent nothing for this long.
    pub ping_interval_ms: u64,
    /// Silence after which a member is suspected and verified over TCP.
    pub suspect_after_ms: u64,
    /// Time the verification (fresh connect + challenge) may take before the drop.
    pub verify_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

impl Default for FailureDetectorConfig {
    fn default() -> Self {
        FailureDetectorConfig {
            ping_interval_ms: 200,
            suspect_after_ms: 600,
            verify_timeout_ms: 300,
            heartbeat_ms: 100,
            reconnect_min_ms: 50,
            reconnect_max_ms: 2000,
        }
    }
}

/// One `[[cluster.interceptor]]` entry: `name` plus that interceptor's own keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InterceptorConfig {
    pub name: String,
    /// Every other key of the entry, as text (numbers and booleans are accepted and converted).
    #[serde(flatten, deserialize_with = "string_map")]
    pub options: BTreeMap<String, String>,
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Scalar::S(s) => s,
                Scalar::I(i) => i.to_string(),
                Scalar::F(f) => f.to_string(),
                Scalar::B(b) => b.to_string(),
            };
            (k, s)
        })
        .collect())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        ClusterConfig::default().validate().expect("defaults valid");
        let mut c = ClusterConfig::default();
        c.receiver.address = "0.0.0.0".into();
        assert_eq!(
            c.validate().map_err(|e| e.key),
            Err("cluster.receiver.address".into())
        );
        let mut c = ClusterConfig::default();
        c.membership.members = vec!["127.0.0.1".into()];
        assert_eq!(
            c.validate().map_err(|e| e.key),
            Err("cluster.membership.members[0]".into())
        );
        let mut c = ClusterConfig::default();
        c.membership.provider = Provider::Multicast;
        c.membership.multicast.address = "10.0.0.1".into();
        assert_eq!(
            c.validate().map_err(|e| e.key),
            Err("cluster.membership.multicast.address".into())
        );
        let mut c = ClusterConfig::default();
        c.failure_detector.suspect_after_ms = 100;
        assert_eq!(
            c.validate().map_err(|e| e.key),
            Err("cluster.failure_detector.suspect_after_ms".into())
        );
    }
}
