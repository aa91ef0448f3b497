//! The TCP receiver: auto-binds the first free port of a range (Tomcat's NioReceiver autoBind)
//! and accepts member connections for the driver.
use crate::conn::IoEvent;
use crate::error::NetError;
use shoal_cluster::{ConnId, Direction};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Binds `addr:port`, else the next ports, `tries` ports in all. Port 0 = any free port.
pub(crate) async fn bind(addr: IpAddr, port: u16, tries: u16) -> Result<TcpListener, NetError> {
    let last = if port == 0 {
        0
    } else {
        port.saturating_add(tries.saturating_sub(1))
    };
    let mut reason = String::from("no port tried");
    for p in port..=last {
        match TcpListener::bind(SocketAddr::new(addr, p)).await {
            Ok(l) => return Ok(l),
            Err(e) => reason = format!("port {p}: {e}"),
        }
    }
    Err(NetError::Bind {
        address: addr.to_string(),
        first: port,
        last,
        reason,
    })
}

/// Accepts forever; every socket becomes a connection reported as `Connected(Inbound)`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    next_id: Arc<AtomicU64>,
    io_tx: mpsc::Sender<IoEvent>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("cluster receiver accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnId::inbound(next_id.fetch_add(1, Ordering::Relaxed));
        // The driver starts the connection's tasks, so no frame can overtake this event.
        let ev = IoEvent::Connected {
            conn,
            dir: Direction::Inbound,
            peer,
            stream,
        };
        if io_tx.send(ev).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn auto_bind_skips_taken_ports_and_reports_the_range_when_all_are() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let taken = TcpListener::bind((ip, 0)).await.expect("bind");
        let p = taken.local_addr().expect("addr").port();
        match bind(ip, p, 1).await {
            Err(NetError::Bind { first, last, .. }) => assert_eq!((first, last), (p, p)),
            other => panic!("port {p} is taken, got {other:?}"),
        }
        // With a range, the next free port is used (p+1 may be taken by someone else too).
        let l = bind(ip, p, 20).await.expect("a free port in the range");
        let got = l.local_addr().expect("addr").port();
        assert!(
            got > p && got < p.saturating_add(20),
            "bound {got}, range starts at {p}"
        );
    }
}
