//! The group channel: interceptor stack, send options, per-peer traffic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One interceptor of the stack. Send runs top-down (index 0 first), receive bottom-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Interceptor {
    #[schema(example = "TcpFailureDetector")]
    pub name: String,
    /// The Wasm plugin behind it, `null` for a native interceptor.
    pub plugin: Option<String>,
    /// Option bits it acts on (0 = every message).
    pub option_flag: u32,
    pub enabled: bool,
    /// Its configuration, as given in the config file or by the plugin's load call.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Its counters, e.g. `tx_bytes`, `rx_messages`, `drops`.
    pub counters: BTreeMap<String, u64>,
}

/// A send option bit (Tomcat's Channel.SEND_OPTIONS_*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OptionFlag {
    #[schema(example = "use_ack")]
    pub name: String,
    pub bit: u32,
    /// Set in the default options of this node's sends.
    pub default: bool,
}

/// How this node sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendOptions {
    pub default_flags: u32,
    pub flags: Vec<OptionFlag>,
    pub ack_timeout_ms: u64,
    /// Bound of the asynchronous send queue (full queue = backpressure, never a silent switch).
    pub async_queue_capacity: u64,
    pub async_queue_depth: u64,
    pub async_queue_full_total: u64,
}

/// The channel as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelInfo {
    pub interceptors: Vec<Interceptor>,
    pub send_options: SendOptions,
}

/// Cumulative traffic with one peer; rates come from two samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerTraffic {
    /// Member name of the peer.
    pub peer: String,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub acks: u64,
    pub failures: u64,
    pub queue_depth: u64,
    /// Sample time, unix milliseconds.
    pub at_ms: u64,
}
