//! Helpers for shoal's multi-process tests: spawn real `shoal node` processes on loopback and
//! wait for what they report.
//!
//! How a test observes a node: the node runs with `--json-events` (one JSON object per line
//! on stdout: `ready`, `member_added`, `member_disappeared`, `received`, `send_report`, ...)
//! and `--control-stdin` (commands such as `send ack TEXT`). Its stderr (tracing logs) is
//! kept too, for asserting on logged reasons. Every wait has a deadline; nothing sleeps.
//!
//! The binary is `target/<profile>/shoal`, found next to the test executable; `scripts/test.sh`
//! builds the workspace before testing (alone: `cargo build -p shoal && cargo test -p shoal-tests`).
pub mod cut;
pub mod farm;
pub mod fault_proxy;
pub mod frames;
pub mod front;
pub mod front_kill;
pub mod history;
pub mod netns;
pub mod persistent;
pub mod sessions;
pub mod split;
pub mod workload;

/// Ports for the nodes' listeners, below the kernel's ephemeral range.
pub use shoal_testkit::{free_port, free_ports, free_run};

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of the `shoal` binary of this build.
pub fn shoal_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SHOAL_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test exe> → target/<profile>/shoal
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile> directory");
    let bin = dir.join("shoal");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p shoal` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// What to start.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    pub port: u16,
    pub bind: String,
    /// Static members (ports on 127.0.0.1).
    pub members: Vec<u16>,
    pub secret: Option<String>,
    pub config: Option<PathBuf>,
    /// Static members at other addresses (`host:port`), e.g. nodes in other namespaces.
    pub member_addrs: Vec<String>,
    /// The network namespace the node runs in (`ip netns exec`), see [`netns::Lab`].
    pub netns: Option<String>,
}

impl NodeSpec {
    pub fn new(name: &str, port: u16, members: &[u16], secret: &str) -> Self {
        NodeSpec {
            name: name.into(),
            port,
            bind: "127.0.0.1".into(),
            members: members.to_vec(),
            secret: Some(secret.into()),
            config: None,
            member_addrs: Vec::new(),
            netns: None,
        }
    }
}

/// The working directory of a spawned node: its own, so that what a node keeps under its
/// working directory (the farm's `data/farm/<name>`, locked while it runs) is never shared
/// with a node of the same name in another test of this binary, which runs in parallel.
/// Keyed by name and receiver port, so a restarted node finds its directory again.
pub fn node_workdir(spec: &NodeSpec) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("shoal-tests-{}", std::process::id()))
        .join(format!("{}-{}", spec.name, spec.port));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// One event line with the instant it was read.
#[derive(Clone, Debug)]
pub struct Ev {
    pub at: Instant,
    pub json: Value,
}

pub struct NodeProc {
    pub spec: NodeSpec,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Ev>,
    /// Every event read so far, for assertions about what did *not* happen.
    pub history: Vec<Ev>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl NodeProc {
    pub fn spawn(spec: NodeSpec) -> NodeProc {
        Self::spawn_with(spec, &[])
    }

    /// Like [`NodeProc::spawn`], with extra command-line arguments (e.g. `--http-port 0`).
    pub fn spawn_with(spec: NodeSpec, extra: &[&str]) -> NodeProc {
        let mut cmd = match &spec.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(shoal_bin());
                c
            }
            None => Command::new(shoal_bin()),
        };
        cmd.args([
            "node",
            "--json-events",
            "--control-stdin",
            "--name",
            &spec.name,
        ]);
        cmd.args(["--port", &spec.port.to_string(), "--bind", &spec.bind]);
        for p in &spec.members {
            cmd.args(["--member", &format!("127.0.0.1:{p}")]);
        }
        for a in &spec.member_addrs {
            cmd.args(["--member", a]);
        }
        if let Some(c) = &spec.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(extra);
        cmd.current_dir(node_workdir(&spec));
        cmd.env_remove("SHOAL_CLUSTER_SECRET");
        if let Some(s) = &spec.secret {
            cmd.env("SHOAL_CLUSTER_SECRET", s);
        }
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", spec.name));
        let (tx, events) = channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<Value>(&line) {
                    if tx
                        .send(Ev {
                            at: Instant::now(),
                            json,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (err, sink, name) = (
            child.stderr.take().expect("stderr"),
            stderr.clone(),
            spec.name.clone(),
        );
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var_os("SHOAL_TEST_ECHO").is_some() {
                    eprintln!("[{name}] {line}");
                }
                if let Ok(mut v) = sink.lock() {
                    v.push(line);
                }
            }
        });
        let stdin = child.stdin.take();
        let mut p = NodeProc {
            spec,
            child,
            stdin,
            events,
            history: Vec::new(),
            stderr,
        };
        p.wait_event("ready", |_| true, Duration::from_secs(10));
        p
    }

    /// Waits for an event of `kind` matching `pred` (history first, then new lines).
    pub fn wait_event(
        &mut self,
        kind: &str,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Ev {
        self.try_wait_event(kind, &pred, within).unwrap_or_else(|| {
            panic!(
                "{}: no {kind} event within {within:?}; saw {:#?}\nstderr:\n{}",
                self.spec.name,
                self.kinds(),
                self.stderr_text()
            )
        })
    }

    pub fn try_wait_event(
        &mut self,
        kind: &str,
        pred: &dyn Fn(&Value) -> bool,
        within: Duration,
    ) -> Option<Ev> {
        let deadline = Instant::now() + within;
        let matches = |e: &Ev| e.json["event"] == kind && pred(&e.json);
        if let Some(e) = self.history.iter().find(|e| matches(e)) {
            return Some(e.clone());
        }
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let e = self.events.recv_timeout(left).ok()?;
            self.history.push(e.clone());
            if matches(&e) {
                return Some(e);
            }
        }
    }

    /// Waits for a *new* event (not in history) of `kind` about member `name`.
    pub fn wait_new_member_event(&mut self, kind: &str, name: &str, within: Duration) -> Ev {
        let seen = self.history.len();
        let deadline = Instant::now() + within;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| {
                    panic!(
                        "{}: no new {kind} for {name} within {within:?}; saw {:#?}\nstderr:\n{}",
                        self.spec.name,
                        &self.kinds()[seen..],
                        self.stderr_text()
                    )
                });
            if let Ok(e) = self.events.recv_timeout(left) {
                self.history.push(e.clone());
                if e.json["event"] == kind && e.json["name"] == name {
                    return e;
                }
            }
        }
    }

    /// Waits until both `names` were added (in any order).
    pub fn wait_members(&mut self, names: &[&str], within: Duration) {
        for n in names {
            self.wait_event("member_added", |v| v["name"] == *n, within);
        }
    }

    /// A mark in this node's event history after every event so far was read: pass it to
    /// [`NodeProc::wait_since`] to wait only for what comes after (e.g. a fault's effects).
    pub fn mark(&mut self) -> usize {
        self.drain();
        self.history.len()
    }

    /// Waits until this node reported a `kind` event for each member of `names` after `mark`.
    pub fn wait_since(&mut self, mark: usize, kind: &str, names: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            self.drain();
            let seen = |name: &str| {
                self.history[mark..]
                    .iter()
                    .any(|e| e.json["event"] == kind && e.json["name"] == name)
            };
            if names.iter().all(|n| seen(n)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {kind} for each of {names:?} within {within:?}; saw {:?}\nstderr:\n{}",
                self.spec.name,
                &self.kinds()[mark..],
                self.stderr_text()
            );
            std::thread::sleep(shoal_testkit::POLL_EVERY);
        }
    }

    /// Reads pending lines into history without waiting.
    pub fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.history.push(e);
        }
    }

    pub fn kinds(&self) -> Vec<String> {
        self.history
            .iter()
            .map(|e| format!("{} {}", e.json["event"], e.json["name"]))
            .collect()
    }

    /// Sends one control line (`send ack TEXT`, `stats`, `leave`, `quit`).
    pub fn command(&mut self, line: &str) {
        let w = self.stdin.as_mut().expect("stdin open");
        writeln!(w, "{line}")
            .and_then(|_| w.flush())
            .expect("write to node stdin");
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    /// Waits for a log line containing every needle.
    pub fn wait_log(&self, needles: &[&str], within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(v) = self.stderr.lock() {
                if let Some(l) = v.iter().find(|l| needles.iter().all(|n| l.contains(n))) {
                    return Some(l.clone());
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL; returns the instant it was sent.
    pub fn kill9(&mut self) -> Instant {
        let t = Instant::now();
        let _ = self.child.kill();
        let _ = self.child.wait();
        t
    }

    /// Asks the node to quit and waits for it to exit.
    pub fn quit(mut self) {
        self.command("quit");
        self.wait_exit(Duration::from_secs(5));
    }

    /// Sends `signal` (`TERM`, `INT`, …) with kill(1); returns the instant it was sent.
    pub fn signal(&mut self, signal: &str) -> Instant {
        let t = Instant::now();
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{signal} {} failed", self.spec.name);
        t
    }

    /// Waits for the process to exit; its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}: {:?}",
                self.spec.name,
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `names.len()` nodes with static membership on fresh ports; waits for a full mesh.
pub fn cluster(names: &[&str], secret: &str) -> Vec<NodeProc> {
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let mut nodes: Vec<NodeProc> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| NodeProc::spawn(NodeSpec::new(n, *p, &ports, secret)))
        .collect();
    for node in nodes.iter_mut() {
        let others: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| *n != node.spec.name)
            .collect();
        node.wait_members(&others, Duration::from_secs(10));
    }
    nodes
}

/// A file in a fresh directory under the system temp dir (for config files).
pub fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("shoal-test-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write temp file");
    p
}

/// One admin API call with no body on a fresh connection, bearer `token`: (status, body).
pub fn admin_call(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
) -> Result<(u16, String), String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
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
