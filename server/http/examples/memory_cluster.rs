//! N shoal-http nodes in one process joined by the in-memory cluster, on 127.0.0.1 ports
//! BASE+1..BASE+N (the Tomcat harness layout: node i on 18080+i). For quick local load tests
//! of the HTTP + session layers without the network channel:
//!
//!   cargo run --release -p shoal-http --example memory_cluster -- 3 delta sync 18180
//!   wrk -t2 -c32 -d10s -s shared/peers/tomcat/lua/session.lua http://127.0.0.1:18181/app/counter -- 16
use shoal_http::{serve, HttpConfig, HttpNode};
use shoal_session::{ManagerConfig, ManagerKind, MemoryCluster, ReplicationMode};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(3);
    let kind = if args.get(2).map(String::as_str) == Some("backup") {
        ManagerKind::Backup
    } else {
        ManagerKind::Delta
    };
    let mode = if args.get(3).map(String::as_str) == Some("async") {
        ReplicationMode::Async
    } else {
        ReplicationMode::Sync
    };
    let base: u16 = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(18180);
    let mut config = HttpConfig::default();
    config.contexts[0].session = ManagerConfig {
        manager: kind,
        replication: mode,
        ..ManagerConfig::default()
    };
    let mem = MemoryCluster::new();
    let mut tasks = Vec::new();
    for i in 1..=n {
        let node = HttpNode::builder(config.clone(), mem.join(&format!("node{i}")))
            .start()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", base + i as u16)).await?;
        println!("node{i} on http://{}", listener.local_addr()?);
        tasks.push(tokio::spawn(serve(listener, node, async {
            let _ = tokio::signal::ctrl_c().await;
        })));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
