//! Discovery providers: where candidate members come from. A provider only yields *candidate
//! addresses* (receivers to try); the driver hands them to `Node::handle_candidate`, and a
//! member exists only after the authenticated TCP handshake. So DNS or a forged beacon can
//! make a node dial a stranger, never admit one.
//!
//! Providers: [`StaticDiscovery`] (configured list), [`MulticastDiscovery`] (HMAC'd UDP beacons,
//! Tomcat's McastService defaults), [`DnsDiscovery`] (a name resolved periodically), and the
//! in-memory twin [`MemoryDiscovery`] (only with the `testing` feature: it is for tests and
//! never ships in the product). One test suite (`suite`) runs against each.
mod dns;
#[cfg(feature = "testing")]
mod memory;
mod multicast;
mod static_list;
#[cfg(test)]
mod suite;

pub use dns::DnsDiscovery;
#[cfg(feature = "testing")]
pub use memory::{MemoryDiscovery, MemoryNet};
pub use multicast::{MulticastDiscovery, MulticastStats};
pub use static_list::StaticDiscovery;

use crate::config::{MembershipConfig, Provider};
use crate::conn::IoEvent;
use crate::error::NetError;
use shoal_cluster::{ClusterSecret, Member};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of candidate member addresses, polled forever by the channel.
pub trait Discovery: Send + 'static {
    /// Shown in logs (`static`, `multicast`, `dns`, `memory`).
    fn name(&self) -> &'static str;
    /// Waits for the next batch of candidates. Providers offer known addresses again
    /// periodically, so a member that restarts or a healed partition is found again.
    fn next(&mut self) -> BoxFuture<'_, Vec<SocketAddr>>;
}

/// Builds the configured provider; a non-empty static list is always used in addition
/// (seed members next to multicast or DNS).
/// Providers built from the config, plus the multicast counters when multicast is on.
pub(crate) struct Configured {
    pub providers: Vec<Box<dyn Discovery>>,
    pub multicast: Option<std::sync::Arc<MulticastStats>>,
}

pub(crate) fn from_config(
    cfg: &MembershipConfig,
    local: &Member,
    secret: &ClusterSecret,
) -> Result<Configured, NetError> {
    let mut out: Vec<Box<dyn Discovery>> = Vec::new();
    let mut multicast = None;
    let refresh = Duration::from_millis(cfg.refresh_ms);
    if !cfg.members.is_empty() {
        out.push(Box::new(StaticDiscovery::new(cfg.members.clone(), refresh)));
    }
    match cfg.provider {
        Provider::Static => {}
        Provider::Multicast => {
            let m = MulticastDiscovery::start(&cfg.multicast, local.clone(), secret.clone())?;
            multicast = Some(m.stats());
            out.push(Box::new(m));
        }
        Provider::Dns => {
            let port = cfg.dns.port.unwrap_or(local.addr.port());
            let every = Duration::from_millis(cfg.dns.interval_ms.unwrap_or(5000));
            out.push(Box::new(DnsDiscovery::new(
                cfg.dns.name.clone(),
                port,
                every,
            )));
        }
    }
    Ok(Configured {
        providers: out,
        multicast,
    })
}

/// Feeds a provider's batches to the driver until the channel stops.
pub(crate) async fn run(mut p: Box<dyn Discovery>, io_tx: mpsc::Sender<IoEvent>) {
    loop {
        let addrs = p.next().await;
        if addrs.is_empty() {
            continue;
        }
        if io_tx
            .send(IoEvent::Candidates {
                source: p.name(),
                addrs,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Sleeps before every batch but the first, so a provider answers at once on start.
pub(crate) struct Pace {
    every: Duration,
    first: bool,
}

impl Pace {
    pub(crate) fn new(every: Duration) -> Self {
        Pace { every, first: true }
    }
    pub(crate) async fn wait(&mut self) {
        if self.first {
            self.first = false;
        } else {
            tokio::time::sleep(self.every).await;
        }
    }
}
