//! Static membership: a configured list of `host:port` receivers (Tomcat's StaticMembership),
//! offered again every `refresh` so restarted members and healed links are found again.
use super::{BoxFuture, Discovery, Pace};
use std::net::SocketAddr;
use std::time::Duration;

pub struct StaticDiscovery {
    entries: Vec<String>,
    pace: Pace,
}

impl StaticDiscovery {
    pub fn new(entries: Vec<String>, refresh: Duration) -> Self {
        StaticDiscovery {
            entries,
            pace: Pace::new(refresh),
        }
    }
}

impl Discovery for StaticDiscovery {
    fn name(&self) -> &'static str {
        "static"
    }

    fn next(&mut self) -> BoxFuture<'_, Vec<SocketAddr>> {
        Box::pin(async move {
            self.pace.wait().await;
            let mut out = Vec::new();
            for e in &self.entries {
                // Host names are allowed; resolving each round follows DNS changes.
                match tokio::net::lookup_host(e.as_str()).await {
                    Ok(addrs) => out.extend(addrs),
                    Err(err) => tracing::debug!("static member {e:?} does not resolve: {err}"),
                }
            }
            out
        })
    }
}
