//! DNS membership: a name (e.g. a Kubernetes headless service) resolved every `every`;
//! each address with the receiver port is a candidate. The handshake still needs the secret,
//! which fixes Tomcat's DNS provider accepting anyone (REFERENCE weakness 1).
use super::{BoxFuture, Discovery, Pace};
use std::net::SocketAddr;
use std::time::Duration;

pub struct DnsDiscovery {
    name: String,
    port: u16,
    pace: Pace,
}

impl DnsDiscovery {
    pub fn new(name: String, port: u16, every: Duration) -> Self {
        DnsDiscovery {
            name,
            port,
            pace: Pace::new(every),
        }
    }
}

impl Discovery for DnsDiscovery {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn next(&mut self) -> BoxFuture<'_, Vec<SocketAddr>> {
        Box::pin(async move {
            self.pace.wait().await;
            match tokio::net::lookup_host((self.name.as_str(), self.port)).await {
                Ok(addrs) => {
                    let mut v: Vec<SocketAddr> = addrs.collect();
                    v.sort();
                    v.dedup();
                    v
                }
                Err(e) => {
                    tracing::warn!("DNS membership: cannot resolve {:?}: {e}", self.name);
                    Vec::new()
                }
            }
        })
    }
}
