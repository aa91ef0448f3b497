//! Helpers for the multi-process session tests: nodes serving the bench app at `/app` (the
//! HTTP contract of the Tomcat harness, `shared/peers/tomcat/README.md`), a config file that
//! chooses the session manager, and a keep-alive HTTP client with bounded concurrency that
//! creates and checks sessions the way the harness' `tools/sessclient.py` does.
use crate::{temp_file, NodeProc, NodeSpec};
use futures::stream::{self, StreamExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cluster secret of every session test node.
pub const SECRET: &str = "sessions-test-secret-0123456789";

/// A config file with one `/app` context; HTTP on a port the OS picks (read from `ready`).
/// `manager` = delta|backup, `replication` = sync|async.
pub fn session_config(manager: &str, replication: &str, max_inactive_secs: u32) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"{manager}\"\nreplication = \"{replication}\"\n\
         max_inactive_secs = {max_inactive_secs}\n"
    );
    temp_file("shoal.toml", &toml)
}

/// A node process with its HTTP address (`127.0.0.1:PORT`).
pub struct HttpNode {
    pub proc: NodeProc,
    pub http: String,
}

impl HttpNode {
    /// Starts `name` on channel `port` with static `members` (ports); waits for `ready`.
    pub fn spawn(name: &str, port: u16, members: &[u16], config: &Path) -> HttpNode {
        Self::spawn_with(name, port, members, config, &[])
    }

    /// Like [`HttpNode::spawn`], with extra command-line arguments (`--http-port P` for a
    /// node coming back where a front with a static address list expects it).
    pub fn spawn_with(
        name: &str,
        port: u16,
        members: &[u16],
        config: &Path,
        extra: &[&str],
    ) -> HttpNode {
        let mut spec = NodeSpec::new(name, port, members, SECRET);
        spec.config = Some(config.to_path_buf());
        Self::spawn_spec(spec, extra)
    }

    /// Starts the node `spec` describes (e.g. in a network namespace); waits for `ready`.
    pub fn spawn_spec(spec: NodeSpec, extra: &[&str]) -> HttpNode {
        let name = spec.name.clone();
        let mut proc = NodeProc::spawn_with(spec, extra);
        let ready = proc.wait_event("ready", |_| true, Duration::from_secs(10));
        let http = ready.json["http"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: ready event without http: {}", ready.json))
            .to_string();
        HttpNode { proc, http }
    }

    pub fn name(&self) -> &str {
        &self.proc.spec.name
    }

    /// Waits until this node saw every other name in `names` join.
    pub fn wait_members(&mut self, names: &[&str]) {
        let own = self.name().to_string();
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != own).collect();
        self.proc.wait_members(&others, Duration::from_secs(10));
    }
}

/// Starts `names` on the first ports of `ports` (the rest are spare members, e.g. a node that
/// joins later) and waits for a full mesh.
pub fn http_cluster(names: &[&str], ports: &[u16], config: &Path) -> Vec<HttpNode> {
    let mut nodes: Vec<HttpNode> = names
        .iter()
        .zip(ports)
        .map(|(n, p)| HttpNode::spawn(n, *p, ports, config))
        .collect();
    for n in nodes.iter_mut() {
        n.wait_members(names);
    }
    nodes
}

/// One HTTP answer; `cookie` is the `JSESSIONID=<id>.<route>` of a Set-Cookie, if any.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub cookie: Option<String>,
}

impl Reply {
    /// The value of token `key=` in the one-line body.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body
            .split_whitespace()
            .find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// `JSESSIONID=<id>.<old>` → `JSESSIONID=<id>.<route>` (read a replica without a route rewrite).
pub fn with_route(cookie: &str, route: &str) -> String {
    let base = cookie.rsplit_once('.').map(|(b, _)| b).unwrap_or(cookie);
    format!("{base}.{route}")
}

/// What a check of counter sessions found (the columns of the harness' tables).
#[derive(Clone, Debug, Default)]
pub struct Check {
    pub total: usize,
    pub ok: usize,
    /// Found with a lower counter than expected.
    pub stale: usize,
    pub no_attr: usize,
    pub missing: usize,
    pub errors: usize,
    /// Answered with a new cookie naming another route (JvmRouteBinderValve).
    pub rewritten: usize,
    /// Cookies of the sessions that were not ok, with what was seen.
    pub bad: Vec<(String, String)>,
}

/// A blocking facade over an async keep-alive client (tests are plain `#[test]` functions).
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Http {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = shoal_testkit::http_client_builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        Http { rt, client }
    }

    pub fn try_get(&self, addr: &str, path: &str, cookie: Option<&str>) -> Result<Reply, String> {
        self.rt.block_on(get(&self.client, addr, path, cookie))
    }

    pub fn get(&self, addr: &str, path: &str, cookie: Option<&str>) -> Reply {
        self.try_get(addr, path, cookie)
            .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
    }

    /// Polls `/app/stats` until token `key` satisfies `pred`; returns the last value seen.
    pub fn wait_stat(
        &self,
        addr: &str,
        key: &str,
        pred: impl Fn(i64) -> bool,
        within: Duration,
    ) -> Result<i64, String> {
        let deadline = Instant::now() + within;
        let mut last = String::from("no answer");
        loop {
            if let Ok(r) = self.try_get(addr, "/app/stats", None) {
                if let Some(v) = r.field(key).and_then(|v| v.parse::<i64>().ok()) {
                    if r.status == 200 && pred(v) {
                        return Ok(v);
                    }
                }
                last = format!("{} {}", r.status, r.body.trim());
            }
            if Instant::now() > deadline {
                return Err(format!("{addr} /app/stats {key}: last answer `{last}`"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates `n` sessions on `addr`, each with `increments` requests to /app/counter
    /// (so its counter ends at `increments`); `conc` requests in flight. Returns the cookies.
    pub fn create_sessions(
        &self,
        addr: &str,
        n: usize,
        increments: i64,
        conc: usize,
    ) -> Vec<String> {
        let c = &self.client;
        self.rt.block_on(async {
            let all: Vec<Result<String, String>> = stream::iter(0..n)
                .map(|_| create_one(c, addr, increments))
                .buffer_unordered(conc)
                .collect()
                .await;
            all.into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("creating a session on {addr}: {e}")))
                .collect()
        })
    }

    /// Reads `key=counter` of every cookie on `addr` (as given) and classifies the answers.
    pub fn check_counters(
        &self,
        addr: &str,
        cookies: &[String],
        expected: i64,
        conc: usize,
    ) -> Check {
        let c = &self.client;
        let replies: Vec<(String, Result<Reply, String>)> = self.rt.block_on(
            stream::iter(cookies.iter().cloned())
                .map(|ck| async move {
                    let r = get(c, addr, "/app/get?key=counter", Some(&ck)).await;
                    (ck, r)
                })
                .buffer_unordered(conc)
                .collect(),
        );
        classify(replies, expected)
    }
}

fn classify(replies: Vec<(String, Result<Reply, String>)>, expected: i64) -> Check {
    let mut ck = Check {
        total: replies.len(),
        ..Check::default()
    };
    for (cookie, r) in replies {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                ck.errors += 1;
                ck.bad.push((cookie, e));
                continue;
            }
        };
        let route = |c: &str| c.rsplit_once('.').map(|(_, r)| r.to_string());
        if r.cookie
            .as_deref()
            .is_some_and(|n| route(n) != route(&cookie))
        {
            ck.rewritten += 1;
        }
        let value = r.field("value").and_then(|v| v.parse::<i64>().ok());
        match (r.status, r.field("error"), value) {
            (200, _, Some(v)) if v == expected => ck.ok += 1,
            (200, _, Some(v)) if v < expected => ck.stale += 1,
            (404, Some("no-attribute"), _) => ck.no_attr += 1,
            (404, Some("no-session"), _) => ck.missing += 1,
            _ => ck.errors += 1,
        }
        if !(r.status == 200 && value == Some(expected)) {
            ck.bad
                .push((cookie, format!("{} {}", r.status, r.body.trim())));
        }
    }
    ck
}

async fn get(
    c: &reqwest::Client,
    addr: &str,
    path: &str,
    cookie: Option<&str>,
) -> Result<Reply, String> {
    let mut req = c.get(format!("http://{addr}{path}"));
    if let Some(ck) = cookie {
        req = req.header(reqwest::header::COOKIE, ck);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .find_map(|v| shoal_testkit::session_cookie(v.to_str().ok()?));
    let body = resp.text().await.map_err(|e| e.to_string())?;
    Ok(Reply {
        status,
        body,
        cookie,
    })
}

async fn create_one(c: &reqwest::Client, addr: &str, increments: i64) -> Result<String, String> {
    let first = get(c, addr, "/app/counter", None).await?;
    let mut cookie = first
        .cookie
        .clone()
        .ok_or_else(|| format!("no Set-Cookie on a new session: {first:?}"))?;
    let mut last = first;
    for _ in 1..increments {
        last = get(c, addr, "/app/counter", Some(&cookie)).await?;
        if let Some(n) = &last.cookie {
            cookie = n.clone();
        }
    }
    match last.field("counter").and_then(|v| v.parse::<i64>().ok()) {
        Some(v) if last.status == 200 && v == increments => Ok(cookie),
        _ => Err(format!(
            "expected counter={increments}, got {} {}",
            last.status,
            last.body.trim()
        )),
    }
}
