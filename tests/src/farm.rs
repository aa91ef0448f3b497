//! Farm deployer test helpers: three (or more) real `shoal node` processes, each with its
//! own `[farm] dir`, an admin API reached with blocking HTTP/1.1, and the questions the
//! farm tests ask of them (deploy, a deployment's per-node states, files on disk, staging).
use crate::sessions::HttpNode;
use crate::{free_ports, temp_file};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TOKEN: &str = "farm-test-admin-token-0123456789abcdef";

/// A node's config: `/app` (delta, sync), the admin API on a free port, and `[farm]` with
/// `dir` and the lines of `farm` (e.g. `chunk_bytes = 1024`); `tail` follows as is (e.g. a
/// `[farm.faults]` table).
pub fn config(farm_dir: &Path, farm: &str, tail: &str) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"delta\"\nreplication = \"sync\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n\
         [farm]\ndir = \"{}\"\n{farm}\n{tail}\n",
        farm_dir.display()
    );
    temp_file("shoal.toml", &toml)
}

pub struct FarmNode {
    pub http: HttpNode,
    /// The admin API's address (from the `ready` event).
    pub admin: String,
    /// This node's `[farm] dir`.
    pub farm: PathBuf,
}

impl FarmNode {
    /// Starts `name` with `config` and waits for its `ready` event (printed once the farm
    /// has converged with the cluster).
    pub fn spawn(name: &str, port: u16, ports: &[u16], farm: PathBuf, config: &Path) -> FarmNode {
        let mut http = HttpNode::spawn(name, port, ports, config);
        let ready = http
            .proc
            .wait_event("ready", |_| true, Duration::from_secs(20));
        let admin = ready.json["admin"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: ready without admin: {}", ready.json))
            .to_string();
        FarmNode { http, admin, farm }
    }

    pub fn name(&self) -> &str {
        self.http.name()
    }

    /// An admin API call: status and body.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let (status, _, body) = call(&self.admin, method, path, body);
        (status, body)
    }

    /// `PUT /api/v1/deployments/{name}?{query}` with `body`.
    pub fn put(&self, name: &str, query: &str, body: &[u8]) -> (u16, String) {
        self.call("PUT", &format!("/api/v1/deployments/{name}?{query}"), body)
    }

    /// `GET /api/v1/deployments/{name}` as JSON; `None` if not deployed (404).
    pub fn deployment(&self, name: &str) -> Option<serde_json::Value> {
        let (status, text) = self.call("GET", &format!("/api/v1/deployments/{name}"), b"");
        match status {
            200 => Some(json(&text)),
            404 => None,
            _ => panic!("{}: GET deployment {name}: {status} {text}", self.name()),
        }
    }

    /// Each node's `(node, state)` of deployment `name` as this node reports it, sorted.
    pub fn states(&self, name: &str) -> Vec<(String, String)> {
        let Some(v) = self.deployment(name) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = v["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| {
                        let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
                        (s("node"), s("state"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The `file` artifact `name` as this node made it live (`files/<name>`).
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.farm.join("files").join(name)).ok()
    }

    /// Bytes in `staging/` (a transfer in progress).
    pub fn staged_bytes(&self) -> u64 {
        std::fs::read_dir(self.farm.join("staging"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The `/metrics` lines starting with `prefix`.
    pub fn metrics(&self, prefix: &str) -> Vec<String> {
        let (status, text) = self.call("GET", "/metrics", b"");
        assert_eq!(status, 200, "{}: /metrics: {text}", self.name());
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }
}

/// A directory for the farm dirs of one test's nodes (`<base>/<node>`).
pub fn base_dir(test: &str, port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("shoal-{test}-{}-{port}", std::process::id()))
}

/// Starts `names` on free ports, each with `config_of(name, farm_dir)`, and waits until
/// every node sees all of them. Returns the nodes, their ports and the base directory.
pub fn start(
    test: &str,
    names: &[&str],
    config_of: impl Fn(&str, &Path) -> PathBuf,
) -> (Vec<FarmNode>, Vec<u16>, PathBuf) {
    let ports = free_ports(names.len());
    let base = base_dir(test, ports[0]);
    let mut nodes: Vec<FarmNode> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| {
            let farm = base.join(n);
            let cfg = config_of(n, &farm);
            FarmNode::spawn(n, *p, &ports, farm, &cfg)
        })
        .collect();
    for n in nodes.iter_mut() {
        n.http.wait_members(names);
    }
    (nodes, ports, base)
}

/// A blocking HTTP/1.1 exchange with the bearer token: status, lowercased head, body.
/// Status 0: the connection ended without an answer (e.g. the node was killed).
pub fn call(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, String::new(), String::new());
    }
    read_response(s)
}

pub fn read_response(mut s: std::net::TcpStream) -> (u16, String, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `(node, "active")` for each of `names`, sorted like [`FarmNode::states`].
pub fn all_active(names: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), "active".to_string()))
        .collect();
    v.sort();
    v
}

/// An example plugin component, built by shoal-plugin-host's build.
pub fn component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/components")
        .join(format!("{name}.component.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; the example plugins are built by shoal-plugin-host's build (cargo build -p shoal)",
            path.display()
        )
    })
}
