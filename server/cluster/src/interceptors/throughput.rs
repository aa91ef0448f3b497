//! Throughput: counts what passes (Tomcat's ThroughputInterceptor), logging a summary every
//! `interval` messages.
use super::opts::Opts;
use crate::interceptor::{ChannelMessage, Interceptor, InterceptorError};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThroughputConfig {
    pub option_flag: u32,
    /// Log a summary every this many messages sent (Tomcat: interval, 10000).
    pub interval: u64,
}

impl Default for ThroughputConfig {
    fn default() -> Self {
        ThroughputConfig {
            option_flag: 0,
            interval: 10_000,
        }
    }
}

impl ThroughputConfig {
    pub const KEYS: &'static [&'static str] = &["option_flag", "interval"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let d = Self::default();
        let mut r = Opts::new("Throughput", o);
        let c = ThroughputConfig {
            option_flag: r.option_flag(d.option_flag)?,
            interval: r
                .parse("interval", "a positive integer")?
                .unwrap_or(d.interval),
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
}

#[derive(Default)]
pub struct Throughput {
    pub config: ThroughputConfig,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_messages: u64,
    pub rx_messages: u64,
    /// Messages a layer below refused (counted by the stack as errors of this layer's
    /// neighbours; here: messages without payload, which Tomcat also counts as errors).
    pub errors: u64,
    started: Option<Instant>,
}

impl Throughput {
    pub fn new(config: ThroughputConfig) -> Self {
        Throughput {
            config,
            ..Default::default()
        }
    }
}

impl Interceptor for Throughput {
    fn name(&self) -> &str {
        "Throughput"
    }
    fn option_flag(&self) -> u32 {
        self.config.option_flag
    }
    fn on_send(
        &mut self,
        now: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        let started = *self.started.get_or_insert(now);
        self.tx_messages += 1;
        self.tx_bytes += (msg.payload.len() * msg.destinations.len().max(1)) as u64;
        if msg.payload.is_empty() {
            self.errors += 1;
        }
        if self.config.interval > 0 && self.tx_messages.is_multiple_of(self.config.interval) {
            let secs = now
                .saturating_duration_since(started)
                .as_secs_f64()
                .max(1e-9);
            tracing::info!(
                tx_messages = self.tx_messages,
                tx_mb = self.tx_bytes as f64 / 1e6,
                tx_mb_per_s = self.tx_bytes as f64 / 1e6 / secs,
                rx_messages = self.rx_messages,
                "throughput"
            );
        }
        out.push(msg);
        Ok(())
    }
    fn on_receive(
        &mut self,
        _now: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        self.rx_messages += 1;
        self.rx_bytes += msg.payload.len() as u64;
        out.push(msg);
        Ok(())
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("tx_bytes", self.tx_bytes),
            ("rx_bytes", self.rx_bytes),
            ("tx_messages", self.tx_messages),
            ("rx_messages", self.rx_messages),
            ("errors", self.errors),
        ]
    }
    fn describe(&self) -> Vec<(String, String)> {
        vec![("interval".into(), self.config.interval.to_string())]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
