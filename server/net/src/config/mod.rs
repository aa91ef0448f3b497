//! The `[cluster]` section of a node's TOML file: plain serde structs with Tomcat's defaults,
//! unknown keys refused (`deny_unknown_fields`), checked in one place by [`ClusterConfig::validate`].
//! The binary owns the top-level file struct and adds the file name to errors.
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

mod check;

pub use check::ConfigError;

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
            max_frame: shoal_cluster::DEFAULT_MAX_FRAME,
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
    /// How many members the cluster has (this node included), for split-brain protection
    /// (`partition = "majority"`) when there is no static list to count (multicast, DNS).
    /// With a static list, the list is the count and this must be unset. Unset without a
    /// static list: the cluster's size is unknown and no majority is enforced.
    pub expected_members: Option<usize>,
    pub multicast: MulticastConfig,
    pub dns: DnsConfig,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            provider: Provider::Static,
            members: Vec::new(),
            refresh_ms: 2000,
            expected_members: None,
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
