//! Helpers for the tests of stores behind real `shoal node` processes (persistent manager,
//! write-behind): the store under test (a SQLite file, a directory of files, or a real
//! Redis, PostgreSQL or MariaDB started by `shoal_store::testing::servers`) and its TOML,
//! nodes on fixed ports that can be killed and started again where a balancer expects
//! them, a client that follows one session and checks that its counter counts 1, 2, 3, …,
//! and readers of `/metrics` and of the rows in the store.
use crate::sessions::{HttpNode, SECRET};
use crate::{free_port, temp_file, NodeProc, NodeSpec};
use shoal_store::testing::servers::{self, Server};
use shoal_store::{FileConfig, SqlConfig, StoreConfig};
use shoal_testkit::get_blocking;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The admin token of every node these helpers start (for `/metrics`).
pub const TOKEN: &str = "persistent-test-admin-token-0123456789";

/// The five stores of the persistent manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// One SQLite file shared by the nodes (WAL).
    Sqlite,
    /// A directory of files.
    Files,
    Redis,
    Postgres,
    MariaDb,
}

/// A store for one test: its settings, and the server process behind it (stopped on drop).
pub struct TestStore {
    pub kind: StoreKind,
    pub config: StoreConfig,
    /// The real server, for the stores that have one.
    pub server: Option<Server>,
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    /// The test's own connection to the store, opened on first use.
    opened: std::sync::OnceLock<std::sync::Arc<dyn shoal_store::Store>>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestStore {
    /// Starts the store; a server that cannot start fails the test with the reason.
    pub fn start(kind: StoreKind) -> TestStore {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime for the test store");
        let dir = std::env::temp_dir().join(format!(
            "shoal-store-{kind:?}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let started = |what: &str, r: Result<Server, String>| {
            r.unwrap_or_else(|e| panic!("cannot start {what} for the store tests: {e}"))
        };
        let (config, server) = match kind {
            StoreKind::Sqlite => (
                StoreConfig::Sqlite(SqlConfig {
                    path: Some(dir.join("sessions.db")),
                    ..SqlConfig::default()
                }),
                None,
            ),
            StoreKind::Files => (
                StoreConfig::File(FileConfig {
                    directory: dir.join("sessions"),
                }),
                None,
            ),
            StoreKind::Redis => {
                let s = started("redis-server", rt.block_on(servers::redis()));
                (s.config(), Some(s))
            }
            StoreKind::Postgres => {
                let s = started("postgres", rt.block_on(servers::postgres()));
                (s.config(), Some(s))
            }
            StoreKind::MariaDb => {
                let s = started("mariadbd", rt.block_on(servers::mariadb()));
                (s.config(), Some(s))
            }
        };
        TestStore {
            kind,
            config,
            server,
            rt,
            dir,
            opened: std::sync::OnceLock::new(),
        }
    }

    /// The `[..session.store]` table's body (`kind = …` and the settings that differ from
    /// the defaults).
    pub fn toml(&self) -> String {
        let json = serde_json::to_value(&self.config).expect("store config as JSON");
        let mut out = String::new();
        let Some(obj) = json.as_object() else {
            panic!("store config is not a table: {json}");
        };
        for (k, v) in obj {
            match v {
                serde_json::Value::Null => {}
                // JSON strings, numbers and booleans are valid TOML values as written.
                serde_json::Value::String(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::Bool(_) => out.push_str(&format!("{k} = {v}\n")),
                other => panic!("store setting {k} = {other}: not a TOML scalar"),
            }
        }
        out
    }

    /// `kill -9` of the store's server (an outage).
    pub fn kill9(&mut self) {
        self.server
            .as_mut()
            .unwrap_or_else(|| panic!("{:?} has no server to kill", self.kind))
            .kill9();
    }

    /// Starts the killed server again on its port and data; fails the test if it cannot.
    pub fn restart(&mut self) {
        let kind = self.kind;
        let server = self
            .server
            .as_mut()
            .unwrap_or_else(|| panic!("{kind:?} has no server to restart"));
        self.rt
            .block_on(server.restart())
            .unwrap_or_else(|e| panic!("cannot restart {kind:?}: {e}"));
    }

    /// The attribute `counter` of session `id` (no route) of context `/app` as stored, read
    /// straight from the store; `None` if there is no live row for it.
    pub fn stored_counter(&self, id: &str) -> Result<Option<i64>, String> {
        use shoal_session::persistent::record::{decode, Record};
        let store = match self.opened.get() {
            Some(s) => s.clone(),
            None => {
                let _in_runtime = self.rt.enter();
                let s = self.config.open().map_err(|e| e.to_string())?;
                self.opened.get_or_init(|| s).clone()
            }
        };
        let row = self
            .rt
            .block_on(store.load("/app", id))
            .map_err(|e| e.to_string())?;
        let Some(row) = row.filter(|r| r.valid) else {
            return Ok(None);
        };
        let sid = shoal_session::SessionId::parse(id).ok_or(format!("bad session id {id}"))?;
        match decode(&sid, &row.data).map_err(|e| e.to_string())? {
            Record::Live(s) => Ok(s
                .attributes
                .get("counter")
                .and_then(|v| v.as_json())
                .and_then(|v| v.as_i64())),
            Record::Moved { .. } => Ok(None),
        }
    }
}

/// A config file: `/app` with `manager = "persistent"` in `mode` (write-through) over
/// `store_toml`, sessions expiring after `max_inactive_secs`, HTTP on `http_port`, the
/// admin API on `admin_port`.
pub fn persistent_config(
    mode: &str,
    store_toml: &str,
    max_inactive_secs: u32,
    http_port: u16,
    admin_port: u16,
) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = {http_port}\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"persistent\"\nmax_inactive_secs = {max_inactive_secs}\n\n\
         [http.contexts.session.persistent]\nmode = \"{mode}\"\nmax_idle_backup = 0\nprocess_expires_frequency = 1\n\n\
         [http.contexts.session.store]\n{store_toml}\n\
         [admin]\nbind = \"127.0.0.1:{admin_port}\"\nadmin_token = \"{TOKEN}\"\n"
    );
    temp_file("shoal.toml", &toml)
}

/// A config file: `/app` with a replicated manager (`delta`/`backup`, sync) and a
/// write-behind store.
pub fn write_behind_config(
    manager: &str,
    store_toml: &str,
    http_port: u16,
    admin_port: u16,
) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = {http_port}\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"{manager}\"\nreplication = \"sync\"\nmax_inactive_secs = 1800\n\n\
         [http.contexts.session.store]\n{store_toml}\n\
         [http.contexts.session.write_behind]\nretry_max_ms = 500\n\n\
         [admin]\nbind = \"127.0.0.1:{admin_port}\"\nadmin_token = \"{TOKEN}\"\n"
    );
    temp_file("shoal.toml", &toml)
}

/// Fixed ports of one node, so it comes back where the balancer expects it.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub channel: u16,
    pub http: u16,
    pub admin: u16,
}

/// Nodes `node1..nodeN` on fixed ports, each started from the config `config(ports)`
/// gives, that can be killed and started again.
pub struct Nodes {
    pub nodes: Vec<Option<HttpNode>>,
    pub ports: Vec<Ports>,
    configs: Vec<PathBuf>,
}

impl Nodes {
    /// Starts `n` nodes and waits for a full mesh.
    pub fn start(n: usize, config: impl Fn(Ports) -> PathBuf) -> Nodes {
        let ports: Vec<Ports> = (0..n)
            .map(|_| Ports {
                channel: free_port(),
                http: free_port(),
                admin: free_port(),
            })
            .collect();
        let configs = ports.iter().map(|p| config(*p)).collect();
        let mut c = Nodes {
            nodes: (0..n).map(|_| None).collect(),
            ports,
            configs,
        };
        for i in 1..=n {
            c.spawn(i);
        }
        c.wait_mesh();
        c
    }

    pub fn name(i: usize) -> String {
        format!("node{i}")
    }

    /// Starts node `i` (1-based) on its ports.
    pub fn spawn(&mut self, i: usize) {
        let members: Vec<u16> = self.ports.iter().map(|p| p.channel).collect();
        let mut spec = NodeSpec::new(&Self::name(i), self.ports[i - 1].channel, &members, SECRET);
        spec.config = Some(self.configs[i - 1].clone());
        let mut proc = NodeProc::spawn(spec);
        let ready = proc.wait_event("ready", |_| true, Duration::from_secs(20));
        let http = ready.json["http"].as_str().unwrap_or_default().to_string();
        assert_eq!(
            http,
            format!("127.0.0.1:{}", self.ports[i - 1].http),
            "node{i}: {}",
            ready.json
        );
        self.nodes[i - 1] = Some(HttpNode { proc, http });
    }

    /// Waits until every running node saw every other running node join.
    pub fn wait_mesh(&mut self) {
        let names: Vec<String> = (1..=self.nodes.len())
            .filter(|i| self.nodes[i - 1].is_some())
            .map(Self::name)
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for n in self.nodes.iter_mut().flatten() {
            n.wait_members(&names);
        }
    }

    /// `kill -9` of node `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i - 1].take() {
            n.proc.kill9();
        }
    }

    /// SIGTERM to every running node at once; waits until each has exited.
    pub fn term_all(&mut self) {
        for n in self.nodes.iter_mut().flatten() {
            n.proc.signal("TERM");
        }
        for n in self.nodes.iter_mut().flatten() {
            let status = n.proc.wait_exit(Duration::from_secs(30));
            assert!(
                status.success(),
                "{} exited with {status} after SIGTERM: {}",
                n.name(),
                n.proc.stderr_text()
            );
        }
        for n in self.nodes.iter_mut() {
            *n = None;
        }
    }

    /// HTTP address of node `i` (whether it runs or not).
    pub fn http(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i - 1].http)
    }

    /// The stderr of node `i` so far (for failure messages).
    pub fn log(&self, i: usize) -> String {
        self.nodes[i - 1]
            .as_ref()
            .map(|n| n.proc.stderr_text())
            .unwrap_or_else(|| format!("node{i} is not running"))
    }

    /// The samples of metric `name` on node `i`'s `/metrics` (label sets as written).
    pub fn metric(&self, i: usize, name: &str) -> Result<Vec<(String, f64)>, String> {
        let addr = format!("127.0.0.1:{}", self.ports[i - 1].admin);
        let auth = format!("Bearer {TOKEN}");
        let r = get_blocking(&addr, "/metrics", None, &[("Authorization", &auth)])?;
        if r.status != 200 {
            return Err(format!(
                "node{i} /metrics answered {}: {}",
                r.status, r.body
            ));
        }
        Ok(r.body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                let bare = key.split('{').next()?;
                if bare != name {
                    return None;
                }
                Some((key.to_string(), value.parse().ok()?))
            })
            .collect())
    }
}

/// One answer of [`get_counter`]: status, counter (on 200), cookie set, backend header,
/// `Retry-After`, body.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub counter: Option<i64>,
    pub cookie: Option<String>,
    pub backend: Option<String>,
    pub retry_after: Option<String>,
    pub body: String,
}

/// `GET /app/counter` on `addr` with `cookie`, on a fresh connection.
pub fn get_counter(addr: &str, cookie: Option<&str>) -> Result<Answer, String> {
    let r = get_blocking(addr, "/app/counter", cookie, &[])?;
    Ok(Answer {
        status: r.status,
        counter: (r.status == 200)
            .then(|| r.field("counter").and_then(|v| v.parse().ok()))
            .flatten(),
        cookie: r.cookie.clone(),
        backend: r.header("x-shoal-backend").map(str::to_string),
        retry_after: r.header("retry-after").map(str::to_string),
        body: r.body.trim().to_string(),
    })
}

/// One client following one session: its cookie (replaced whenever a response sets
/// another, as a browser does) and every counter it was answered.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub cookie: Option<String>,
    /// The first cookie it was given (a browser tab that kept it replays it).
    pub first_cookie: Option<String>,
    pub seen: Vec<i64>,
}

impl Client {
    pub fn new() -> Client {
        Client::default()
    }

    /// One request to `addr` with the current cookie: answered 200 with the counter one
    /// above the last one seen. Returns the answer.
    pub fn count(&mut self, addr: &str, what: &str) -> Answer {
        let cookie = self.cookie.clone();
        self.count_with(addr, cookie.as_deref(), what)
    }

    /// [`Client::count`] presenting `cookie` instead of the current one (a replayed,
    /// older cookie); the session must still count on from the newest value.
    pub fn count_with(&mut self, addr: &str, cookie: Option<&str>, what: &str) -> Answer {
        let a = get_counter(addr, cookie).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.status, 200, "{what}: {a:?}");
        if let Some(c) = &a.cookie {
            if self.first_cookie.is_none() {
                self.first_cookie = Some(c.clone());
            }
            self.cookie = Some(c.clone());
        }
        let v = a
            .counter
            .unwrap_or_else(|| panic!("{what}: no counter in {a:?}"));
        let expected = self.seen.last().map_or(1, |l| l + 1);
        assert_eq!(
            v, expected,
            "{what}: served {v} after {:?}: a stale or lost session ({a:?})",
            self.seen
        );
        self.seen.push(v);
        a
    }

    /// The session id of the current cookie, without the route.
    pub fn id(&self) -> Option<String> {
        let c = self.cookie.as_deref()?.strip_prefix("JSESSIONID=")?;
        Some(c.split_once('.').map_or(c, |(id, _)| id).to_string())
    }
}

/// Waits (deadline `within`) until `cond` returns `Ok(true)`; panics naming `what` and
/// the last error or answer.
pub fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> Result<bool, String>) {
    let deadline = Instant::now() + within;
    loop {
        let last = match cond() {
            Ok(true) => return,
            Ok(false) => "condition false".to_string(),
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?} (last: {last})"
        );
        std::thread::sleep(shoal_testkit::POLL_EVERY);
    }
}

/// The balancer's view of backend `route` (`up`, `draining`, `down`) from its status page.
pub fn balancer_status(front: &str, route: &str) -> Result<String, String> {
    let r = get_blocking(front, "/balancer/status", None, &[])?;
    let v: serde_json::Value =
        serde_json::from_str(&r.body).map_err(|e| format!("status page: {e}: {}", r.body))?;
    v["backends"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["route"] == route))
        .and_then(|b| b["status"].as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("no backend {route} in {v}"))
}

/// A bounded load: `clients` threads, each following its own session on `addr` with
/// `GET /app/counter` until stopped or `max_requests` were sent, recording every answer.
pub struct CounterLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ok: std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>>,
    failed: std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>>,
    handles: Vec<std::thread::JoinHandle<Vec<Result<Answer, String>>>>,
}

impl CounterLoad {
    pub fn start(addr: &str, clients: usize, max_requests: usize) -> CounterLoad {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let counts = || {
            Arc::new(
                (0..clients)
                    .map(|_| AtomicUsize::new(0))
                    .collect::<Vec<_>>(),
            )
        };
        let (ok, failed) = (counts(), counts());
        let handles = (0..clients)
            .map(|i| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let addr = addr.to_string();
                std::thread::spawn(move || {
                    let mut cookie: Option<String> = None;
                    let mut log = Vec::new();
                    for _ in 0..max_requests {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let a = get_counter(&addr, cookie.as_deref());
                        match &a {
                            Ok(r) if r.status == 200 => {
                                if r.cookie.is_some() {
                                    cookie = r.cookie.clone();
                                }
                                ok[i].fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                failed[i].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        log.push(a);
                        // Paced, so a client does not spin on a failing node.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    log
                })
            })
            .collect();
        CounterLoad {
            stop,
            ok,
            failed,
            handles,
        }
    }

    /// 200 answers per client so far.
    pub fn successes(&self) -> Vec<usize> {
        use std::sync::atomic::Ordering;
        self.ok.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// Failed requests (transport error or not 200) of all clients so far.
    pub fn failures(&self) -> usize {
        use std::sync::atomic::Ordering;
        self.failed.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Waits (deadline `within`) until every client has `n` more successes than in `base`.
    pub fn wait_successes(&self, base: &[usize], n: usize, within: Duration, what: &str) {
        wait_for(what, within, || {
            let now = self.successes();
            Ok(now.iter().zip(base).all(|(s, b)| *s >= b + n))
        });
    }

    /// Stops the clients; every client's answers in order.
    pub fn stop(self) -> Vec<Vec<Result<Answer, String>>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handles
            .into_iter()
            .map(|h| h.join().expect("load client thread"))
            .collect()
    }
}

/// Checks one client's answers: the counters of its 200s go up by exactly one, plus at most
/// one per failed request in between (an unanswered request may have been applied); never
/// back, never the same twice. Returns the last acknowledged counter and its cookie.
pub fn check_counts(log: &[Result<Answer, String>]) -> Result<(i64, String), String> {
    let (mut last, mut failed, mut cookie) = (0i64, 0i64, None::<String>);
    for a in log {
        match a {
            Ok(r) if r.status == 200 => {
                let c = r.counter.ok_or(format!("200 without counter: {r:?}"))?;
                if c <= last || c > last + 1 + failed {
                    return Err(format!(
                        "counter went from {last} to {c} with {failed} failed requests between"
                    ));
                }
                if r.cookie.is_some() {
                    cookie = r.cookie.clone();
                }
                (last, failed) = (c, 0);
            }
            _ => failed += 1,
        }
    }
    match cookie {
        Some(c) if last > 0 => Ok((last, c)),
        _ => Err("no successful request".into()),
    }
}

/// The session id of a `JSESSIONID=<id>.<route>` cookie.
pub fn cookie_id(cookie: &str) -> &str {
    let v = cookie.strip_prefix("JSESSIONID=").unwrap_or(cookie);
    v.split_once('.').map_or(v, |(id, _)| id)
}
