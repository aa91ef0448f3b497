//! The in-memory twin: tests announce and withdraw addresses on a shared [`MemoryNet`].
use super::{BoxFuture, Discovery, Pace};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct MemoryNet {
    addrs: Arc<Mutex<BTreeSet<SocketAddr>>>,
}

impl MemoryNet {
    pub fn announce(&self, a: SocketAddr) {
        if let Ok(mut s) = self.addrs.lock() {
            s.insert(a);
        }
    }
    pub fn withdraw(&self, a: SocketAddr) {
        if let Ok(mut s) = self.addrs.lock() {
            s.remove(&a);
        }
    }
    fn snapshot(&self) -> Vec<SocketAddr> {
        self.addrs
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

pub struct MemoryDiscovery {
    net: MemoryNet,
    pace: Pace,
}

impl MemoryDiscovery {
    pub fn new(net: MemoryNet, every: Duration) -> Self {
        MemoryDiscovery {
            net,
            pace: Pace::new(every),
        }
    }
}

impl Discovery for MemoryDiscovery {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn next(&mut self) -> BoxFuture<'_, Vec<SocketAddr>> {
        Box::pin(async move {
            self.pace.wait().await;
            self.net.snapshot()
        })
    }
}
