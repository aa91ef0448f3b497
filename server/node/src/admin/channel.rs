//! The channel as the admin API shows it: interceptor stack, send options, per-peer traffic.
use super::NodeBackend;
use shoal_admin::dto::{now_ms, ChannelInfo, Interceptor, OptionFlag, PeerTraffic, SendOptions};
use shoal_cluster::SendOptions as Opts;

/// Tomcat's Channel.SEND_OPTIONS_* bits, by the names the API uses.
const FLAGS: [(&str, u32); 7] = [
    ("byte_message", Opts::BYTE_MESSAGE),
    ("use_ack", Opts::USE_ACK),
    ("synchronized_ack", Opts::SYNCHRONIZED_ACK),
    ("asynchronous", Opts::ASYNCHRONOUS),
    ("secure", Opts::SECURE),
    ("udp", Opts::UDP),
    ("multicast", Opts::MULTICAST),
];

impl NodeBackend {
    /// The stack, top first, with live counters from the channel's driver (the start-up
    /// description if the channel has stopped). Plugin layers are named `wasm:<plugin>`.
    async fn interceptors(&self) -> Vec<Interceptor> {
        let mut layers = self.node.channel.interceptors().await;
        if layers.is_empty() {
            layers = self.node.layers.clone();
        }
        let registry = &self.node.plugins.registry;
        // A plugin layer passes messages through while its plugin is disabled.
        let enabled = |plugin: Option<&str>| {
            plugin.is_none_or(|p| {
                registry
                    .info(p)
                    .is_ok_and(|i| i.state == shoal_plugin_host::PluginState::Enabled)
            })
        };
        layers
            .into_iter()
            .map(|l| Interceptor {
                plugin: l.name.strip_prefix("wasm:").map(str::to_owned),
                enabled: enabled(l.name.strip_prefix("wasm:")),
                name: l.name,
                option_flag: l.option_flag,
                config: serde_json::Value::Object(
                    l.config
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect(),
                ),
                counters: l.counters.into_iter().collect(),
            })
            .collect()
    }

    pub(super) async fn channel_info(&self) -> ChannelInfo {
        let stats = self.node.channel.stats().await;
        // Sessions of a sync context go with these options; async contexts with ASYNCHRONOUS.
        let default_flags = crate::link::SYNC_OPTIONS;
        ChannelInfo {
            interceptors: self.interceptors().await,
            send_options: SendOptions {
                default_flags,
                flags: FLAGS
                    .iter()
                    .map(|(name, bit)| OptionFlag {
                        name: (*name).into(),
                        bit: *bit,
                        default: default_flags & bit != 0,
                    })
                    .collect(),
                ack_timeout_ms: self.node.ack_timeout_ms,
                async_queue_capacity: stats.queue_bytes_capacity,
                async_queue_depth: stats.queue_bytes_in_use,
                async_queue_full_total: stats.queue_full,
            },
        }
    }

    pub(super) async fn traffic(&self) -> Vec<PeerTraffic> {
        let stats = self.node.channel.stats().await;
        let at_ms = now_ms();
        stats
            .peers
            .into_iter()
            .map(|p| PeerTraffic {
                peer: if p.name.is_empty() { p.member } else { p.name },
                messages_sent: p.messages_sent,
                messages_received: p.messages_received,
                bytes_sent: p.bytes_sent,
                bytes_received: p.bytes_received,
                acks: p.acks_received,
                failures: p.failures,
                queue_depth: p.queue_depth_bytes,
                at_ms,
            })
            .collect()
    }
}
