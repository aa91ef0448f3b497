//! Nodes with `[[plugin]]` entries for the plugin tests: in-process, loopback, static
//! membership, HTTP on port 0, no admin listener; and a tiny cookie-keeping HTTP client.
#![allow(dead_code)]
use super::common::loopback_settings;
use shoal_cluster::InterceptorStack;
use shoal_http::{ContextConfig, HttpConfig};
use shoal_node::plugins::{PluginEntry, PolicyName};
use shoal_node::{NodeParts, RunningNode};
use shoal_testkit::{free_ports, poll};
use std::time::Duration;
use tokio::net::TcpListener;

const SECRET: &str = "plugin-test-cluster-secret";

/// A `[[plugin]]` entry for a built example (`example:NAME`).
pub fn example(name: &str, example: &str, config: &[(&str, &str)]) -> PluginEntry {
    PluginEntry {
        name: name.into(),
        path: format!("example:{example}"),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        contexts: Vec::new(),
        policy: PolicyName::FailClosed,
        memory_mib: 16,
        call_timeout_ms: 100,
        max_instances: 4,
        enabled: true,
    }
}

/// The checksum interceptor, with a time limit that a loaded test machine cannot hit
/// (a timeout would drop the message under fail-closed, which is not what is tested).
pub fn crc() -> PluginEntry {
    let mut e = example("crc", "checksum-interceptor", &[]);
    e.call_timeout_ms = 2000;
    e
}

pub fn misbehave(name: &str, mode: &str, policy: PolicyName, context: &str) -> PluginEntry {
    let mut e = example(name, "misbehave", &[("mode", mode)]);
    e.policy = policy;
    e.call_timeout_ms = 50;
    e.contexts = vec![context.into()];
    e
}

/// `n` sequential GETs of `path` by one browser; the statuses.
pub async fn statuses(node: &RunningNode, path: &str, n: usize) -> Vec<u16> {
    let mut b = Browser::new();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(b.get(node, path).await.0);
    }
    out
}

/// Contexts by path (DeltaManager, synchronous; `max_inactive_secs` for all).
pub fn contexts(paths: &[&str], max_inactive_secs: u32) -> HttpConfig {
    let contexts = paths
        .iter()
        .map(|p| {
            let mut c = ContextConfig {
                path: p.to_string(),
                ..ContextConfig::default()
            };
            c.session.max_inactive_secs = max_inactive_secs;
            c
        })
        .collect();
    HttpConfig {
        contexts,
        ..HttpConfig::default()
    }
}

/// Starts one node per entry of `plugins` (node1, node2, …) with the same contexts, and
/// waits until each sees the others (`wait_ready`: also until every context is ready).
pub async fn nodes(
    http: HttpConfig,
    plugins: Vec<Vec<PluginEntry>>,
    wait_ready: bool,
) -> Vec<RunningNode> {
    let ports = free_ports(plugins.len());
    let members: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut nodes = Vec::new();
    for (i, (port, entries)) in ports.iter().zip(plugins).enumerate() {
        let parts = parts(
            &format!("node{}", i + 1),
            *port,
            &members,
            http.clone(),
            entries,
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let node = shoal_node::start(parts, listener, None)
            .await
            .unwrap_or_else(|e| panic!("node{} starts: {e:#}", i + 1));
        nodes.push(node);
    }
    let others = nodes.len() - 1;
    for n in &nodes {
        let all = poll(Duration::from_secs(10), || {
            n.channel.members().len() == others
        })
        .await;
        assert!(
            all,
            "{} sees {:?}",
            n.channel.local().name,
            n.channel.members()
        );
        if wait_ready {
            // Generous: the test machine is shared with parallel builds.
            let ready = n.http.registry().wait_ready(Duration::from_secs(30)).await;
            assert!(ready, "{} not ready in 30 s", n.channel.local().name);
        }
    }
    nodes
}

pub fn parts(
    name: &str,
    port: u16,
    members: &[String],
    http: HttpConfig,
    plugins: Vec<PluginEntry>,
) -> NodeParts {
    NodeParts {
        settings: loopback_settings(name, port, members, SECRET),
        stack: InterceptorStack::default(),
        http,
        plugins,
        config_dir: None,
        farm: None,
        admin: None,
    }
}

pub async fn shutdown(nodes: Vec<RunningNode>) {
    for n in nodes {
        n.shutdown().await;
    }
}

/// One browser: keeps the session cookie the nodes set.
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            client: shoal_testkit::http_client(),
            cookie: None,
        }
    }

    /// GET `path` on `node`: (status, body, response headers).
    pub async fn get_full(
        &mut self,
        node: &RunningNode,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let mut req = self.client.get(format!("http://{}{path}", node.http_addr));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        for v in resp.headers().get_all("set-cookie") {
            if let Some(pair) = v.to_str().ok().and_then(shoal_testkit::session_cookie) {
                self.cookie = Some(pair);
            }
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        (status, body, headers)
    }

    pub async fn get(&mut self, node: &RunningNode, path: &str) -> (u16, String) {
        let (s, b, _) = self.get_full(node, path, &[]).await;
        (s, b)
    }
}

/// `plugin.<plugin>.<name>` of a node's registry (0 when not published yet).
pub fn metric(node: &RunningNode, plugin: &str, name: &str) -> i64 {
    let key = format!("plugin.{plugin}.{name}");
    node.plugins
        .registry
        .metrics()
        .into_iter()
        .find(|m| m.name == key)
        .map_or(0, |m| m.value)
}

/// Sent / received count of one session message kind (e.g. `session_accessed`) in `ctx`.
pub fn messages(node: &RunningNode, ctx: &str, kind: &str, sent: bool) -> u64 {
    let stats = node
        .http
        .registry()
        .service(ctx)
        .expect("context exists")
        .stats();
    let list = if sent { stats.sent } else { stats.received };
    list.into_iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, v)| v)
}
