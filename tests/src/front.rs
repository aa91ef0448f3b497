//! Helpers for the tests of what sits in front of the nodes: `shoal balancer` and HAProxy
//! processes, and a bounded load of clients that each follow one session through the front
//! and log every attempt (for counter continuity and the failover gap).
use crate::{free_port, shoal_bin, temp_file};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A front process (balancer or HAProxy), killed on drop.
pub struct Front {
    pub addr: String,
    child: Child,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Front {
    /// `shoal balancer` with static `(route, host:port)` backends, or joined to the cluster
    /// (`join` = channel ports of the members, with `secret`).
    pub fn balancer(backends: &[(String, String)], join: &[u16], secret: &str) -> Front {
        Self::balancer_with(backends, join, secret, &[])
    }

    /// [`Front::balancer`] with extra arguments (e.g. `--backend-ca FILE`).
    pub fn balancer_with(
        backends: &[(String, String)],
        join: &[u16],
        secret: &str,
        extra: &[&str],
    ) -> Front {
        let port = free_port();
        let mut cmd = Command::new(shoal_bin());
        cmd.args(["balancer", "--listen", &format!("127.0.0.1:{port}")]);
        for (route, addr) in backends {
            cmd.args(["--backend", &format!("{route}={addr}")]);
        }
        if !join.is_empty() {
            cmd.arg("--join");
            for p in join {
                cmd.args(["--member", &format!("127.0.0.1:{p}")]);
            }
        }
        cmd.args(extra);
        cmd.env("SHOAL_CLUSTER_SECRET", secret)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("SHOAL_TEST_ECHO").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("spawn shoal balancer");
        let out = child.stdout.take().expect("balancer stdout");
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        assert!(line.contains("ready"), "balancer did not start: {line:?}");
        Front {
            addr: format!("127.0.0.1:{port}"),
            child,
        }
    }

    /// HAProxy with deploy/haproxy/haproxy.cfg, node addresses replaced by `nodes` (in route
    /// order node1..node3). Panics, saying how to install it, when haproxy is missing.
    pub fn haproxy(nodes: &[String]) -> Front {
        if let Err(e) = Command::new("haproxy").arg("-v").output() {
            panic!("haproxy cannot run ({e}): apt-get install haproxy (scripts/prereqs.sh does)");
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/haproxy/haproxy.cfg");
        let mut cfg = std::fs::read_to_string(path).expect("read deploy/haproxy/haproxy.cfg");
        for (i, addr) in nodes.iter().enumerate() {
            cfg = cfg.replace(&format!("127.0.0.1:{}", 18081 + i), addr);
        }
        let port = free_port();
        cfg = cfg.replace("127.0.0.1:18080", &format!("127.0.0.1:{port}"));
        let file = temp_file("haproxy.cfg", &cfg);
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn haproxy");
        let front = Front {
            addr: format!("127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(&front.addr, "/app/stats", None).map(|r| r.status) != Ok(200) {
            assert!(
                Instant::now() < deadline,
                "haproxy did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        front
    }
}

/// One answer of the raw client.
#[derive(Clone, Debug, PartialEq)]
pub struct Raw {
    pub status: u16,
    pub body: String,
    /// `JSESSIONID=...` of a Set-Cookie.
    pub cookie: Option<String>,
    /// `X-Shoal-Backend`.
    pub backend: Option<String>,
}

impl Raw {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body
            .split_whitespace()
            .find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// `GET path` on a fresh connection (`Connection: close`), 5 s timeout.
pub fn get(addr: &str, path: &str, cookie: Option<&str>) -> Result<Raw, String> {
    let r = shoal_testkit::get_blocking(addr, path, cookie, &[])?;
    Ok(Raw {
        backend: r.header("x-shoal-backend").map(str::to_string),
        status: r.status,
        body: r.body,
        cookie: r.cookie,
    })
}

/// One request of a load client.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub sent: Instant,
    pub done: Instant,
    pub reply: Result<Raw, String>,
}

impl Attempt {
    /// The counter of a 200 answer.
    pub fn counter(&self) -> Option<i64> {
        match &self.reply {
            Ok(r) if r.status == 200 => r.field("counter").and_then(|v| v.parse().ok()),
            _ => None,
        }
    }
}

/// What one client did: its session cookie (latest) and every attempt.
#[derive(Clone, Debug, Default)]
pub struct ClientLog {
    pub cookie: Option<String>,
    pub attempts: Vec<Attempt>,
}

/// `clients` threads, each with its own session, sending `GET /app/counter` to `front`
/// every `pace` until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<ClientLog>>,
    progress: Arc<Vec<std::sync::atomic::AtomicUsize>>,
}

impl Load {
    pub fn start(front: &str, clients: usize, pace: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let progress: Arc<Vec<_>> = Arc::new(
            (0..clients)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect(),
        );
        let handles = (0..clients)
            .map(|i| {
                let (stop, progress, front) = (stop.clone(), progress.clone(), front.to_string());
                std::thread::spawn(move || {
                    let mut log = ClientLog::default();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let reply = get(&front, "/app/counter", log.cookie.as_deref());
                        if let Ok(r) = &reply {
                            if r.cookie.is_some() {
                                log.cookie = r.cookie.clone();
                            }
                            if r.status == 200 {
                                progress[i].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        log.attempts.push(Attempt {
                            sent,
                            done: Instant::now(),
                            reply,
                        });
                        std::thread::sleep(pace);
                    }
                    log
                })
            })
            .collect();
        Load {
            stop,
            handles,
            progress,
        }
    }

    /// Successful requests per client so far.
    pub fn successes(&self) -> Vec<usize> {
        self.progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect()
    }

    /// Waits (deadline `within`) until every client has at least `n` more successes than in
    /// `base`; false on timeout.
    pub fn wait_successes(&self, base: &[usize], n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.successes().iter().zip(base).all(|(s, b)| *s >= b + n) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(self) -> Vec<ClientLog> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .map(|h| h.join().expect("load client thread"))
            .collect()
    }
}

/// Counter continuity of one client: every successful answer is the previous one + 1, plus at
/// most one per failed attempt in between (an unacknowledged request may have been applied),
/// plus `slack` once (a request applied on a killed node whose answer was lost, resent by the
/// front). An acknowledged update is never lost: the counter never goes back or stays.
pub fn continuity(log: &ClientLog, slack: i64) -> Result<(), String> {
    let mut last: Option<i64> = None;
    let (mut unacked, mut slack) = (0i64, slack);
    for a in &log.attempts {
        let Some(c) = a.counter() else {
            unacked += 1;
            continue;
        };
        let p = last.unwrap_or(0);
        let extra = c - p - 1 - unacked;
        if c <= p || extra > slack {
            return Err(format!(
                "counter went from {p} to {c} with {unacked} failed attempts between; failures {:?}",
                failures(log)
            ));
        }
        slack -= extra.max(0);
        unacked = 0;
        last = Some(c);
    }
    if last.is_none() {
        return Err("no successful request".into());
    }
    Ok(())
}

/// The last acknowledged counter of a client.
pub fn last_counter(log: &ClientLog) -> Option<i64> {
    log.attempts.iter().rev().find_map(Attempt::counter)
}

/// The backend that last answered this client successfully before `t`.
pub fn backend_before(log: &ClientLog, t: Instant) -> Option<String> {
    log.attempts
        .iter()
        .rev()
        .filter(|a| a.done < t && a.counter().is_some())
        .find_map(|a| a.reply.as_ref().ok().and_then(|r| r.backend.clone()))
}

/// Time from `t` to the end of the first successful request sent after `t`.
pub fn first_success_after(log: &ClientLog, t: Instant) -> Option<Duration> {
    log.attempts
        .iter()
        .find(|a| a.sent >= t && a.counter().is_some())
        .map(|a| a.done - t)
}

/// Failed attempts (transport error or non-200) of a client.
pub fn failures(log: &ClientLog) -> Vec<String> {
    log.attempts
        .iter()
        .filter(|a| a.counter().is_none())
        .map(|a| match &a.reply {
            Ok(r) => format!(
                "{} {} (from {:?}, {:?} long)",
                r.status,
                r.body.trim(),
                r.backend,
                a.done - a.sent
            ),
            Err(e) => e.clone(),
        })
        .collect()
}

/// Checks the clients of a rolling restart behind `front`: every failed request is one of
/// shoal-session's explicit "not acknowledged, retry" 503s (a delta reaching a just-restarted
/// node before that session came in its state transfer, a sync replication in flight to
/// the draining node as it leaves, or — BackupManager, while primaries move — a copy that
/// was behind meeting a newer version on its backup: a detected conflict), no acknowledged
/// update is lost, and each session reads back its last acknowledged counter. Returns
/// (those 503s, all requests).
pub fn check_rolling_restart(front: &str, logs: &[ClientLog]) -> (usize, usize) {
    let mut unacked = 0;
    for log in logs {
        let f = failures(log);
        assert!(
            f.iter().all(|e| e.contains("not acknowledged")
                && (e.contains("missing earlier versions")
                    || e.contains("disappeared: left")
                    || e.contains("a newer version of this session exists"))),
            "{:?}: failed requests {f:?}",
            log.cookie
        );
        unacked += f.len();
        continuity(log, 0).unwrap_or_else(|e| panic!("{e}"));
        let cookie = log.cookie.as_deref().expect("cookie");
        let r = get(front, "/app/get?key=counter", Some(cookie)).expect("read back");
        assert_eq!(
            r.field("value").and_then(|v| v.parse::<i64>().ok()),
            last_counter(log),
            "{cookie}: {}",
            r.body
        );
    }
    (unacked, logs.iter().map(|l| l.attempts.len()).sum())
}
