//! Three real nodes in one process on loopback: channel receivers on free ports with static
//! membership and a cluster secret, HTTP and admin listeners on port 0.
#![allow(dead_code)]
use reqwest::{Client, StatusCode};
use serde_json::Value;
use shoal_admin::AdminConfig;
use shoal_cluster::InterceptorStack;
use shoal_http::{ContextConfig, HttpConfig};
use shoal_net::{ChannelSettings, ClusterConfig};
use shoal_node::{NodeParts, RunningNode};
use shoal_session::ManagerKind;
use shoal_testkit::poll;
use std::time::Duration;
use tokio::net::TcpListener;

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const READ: &str = "test-read-token-0123456789";
const SECRET: &str = "admin-test-cluster-secret";

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
    // Three nodes founding a cluster at once sometimes lose one GET_ALL_SESSIONS (an
    // asynchronous message sent while the connection is being set up; reported to the
    // channel's owner): ask the next member after 1 s instead of Tomcat's 60 s.
    for c in &mut http.contexts {
        c.session.state_transfer_timeout_secs = 1;
    }
    http
}

/// One counting layer, so the admin API has live interceptor counters to show.
fn throughput_stack() -> InterceptorStack {
    let layer = shoal_cluster::interceptors::build("Throughput", &Default::default())
        .expect("Throughput builds with defaults");
    InterceptorStack::default().with(layer).expect("one layer")
}

/// A loopback node's channel: receiver on `port` (0: the OS picks), static `members`,
/// membership refreshed every 200 ms, sealed with `secret`.
pub fn loopback_settings(
    name: &str,
    port: u16,
    members: &[String],
    secret: &str,
) -> ChannelSettings {
    let mut c = ClusterConfig {
        name: name.into(),
        ..ClusterConfig::default()
    };
    c.receiver.port = port;
    c.receiver.auto_bind = 1;
    c.membership.members = members.to_vec();
    c.membership.refresh_ms = 200;
    c.settings(Some(secret.into()))
        .expect("valid cluster settings")
}

pub async fn start_node(name: &str, port: u16, members: &[String]) -> RunningNode {
    start_node_with(name, port, members, Vec::new()).await
}

/// [`start_node`] with `extra` contexts after `/app` and `/shop`.
pub async fn start_node_with(
    name: &str,
    port: u16,
    members: &[String],
    extra: Vec<ContextConfig>,
) -> RunningNode {
    let mut http = http_config();
    http.contexts.extend(extra);
    let parts = NodeParts {
        settings: loopback_settings(name, port, members, SECRET),
        stack: throughput_stack(),
        http,
        plugins: Vec::new(),
        config_dir: None,
        farm: None,
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

/// Three nodes; each lists the receivers of those started before it (port 0 everywhere, so
/// no port is picked ahead and raced for). Returns once each sees the two others.
pub async fn cluster() -> Vec<RunningNode> {
    let mut nodes: Vec<RunningNode> = Vec::new();
    for i in 1..=3 {
        let members: Vec<String> = nodes
            .iter()
            .map(|n| n.channel.local().addr.to_string())
            .collect();
        nodes.push(start_node(&format!("node{i}"), 0, &members).await);
    }
    for n in &nodes {
        let all = poll(Duration::from_secs(10), || n.channel.members().len() == 2).await;
        assert!(
            all,
            "{} sees {:?}",
            n.channel.local().name,
            n.channel.members()
        );
    }
    // Ready as a balancer would see it: every context's state transfer done.
    for n in &nodes {
        if !n.http.registry().wait_ready(Duration::from_secs(10)).await {
            panic!(
                "{} not ready in 10 s; transfer messages per node:\n{}",
                n.channel.local().name,
                transfer_report(&nodes)
            );
        }
    }
    nodes
}

/// Per node and context: readiness and the state-transfer message counters.
fn transfer_report(nodes: &[RunningNode]) -> String {
    let mut out = String::new();
    for n in nodes {
        for svc in n.http.registry().services() {
            let st = svc.stats();
            let pick = |v: &[(&'static str, u64)]| -> Vec<String> {
                v.iter()
                    .filter(|(_, c)| *c > 0)
                    .map(|(k, c)| format!("{k}={c}"))
                    .collect()
            };
            out += &format!(
                "  {} {} ready={} sent={:?} received={:?}\n",
                n.channel.local().name,
                svc.context(),
                svc.is_ready(),
                pick(&st.sent),
                pick(&st.received)
            );
        }
    }
    out
}

pub fn admin_url(n: &RunningNode, path: &str) -> String {
    format!("http://{}{path}", n.admin_addr.expect("admin listener"))
}

pub fn http_url(n: &RunningNode, path: &str) -> String {
    format!("http://{}{path}", n.http_addr)
}

// --- HTTP helpers shared by the admin tests ---

pub async fn get(c: &Client, url: &str, token: &str) -> (StatusCode, Value) {
    let r = c
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET answered");
    let status = r.status();
    let body = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

pub async fn call(
    c: &Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
) -> (StatusCode, Value) {
    let r = c
        .request(method, url)
        .bearer_auth(token)
        .send()
        .await
        .expect("answered");
    let status = r.status();
    let body = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

pub fn states(members: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = members
        .as_array()
        .expect("members array")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_owned(),
                m["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `JSESSIONID=<id>.<route>` from a response.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| shoal_testkit::session_cookie(v.to_str().ok()?))
        .expect("a session cookie")
}

pub async fn put(c: &Client, url: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = c
        .put(url)
        .bearer_auth(ADMIN)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("PUT answered");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
