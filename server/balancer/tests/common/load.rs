//! The kill-under-load scenario shared by the built-in balancer and HAProxy tests.
//!
//! 30 sessions (10 per node) are exercised by 6 concurrent clients, each owning 5 sessions
//! and checking that every counter is the previous one plus one. After 400 ms one node is
//! killed; the loop runs 1.6 s more. The failover gap is the time from the kill to the last
//! failed request of the killed node's sessions.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::StatusCode;

use super::{FakeNode, HttpClient};

const WORKERS: usize = 6;
const SESSIONS: usize = 30;

#[derive(Debug, Default)]
pub struct Report {
    pub requests: usize,
    /// Requests of the killed node's sessions that got no 200.
    pub failed: usize,
    /// Failures of sessions of live nodes (must be 0).
    pub failed_elsewhere: usize,
    /// Counters that skipped or repeated: session data lost or duplicated.
    pub mismatches: usize,
    /// Sessions whose last request failed or still went to the killed node.
    pub not_recovered: usize,
    pub gap: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} failed (victim's sessions), {} failed elsewhere, {} counter mismatches, {} not recovered, gap {} ms",
            self.requests,
            self.failed,
            self.failed_elsewhere,
            self.mismatches,
            self.not_recovered,
            self.gap.as_millis()
        )
    }
}

impl Report {
    pub fn assert_ok(&self) {
        assert_eq!(
            self.failed_elsewhere, 0,
            "sessions of live nodes failed: {self}"
        );
        assert_eq!(
            self.mismatches, 0,
            "session data lost or duplicated: {self}"
        );
        assert_eq!(
            self.not_recovered, 0,
            "sessions did not move to a live node: {self}"
        );
        assert!(
            self.failed <= WORKERS,
            "more failures than requests in flight: {self}"
        );
        assert!(
            self.gap <= Duration::from_secs(1),
            "failover gap above 1 s: {self}"
        );
    }
}

pub struct Session {
    route: String,
    cookie: String,
    counter: u64,
    /// A request failed since the last success, so the counter may have moved once.
    uncertain: bool,
    last_ok: bool,
    last_backend: Option<String>,
}

/// Clients running against a balancer until their deadline.
pub struct Load {
    workers: Vec<tokio::task::JoinHandle<(Vec<Session>, WorkerStats)>>,
}

/// Opens 30 sessions through `addr`, then keeps 6 clients busy on them for `run_for`.
pub async fn start_load(addr: SocketAddr, run_for: Duration) -> Load {
    let http = HttpClient::new();
    let mut groups: Vec<Vec<Session>> = (0..WORKERS).map(|_| Vec::new()).collect();
    for i in 0..SESSIONS {
        let a = http
            .get(addr, "/app/counter", None)
            .await
            .expect("new session");
        let cookie = a.cookie.clone().expect("new session cookie");
        let route = cookie.rsplit('.').next().unwrap_or_default().to_string();
        let session = Session {
            route,
            cookie,
            counter: 1,
            uncertain: false,
            last_ok: true,
            last_backend: None,
        };
        groups[i % WORKERS].push(session);
    }
    let stop_at = Instant::now() + run_for;
    let workers = groups
        .into_iter()
        .map(|group| tokio::spawn(worker(http.clone(), addr, group, stop_at)))
        .collect();
    Load { workers }
}

impl Load {
    /// Waits for the clients to finish. Failures of `victim`'s sessions count as `failed`
    /// (and set the gap from `event_at`), all others as `failed_elsewhere`.
    pub async fn report(self, victim: Option<&str>, event_at: Instant) -> Report {
        let mut report = Report::default();
        let mut last_failure: Option<Instant> = None;
        for w in self.workers {
            let (group, stats) = w.await.expect("load worker");
            report.requests += stats.requests;
            report.mismatches += stats.mismatches;
            for (route, at) in stats.failures {
                if Some(route.as_str()) == victim {
                    report.failed += 1;
                    last_failure = Some(last_failure.map_or(at, |l: Instant| l.max(at)));
                } else {
                    report.failed_elsewhere += 1;
                }
            }
            for s in group {
                let backend = s.last_backend.unwrap_or_default();
                let moved = Some(s.route.as_str()) != victim
                    || (Some(backend.as_str()) != victim
                        && s.cookie.ends_with(&format!(".{backend}")));
                if !s.last_ok || !moved {
                    report.not_recovered += 1;
                }
            }
        }
        report.gap = last_failure.map_or(Duration::ZERO, |t| t.saturating_duration_since(event_at));
        report
    }
}

/// Kills `victim` 400 ms into a 2 s load and reports.
pub async fn kill_under_load(addr: SocketAddr, nodes: &mut Vec<FakeNode>, victim: &str) -> Report {
    let load = start_load(addr, Duration::from_millis(2000)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed_at = Instant::now();
    let index = nodes
        .iter()
        .position(|n| n.state.route == victim)
        .expect("victim node");
    nodes.remove(index).kill();
    load.report(Some(victim), killed_at).await
}

#[derive(Default)]
struct WorkerStats {
    requests: usize,
    mismatches: usize,
    /// (original route of the session, time of the failure)
    failures: Vec<(String, Instant)>,
}

async fn worker(
    http: HttpClient,
    addr: SocketAddr,
    mut group: Vec<Session>,
    stop_at: Instant,
) -> (Vec<Session>, WorkerStats) {
    let mut stats = WorkerStats::default();
    while Instant::now() < stop_at {
        for s in group.iter_mut() {
            let answer = http.get(addr, "/app/counter", Some(&s.cookie)).await;
            stats.requests += 1;
            match answer {
                Ok(a) if a.status == StatusCode::OK => {
                    let n: u64 = a.field("counter").and_then(|c| c.parse().ok()).unwrap_or(0);
                    let expected = n == s.counter + 1 || (s.uncertain && n == s.counter + 2);
                    if !expected {
                        eprintln!("session {}: counter {n} after {}", s.cookie, s.counter);
                        stats.mismatches += 1;
                    }
                    s.counter = n;
                    s.uncertain = false;
                    s.last_ok = true;
                    if let Some(c) = &a.cookie {
                        s.cookie = c.clone();
                    }
                    s.last_backend = a.backend;
                }
                other => {
                    eprintln!("session {} failed: {other:?}", s.cookie);
                    s.uncertain = true;
                    s.last_ok = false;
                    stats.failures.push((s.route.clone(), Instant::now()));
                }
            }
        }
    }
    (group, stats)
}
