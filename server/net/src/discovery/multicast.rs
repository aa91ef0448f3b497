//! Multicast membership (Tomcat's McastService): every `frequency_ms` each node sends a beacon
//! with its member record to the group (default 228.0.0.4:45564); receivers turn beacons into
//! candidates. A beacon carries an HMAC (`ClusterSecret::beacon_proof`) over its body: one
//! with a bad proof is dropped and counted, so the secret is needed even to be dialled.
//!
//! Wire format: `b"SHB1"` · `u16 BE body length` · `bincode(Beacon)` · 32-byte proof.
use super::{BoxFuture, Discovery};
use crate::config::MulticastConfig;
use crate::error::NetError;
use serde::{Deserialize, Serialize};
use shoal_cluster::{ClusterSecret, Member};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

const MAGIC: &[u8; 4] = b"SHB1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Beacon {
    pub member: Member,
    /// Sender's clock, ms since the epoch (diagnostics; handshakes carry the real freshness).
    pub sent_ms: u64,
}

impl Beacon {
    pub(super) fn encode(&self, secret: &ClusterSecret) -> Vec<u8> {
        let body =
            bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        let mut out = Vec::with_capacity(body.len() + 38);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&secret.beacon_proof(&body));
        out
    }

    /// `Err` names why a datagram is not a valid beacon of this cluster.
    pub(super) fn decode(buf: &[u8], secret: &ClusterSecret) -> Result<Beacon, &'static str> {
        if buf.len() < 6 + 32 || &buf[..4] != MAGIC {
            return Err("not a shoal beacon");
        }
        let len = u16::from_be_bytes([buf[4], buf[5]]) as usize;
        if buf.len() != 6 + len + 32 {
            return Err("truncated beacon");
        }
        let body = &buf[6..6 + len];
        let mut proof = [0u8; 32];
        proof.copy_from_slice(&buf[6 + len..]);
        if !ClusterSecret::verify(&secret.beacon_proof(body), &proof) {
            return Err("bad proof");
        }
        let cfg = bincode::config::standard().with_limit::<65536>();
        bincode::serde::decode_from_slice(body, cfg)
            .map(|(b, _)| b)
            .map_err(|_| "malformed beacon body")
    }
}

/// Counters of the multicast provider.
#[derive(Debug, Default)]
pub struct MulticastStats {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    /// Beacons whose HMAC did not verify (wrong or missing cluster secret).
    pub bad_proof: AtomicU64,
    /// Other datagrams on the group port that were not beacons of this cluster.
    pub malformed: AtomicU64,
}

pub struct MulticastDiscovery {
    sock: Arc<UdpSocket>,
    secret: ClusterSecret,
    local: Member,
    stats: Arc<MulticastStats>,
    sender: JoinHandle<()>,
    buf: Vec<u8>,
}

impl Drop for MulticastDiscovery {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

fn open(cfg: &MulticastConfig, group: Ipv4Addr) -> std::io::Result<std::net::UdpSocket> {
    let iface: Ipv4Addr = cfg
        .interface
        .as_deref()
        .and_then(|i| i.parse().ok())
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several nodes on one host share the group port.
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::UNSPECIFIED,
        cfg.port,
    )))?;
    s.join_multicast_v4(&group, &iface)?;
    s.set_multicast_loop_v4(cfg.loopback)?;
    s.set_multicast_ttl_v4(cfg.ttl)?;
    if !iface.is_unspecified() {
        s.set_multicast_if_v4(&iface)?;
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}

impl MulticastDiscovery {
    /// Joins the group and starts beaconing `local` every `frequency_ms`.
    pub fn start(
        cfg: &MulticastConfig,
        local: Member,
        secret: ClusterSecret,
    ) -> Result<Self, NetError> {
        let group: Ipv4Addr = cfg.address.parse().unwrap_or(Ipv4Addr::new(228, 0, 0, 4));
        let target = SocketAddr::V4(SocketAddrV4::new(group, cfg.port));
        let fail = |e: std::io::Error| NetError::Multicast {
            group: target,
            reason: e.to_string(),
        };
        let sock = Arc::new(UdpSocket::from_std(open(cfg, group).map_err(fail)?).map_err(fail)?);
        let stats = Arc::new(MulticastStats::default());
        let every = Duration::from_millis(cfg.frequency_ms.max(1));
        let sender = tokio::spawn(beacon_loop(
            sock.clone(),
            target,
            local.clone(),
            secret.clone(),
            every,
            stats.clone(),
        ));
        Ok(MulticastDiscovery {
            sock,
            secret,
            local,
            stats,
            sender,
            buf: vec![0; 65536],
        })
    }

    pub fn stats(&self) -> Arc<MulticastStats> {
        self.stats.clone()
    }

    /// Checks one datagram; returns the candidate it announces, if any.
    fn accept(&self, datagram: &[u8], from: SocketAddr) -> Option<SocketAddr> {
        match Beacon::decode(datagram, &self.secret) {
            Ok(b) if b.member.id == self.local.id => None,
            Ok(b) => {
                self.stats.accepted.fetch_add(1, Relaxed);
                Some(b.member.addr)
            }
            Err("bad proof") => {
                let n = self.stats.bad_proof.fetch_add(1, Relaxed);
                if n.is_multiple_of(100) {
                    tracing::warn!(%from, "multicast beacon from {from} with a bad proof dropped (wrong cluster secret?); {} so far", n + 1);
                }
                None
            }
            Err(why) => {
                self.stats.malformed.fetch_add(1, Relaxed);
                tracing::debug!(%from, "multicast datagram dropped: {why}");
                None
            }
        }
    }
}

async fn beacon_loop(
    sock: Arc<UdpSocket>,
    target: SocketAddr,
    local: Member,
    secret: ClusterSecret,
    every: Duration,
    stats: Arc<MulticastStats>,
) {
    let mut tick = tokio::time::interval(every);
    let mut warned = false;
    loop {
        tick.tick().await;
        let sent_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let bytes = Beacon {
            member: local.clone(),
            sent_ms,
        }
        .encode(&secret);
        match sock.send_to(&bytes, target).await {
            Ok(_) => {
                stats.sent.fetch_add(1, Relaxed);
                warned = false;
            }
            Err(e) if !warned => {
                tracing::warn!("multicast beacon to {target} failed: {e}");
                warned = true;
            }
            Err(_) => {}
        }
    }
}

impl Discovery for MulticastDiscovery {
    fn name(&self) -> &'static str {
        "multicast"
    }

    fn next(&mut self) -> BoxFuture<'_, Vec<SocketAddr>> {
        Box::pin(async move {
            let mut out = Vec::new();
            while out.is_empty() {
                let mut buf = std::mem::take(&mut self.buf);
                if let Ok((n, from)) = self.sock.recv_from(&mut buf).await {
                    out.extend(self.accept(&buf[..n], from));
                }
                // Whatever else already arrived joins this batch.
                while let Ok((n, from)) = self.sock.try_recv_from(&mut buf) {
                    out.extend(self.accept(&buf[..n], from));
                }
                self.buf = buf;
            }
            out.sort();
            out.dedup();
            out
        })
    }
}

/// Whether multicast works on loopback here: joins `group:port` on 127.0.0.1 and sends itself
/// one datagram. `Err` says why not (e.g. `lo` lacks the MULTICAST flag or a 224.0.0.0/4 route).
/// The discovery suite asks it before testing multicast.
#[cfg(test)]
pub(crate) async fn multicast_loopback_check(group: Ipv4Addr, port: u16) -> Result<(), String> {
    let cfg = MulticastConfig {
        address: group.to_string(),
        port,
        ttl: 0,
        interface: Some("127.0.0.1".into()),
        loopback: true,
        ..MulticastConfig::default()
    };
    let s = open(&cfg, group).map_err(|e| format!("cannot join {group} on 127.0.0.1: {e}"))?;
    let s = UdpSocket::from_std(s).map_err(|e| e.to_string())?;
    s.send_to(b"shoal-mcast-check", (group, port))
        .await
        .map_err(|e| format!("cannot send to {group}:{port}: {e}"))?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(500), s.recv_from(&mut buf)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("receive on {group}:{port} failed: {e}")),
        Err(_) => Err(format!(
            "a datagram sent to {group}:{port} on loopback did not come back within 500 ms"
        )),
    }
}
