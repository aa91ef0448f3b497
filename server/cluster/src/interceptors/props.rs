//! Tomcat interceptors that are properties of the node or of shoal-net rather than message
//! transformations. They sit in the stack as pass-through layers so that the stack lists
//! them with their settings (admin API), and `configure_node` copies their settings into
//! the `NodeConfig` (TcpFailureDetector, TcpPing). StaticMembership and MessageDispatch are
//! read by shoal-net (discovery list, async queue) through `InterceptorStack::get::<T>()`.
use super::opts::Opts;
use crate::interceptor::{Interceptor, InterceptorStack};
use crate::node::NodeConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

macro_rules! passthrough {
    ($ty:ident, $name:literal) => {
        impl Interceptor for $ty {
            fn name(&self) -> &str {
                $name
            }
            fn describe(&self) -> Vec<(String, String)> {
                self.settings()
            }
            fn as_any(&self) -> Option<&dyn std::any::Any> {
                Some(self)
            }
        }
    };
}

/// Verifies a suspected member over TCP before dropping it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpFailureDetector {
    /// Silence after which a member is suspected (NodeConfig::suspect_after).
    pub suspect_after: Duration,
    /// Time the verification may take (Tomcat: connectTimeout; NodeConfig::verify_timeout).
    pub connect_timeout: Duration,
}

impl Default for TcpFailureDetector {
    fn default() -> Self {
        let d = NodeConfig::default();
        TcpFailureDetector {
            suspect_after: d.suspect_after,
            connect_timeout: d.verify_timeout,
        }
    }
}

impl TcpFailureDetector {
    pub const KEYS: &'static [&'static str] = &["suspect_after", "connect_timeout"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let d = Self::default();
        let mut r = Opts::new("TcpFailureDetector", o);
        let c = TcpFailureDetector {
            suspect_after: r.millis("suspect_after", d.suspect_after)?,
            connect_timeout: r.millis("connect_timeout", d.connect_timeout)?,
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
    fn settings(&self) -> Vec<(String, String)> {
        vec![
            (
                "suspect_after".into(),
                format!("{}ms", self.suspect_after.as_millis()),
            ),
            (
                "connect_timeout".into(),
                format!("{}ms", self.connect_timeout.as_millis()),
            ),
        ]
    }
}
passthrough!(TcpFailureDetector, "TcpFailureDetector");

/// Pings members the node sent nothing to for `interval` (Tomcat's default is 1000 ms;
/// shoal pings every 200 ms so a silent member is caught within 1 s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpPing {
    pub interval: Duration,
}

impl Default for TcpPing {
    fn default() -> Self {
        TcpPing {
            interval: NodeConfig::default().ping_interval,
        }
    }
}

impl TcpPing {
    pub const KEYS: &'static [&'static str] = &["interval"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut r = Opts::new("TcpPing", o);
        let c = TcpPing {
            interval: r.millis("interval", Self::default().interval)?,
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
    fn settings(&self) -> Vec<(String, String)> {
        vec![(
            "interval".into(),
            format!("{}ms", self.interval.as_millis()),
        )]
    }
}
passthrough!(TcpPing, "TcpPing");

/// A fixed list of member addresses (discovery candidates), used by shoal-net.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StaticMembership {
    pub members: Vec<SocketAddr>,
}

impl StaticMembership {
    pub const KEYS: &'static [&'static str] = &["members"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut r = Opts::new("StaticMembership", o);
        let mut members = Vec::new();
        if let Some(list) = r.str("members") {
            for a in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                members.push(a.parse().map_err(|_| {
                    format!("interceptor StaticMembership: option 'members' entry '{a}' is not host:port (e.g. 10.0.0.2:4000)")
                })?);
            }
        }
        r.finish(Self::KEYS)?;
        Ok(StaticMembership { members })
    }
    fn settings(&self) -> Vec<(String, String)> {
        let list: Vec<String> = self.members.iter().map(|a| a.to_string()).collect();
        vec![("members".into(), list.join(","))]
    }
}
passthrough!(StaticMembership, "StaticMembership");

/// Asynchronous sends (flag 8) go through a bounded queue in shoal-net. Unlike Tomcat, a
/// full queue never turns into a synchronous send: the send fails with "queue full" and a
/// counter rises (backpressure the caller can see).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageDispatch {
    /// Bytes the queue may hold (Tomcat: maxQueueSize, 64 MiB).
    pub max_queue_size: usize,
    pub option_flag: u32,
}

impl Default for MessageDispatch {
    fn default() -> Self {
        MessageDispatch {
            max_queue_size: 64 * 1024 * 1024,
            option_flag: crate::SendOptions::ASYNCHRONOUS,
        }
    }
}

impl MessageDispatch {
    pub const KEYS: &'static [&'static str] = &["max_queue_size", "option_flag"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let d = Self::default();
        let mut r = Opts::new("MessageDispatch", o);
        let c = MessageDispatch {
            max_queue_size: r.usize("max_queue_size", d.max_queue_size)?,
            option_flag: r.option_flag(d.option_flag)?,
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
    fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("max_queue_size".into(), self.max_queue_size.to_string()),
            ("option_flag".into(), self.option_flag.to_string()),
        ]
    }
}
passthrough!(MessageDispatch, "MessageDispatch");

/// Copies the settings of TcpFailureDetector / TcpPing layers in `stack` into `cfg`.
pub fn configure_node(stack: &InterceptorStack, cfg: &mut NodeConfig) {
    if let Some(d) = stack.get::<TcpFailureDetector>() {
        cfg.suspect_after = d.suspect_after;
        cfg.verify_timeout = d.connect_timeout;
    }
    if let Some(p) = stack.get::<TcpPing>() {
        cfg.ping_interval = p.interval;
    }
}
