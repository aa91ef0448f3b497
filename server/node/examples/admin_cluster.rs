//! Three real nodes in one process with admin listeners, for the admin UI test and for
//! trying the UI by hand:
//!
//! ```text
//! cargo run -p shoal-node --example admin_cluster -- [--admin-token T] [--sessions N]
//! ```
//!
//! Prints `admin: http://127.0.0.1:PORT` (node1's admin API and UI at `/ui/`), then one
//! line per other node. Contexts `/app` (DeltaManager), `/shop` (BackupManager) and `/cart`
//! (PersistentManager on one SQLite file the nodes share, in a temporary directory removed
//! at the end; three of its sessions are made on node1); an
//! interceptor stack of five layers; the example plugins `url-filter` (attached to `app`)
//! and `checksum` (channel interceptor) loaded on every node; N sessions (default 40);
//! and light background traffic so the traffic charts move. Stops on Ctrl-C, SIGTERM or
//! stdin EOF.
use anyhow::{anyhow, Context, Result};
use shoal_admin::AdminConfig;
use shoal_cluster::InterceptorStack;
use shoal_http::{ContextConfig, HttpConfig};
use shoal_net::ClusterConfig;
use shoal_node::plugins::PluginEntry;
use shoal_node::{NodeParts, RunningNode};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const SECRET: &str = "admin-cluster-example-secret";
const STACK: [&str; 5] = [
    "Throughput",
    "DomainFilter",
    "Order",
    "Fragmentation",
    "Compression",
];

struct Args {
    admin_token: String,
    sessions: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        admin_token: "ui-admin-token-0123456789".into(),
        sessions: 40,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--admin-token" => a.admin_token = value,
            "--sessions" => a.sessions = value.parse().context("--sessions: a number")?,
            other => {
                return Err(anyhow!(
                    "unknown flag {other} (known: --admin-token, --sessions)"
                ))
            }
        }
    }
    Ok(a)
}

fn stack() -> Result<InterceptorStack> {
    let mut s = InterceptorStack::default();
    for name in STACK {
        let mut options = BTreeMap::new();
        if name == "DomainFilter" {
            options.insert("domain".to_string(), ClusterConfig::default().domain);
        }
        let layer = shoal_cluster::interceptors::build(name, &options)
            .map_err(|e| anyhow!("{name}: {e}"))?;
        s.push(layer).map_err(|e| anyhow!("{name}: {e}"))?;
    }
    Ok(s)
}

fn plugin(name: &str, example: &str, contexts: &[&str]) -> PluginEntry {
    PluginEntry {
        name: name.into(),
        path: format!("example:{example}"),
        config: Default::default(),
        contexts: contexts.iter().map(|c| c.to_string()).collect(),
        policy: Default::default(),
        memory_mib: 16,
        call_timeout_ms: 100,
        max_instances: 4,
        enabled: true,
    }
}

/// `/cart`: a persistent context on the SQLite file `db` (every node uses the same one).
fn cart(db: &std::path::Path) -> Result<ContextConfig> {
    let toml = format!(
        "path = \"/cart\"\n[session]\nmanager = \"persistent\"\n[session.store]\nkind = \"sqlite\"\npath = {}\n",
        toml::Value::String(db.display().to_string())
    );
    toml::from_str(&toml).context("the /cart context")
}

async fn node(
    name: &str,
    port: u16,
    members: &[String],
    token: &str,
    db: &std::path::Path,
) -> Result<RunningNode> {
    let mut c = ClusterConfig {
        name: name.into(),
        ..ClusterConfig::default()
    };
    c.receiver.port = port;
    c.receiver.auto_bind = 1;
    c.membership.members = members.to_vec();
    let mut http = HttpConfig::default();
    let mut shop = ContextConfig {
        path: "/shop".into(),
        ..ContextConfig::default()
    };
    shop.session.manager = shoal_session::ManagerKind::Backup;
    http.contexts.push(shop);
    http.contexts.push(cart(db)?);
    let parts = NodeParts {
        settings: c.settings(Some(SECRET.into()))?,
        stack: stack()?,
        http,
        plugins: vec![
            plugin("url-filter", "url-filter", &["/app"]),
            plugin("checksum", "checksum-interceptor", &[]),
        ],
        config_dir: None,
        farm: None,
        admin: Some(
            AdminConfig {
                admin_token: Some(token.into()),
                ..AdminConfig::default()
            }
            .resolve()?,
        ),
    };
    let http_l = TcpListener::bind("127.0.0.1:0").await?;
    let admin_l = TcpListener::bind("127.0.0.1:0").await?;
    shoal_node::start(parts, http_l, Some(admin_l)).await
}

/// Requests that keep the channel busy: a session per node, touched in turn.
async fn traffic(urls: Vec<String>) {
    let client = shoal_testkit::http_client();
    let mut cookies: Vec<Option<String>> = vec![None; urls.len()];
    for i in 0.. {
        let n = i % urls.len();
        let mut req = client.get(format!("{}/app/counter", urls[n]));
        if let Some(c) = &cookies[n] {
            req = req.header("cookie", c);
        }
        if let Ok(r) = req.send().await {
            if let Some(c) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
                cookies[n] = c.split(';').next().map(str::to_owned);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let dir = std::env::temp_dir().join(format!("shoal-admin-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let db = dir.join("sessions.db");
    // Port 0 everywhere; each node lists the receivers of those started before it.
    let mut nodes: Vec<RunningNode> = Vec::new();
    for i in 1..=3 {
        let members: Vec<String> = nodes
            .iter()
            .map(|n| n.channel.local().addr.to_string())
            .collect();
        nodes.push(node(&format!("node{i}"), 0, &members, &a.admin_token, &db).await?);
    }
    for n in &nodes {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while n.channel.members().len() < 2
            || !n
                .http
                .registry()
                .wait_ready(Duration::from_millis(50))
                .await
        {
            if tokio::time::Instant::now() > deadline {
                return Err(anyhow!(
                    "{} did not see both others and get ready in 10 s",
                    n.channel.local().name
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("http://{}", n.http_addr))
        .collect();
    let client = shoal_testkit::http_client();
    for i in 0..a.sessions {
        let ctx = if i % 4 == 3 { "shop" } else { "app" };
        client
            .get(format!("{}/{ctx}/counter", urls[i % 3]))
            .send()
            .await?
            .error_for_status()?;
    }
    for _ in 0..3 {
        client
            .get(format!("{}/cart/counter", urls[0]))
            .send()
            .await?
            .error_for_status()?;
    }
    for (i, n) in nodes.iter().enumerate() {
        let admin = n.admin_addr.ok_or_else(|| anyhow!("no admin listener"))?;
        let label = if i == 0 {
            "admin".to_string()
        } else {
            format!("admin{}", i + 1)
        };
        println!("{label}: http://{admin} http: {}", urls[i]);
    }
    tokio::spawn(traffic(urls));
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    // SIGTERM too (ui-test.sh stops the example with `kill`): the nodes stop and the
    // temporary directory goes.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = async { while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {} } => {}
    }
    for n in nodes {
        n.shutdown().await;
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    Ok(())
}
