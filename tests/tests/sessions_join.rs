//! Joining node processes: a node that starts while the cluster holds 10,000 sessions gets all
//! of them (DeltaManager state transfer) and serves them; a node joining while a bounded load
//! loop writes to the cluster loses nothing (every write answered 200 is readable afterwards on
//! every node, the joiner included).
use shoal_tests::free_ports;
use shoal_tests::sessions::{http_cluster, session_config, with_route, Http, HttpNode};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONC: usize = 16;

#[test]
fn state_transfer_of_10000_sessions_to_a_joining_node() {
    const N: usize = 10_000;
    let cfg = session_config("delta", "sync", 1800);
    let ports = free_ports(3);
    // node1 and node2 list node3 as a (spare) static member.
    let nodes = http_cluster(&["node1", "node2"], &ports, &cfg);
    let http = Http::new();
    let cookies = http.create_sessions(&nodes[0].http, N, 1, CONC);

    let launch = Instant::now();
    let mut n3 = HttpNode::spawn("node3", ports[2], &ports, &cfg);
    let held = http
        .wait_stat(
            &n3.http,
            "activeSessions",
            |n| n == N as i64,
            Duration::from_secs(20),
        )
        .expect("node3 holds every session after the state transfer");
    eprintln!(
        "node3: {held} sessions, serving them {:?} after launch",
        launch.elapsed()
    );
    n3.wait_members(&["node1", "node2", "node3"]);

    let on3: Vec<String> = cookies.iter().map(|c| with_route(c, "node3")).collect();
    let c = http.check_counters(&n3.http, &on3, 1, CONC);
    assert_eq!(
        c.ok,
        N,
        "read on node3 (ok, stale, missing, errors): {:?}",
        (c.ok, c.stale, c.missing, c.errors)
    );
    assert_eq!(
        c.rewritten, 0,
        "reads under node3's own route are not rewritten"
    );
}

/// What one load worker knows about a session it wrote.
struct Written {
    cookie: String,
    /// Last counter answered with 200.
    acked: i64,
    /// A request after the last ack failed: it may or may not have been applied.
    uncertain: bool,
}

/// One worker: writes /app/counter on `addr`, starting a new session every `per_session`
/// requests, until `stop` (or a bound of requests).
fn worker(http: &Http, addr: &str, stop: &AtomicBool, done: &AtomicUsize) -> Vec<Written> {
    const MAX_REQUESTS: usize = 3000;
    let per_session = 10;
    let mut out: Vec<Written> = Vec::new();
    for i in 0..MAX_REQUESTS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let cookie = if i % per_session == 0 {
            None
        } else {
            out.last().map(|w| w.cookie.clone())
        };
        let r = http.try_get(addr, "/app/counter", cookie.as_deref());
        done.fetch_add(1, Ordering::Relaxed);
        let counter = r
            .as_ref()
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.field("counter").and_then(|v| v.parse::<i64>().ok()));
        match (cookie.is_none(), counter, r.ok().and_then(|r| r.cookie)) {
            (true, Some(v), Some(ck)) => out.push(Written {
                cookie: ck,
                acked: v,
                uncertain: false,
            }),
            (false, Some(v), _) => {
                if let Some(w) = out.last_mut() {
                    w.acked = v;
                    w.uncertain = false;
                }
            }
            (false, None, _) => {
                if let Some(w) = out.last_mut() {
                    w.uncertain = true;
                }
            }
            // A failed creation: no session to check.
            (true, _, _) => {}
        }
    }
    out
}

#[test]
fn node_joining_under_load_loses_no_acknowledged_write() {
    let cfg = session_config("delta", "sync", 1800);
    let ports = free_ports(3);
    let nodes = http_cluster(&["node1", "node2"], &ports, &cfg);
    let http = Arc::new(Http::new());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (http, stop, done) = (http.clone(), stop.clone(), done.clone());
            let addr = nodes[i % 2].http.clone();
            std::thread::spawn(move || worker(&http, &addr, &stop, &done))
        })
        .collect();
    let wait_done = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while done.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "load made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_done(300);
    let before = done.load(Ordering::Relaxed);
    let mut n3 = HttpNode::spawn("node3", ports[2], &ports, &cfg);
    n3.wait_members(&["node1", "node2", "node3"]);
    http.wait_stat(&n3.http, "members", |n| n == 2, Duration::from_secs(10))
        .expect("node3 serves");
    // Keep writing for a while after the join, then stop.
    wait_done(done.load(Ordering::Relaxed) + 500);
    stop.store(true, Ordering::Relaxed);
    let written: Vec<Written> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("load worker"))
        .collect();
    let total = done.load(Ordering::Relaxed);
    eprintln!(
        "{} sessions, {total} requests ({} during and after the join)",
        written.len(),
        total - before
    );
    assert!(written.len() > 20, "the load created sessions");

    for (addr, route) in [
        (&nodes[0].http, "node1"),
        (&nodes[1].http, "node2"),
        (&n3.http, "node3"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(10);
        for w in &written {
            let ck = with_route(&w.cookie, route);
            loop {
                let r = http.get(addr, "/app/get?key=counter", Some(&ck));
                let v = r.field("value").and_then(|v| v.parse::<i64>().ok());
                let good = match v {
                    Some(v) if w.uncertain => v == w.acked || v == w.acked + 1,
                    Some(v) => v == w.acked,
                    None => false,
                };
                if good {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{route}: session {} acked counter={} (uncertain: {}), read {} {}",
                    w.cookie,
                    w.acked,
                    w.uncertain,
                    r.status,
                    r.body.trim()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
