//! Three real nodes in one process on loopback: channel receivers on free ports with static
//! membership and a cluster secret, HTTP and admin listeners on port 0.
#![allow(dead_code)]
use shoal_admin::AdminConfig;
use shoal_cluster::InterceptorStack;
use shoal_http::{ContextConfig, HttpConfig};
use shoal_net::config::ClusterConfig;
use shoal_node::{NodeParts, RunningNode};
use shoal_session::ManagerKind;
use std::time::Duration;
use tokio::net::TcpListener;

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const READ: &str = "test-read-token-0123456789";
const SECRET: &str = "admin-test-cluster-secret";

/// Free loopback ports (bound then released: the receivers bind them right after).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// `/app` (DeltaManager, sync) and `/shop` (BackupManager, one backup).
fn http_config() -> HttpConfig {
    let mut http = HttpConfig::default();
    let mut shop = ContextConfig {
        path: "/shop".into(),
        ..ContextConfig::default()
    };
    shop.session.manager = ManagerKind::Backup;
    shop.session.backups = 1;
    http.contexts.push(shop);
    http
}

pub async fn start_node(name: &str, port: u16, members: &[String]) -> RunningNode {
    let mut c = ClusterConfig {
        name: name.into(),
        ..ClusterConfig::default()
    };
    c.receiver.port = port;
    c.receiver.auto_bind = 1;
    c.membership.members = members.to_vec();
    c.membership.refresh_ms = 200;
    let settings = c
        .settings(Some(SECRET.into()))
        .expect("valid cluster settings");
    let parts = NodeParts {
        settings,
        stack: InterceptorStack::default(),
        http: http_config(),
        plugins: Vec::new(),
        config_dir: None,
        admin: Some(AdminConfig {
            admin_token: Some(ADMIN.into()),
            read_token: Some(READ.into()),
            ..AdminConfig::default()
        }),
    };
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    shoal_node::start(parts, http, Some(admin))
        .await
        .expect("node starts")
}

/// Three nodes that list each other statically; returns once each sees the two others.
pub async fn cluster() -> Vec<RunningNode> {
    let ports = free_ports(3);
    let members: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        nodes.push(start_node(&format!("node{}", i + 1), *port, &members).await);
    }
    for n in &nodes {
        wait_for(Duration::from_secs(10), || n.channel.members().len() == 2)
            .await
            .unwrap_or_else(|| panic!("{} sees {:?}", n.channel.local().name, n.channel.members()));
    }
    // Ready as a balancer would see it: every context's state transfer done.
    for n in &nodes {
        let ready = n.http.registry().wait_ready(Duration::from_secs(10)).await;
        let not_ready: Vec<String> = n
            .http
            .registry()
            .services()
            .filter(|s| !s.is_ready())
            .map(|s| format!("{} ({:?})", s.context(), s.stats()))
            .collect();
        assert!(ready, "{} not ready in 10 s: {not_ready:?}", n.channel.local().name);
    }
    nodes
}

/// Polls `f` every 20 ms until it holds; `None` at the deadline.
pub async fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f() {
            return Some(());
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn admin_url(n: &RunningNode, path: &str) -> String {
    format!("http://{}{path}", n.admin_addr.expect("admin listener"))
}

pub fn http_url(n: &RunningNode, path: &str) -> String {
    format!("http://{}{path}", n.http_addr)
}
