//! Clusters in a [`crate::netns::Lab`] for the split-brain tests (issue #12): `n` nodes
//! serving `/app`, one per namespace, each with its admin API on the same port of its own
//! address, every node listing every other (so split-brain protection expects all `n`).
use crate::netns::Lab;
use crate::sessions::{HttpNode, SECRET};
use crate::{temp_file, NodeSpec};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Bearer token of the admin API of every node of a split cluster.
pub const ADMIN_TOKEN: &str = "split-brain-admin-token-0123456789";

/// A running split cluster.
pub struct SplitCluster {
    pub nodes: Vec<HttpNode>,
    /// Route name → HTTP `ip:port`, for the workload.
    pub addrs: BTreeMap<String, String>,
    /// Admin API `ip:port` of each node.
    pub admin: Vec<String>,
}

/// `node1`..`node<n>`.
pub fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("node{i}")).collect()
}

/// Starts `n` nodes of `lab` whose `/app` context has `[http.contexts.session]` `session`
/// (TOML lines), and waits until each sees all the others.
pub fn start(lab: &Lab, n: usize, session: &str) -> SplitCluster {
    let admin_port = crate::free_port();
    // Every namespace has its own interfaces: one file serves every node.
    let cfg = temp_file(
        "shoal.toml",
        &format!(
            "[http]\nbind = \"0.0.0.0\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
             [http.contexts.session]\n{session}\nmax_inactive_secs = 1800\n\n\
             [admin]\nbind = \"0.0.0.0:{admin_port}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n"
        ),
    );
    let port = crate::free_port();
    let members: Vec<String> = (0..n).map(|i| format!("{}:{port}", lab.ip(i))).collect();
    let all = names(n);
    let mut nodes: Vec<HttpNode> = (0..n)
        .map(|i| {
            let spec = NodeSpec {
                bind: lab.ip(i).to_string(),
                member_addrs: members.clone(),
                netns: Some(lab.ns(i)),
                config: Some(cfg.clone()),
                ..NodeSpec::new(&all[i], port, &[], SECRET)
            };
            let mut node = HttpNode::spawn_spec(spec, &[]);
            let http_port = node.http.rsplit(':').next().unwrap_or_default().to_string();
            node.http = format!("{}:{http_port}", lab.ip(i));
            node
        })
        .collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    for node in nodes.iter_mut() {
        node.wait_members(&refs);
    }
    let addrs = nodes
        .iter()
        .map(|node| (node.name().to_string(), node.http.clone()))
        .collect();
    let admin = (0..n)
        .map(|i| format!("{}:{admin_port}", lab.ip(i)))
        .collect();
    SplitCluster {
        nodes,
        addrs,
        admin,
    }
}

/// One admin API call on a fresh connection: (status, body).
pub fn admin(addr: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, body.to_string()))
}
