//! The figure of issue #12: time from a heal to a fully reconciled cluster with `SESSIONS`
//! (10,000 by default) sessions created on each side of a partition (`partition =
//! "available"`: both sides serve). Node3 is isolated, each side creates its sessions,
//! then the links heal: reconciled once every node holds every session (`/metrics`
//! `shoal_sessions_active`). The test asserts it happens within a bound and prints the
//! time; `scripts/bench-heal.sh` runs it several times on a release build and reports the
//! median.
use shoal_testkit::get_blocking;
use shoal_tests::netns::Lab;
use shoal_tests::split::{self, admin};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
/// A heal of 2 x 10,000 sessions must be reconciled within this long.
const BOUND: Duration = Duration::from_secs(60);

fn sessions() -> usize {
    std::env::var("SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// `n` new sessions on the node at `addr`, from 8 threads.
fn create(addr: &str, n: usize) {
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for _ in (t..n).step_by(8) {
                    let r = get_blocking(addr, "/app/counter", None, &[]).expect("create");
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
    });
}

/// `shoal_sessions_active` (the one context, `/app`) of the node whose admin API is `addr`.
fn active(addr: &str) -> Option<u64> {
    let (_, body) = admin(addr, "GET", "/metrics").ok()?;
    body.lines()
        .find(|l| l.starts_with("shoal_sessions_active{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_heal_of_two_sides_with_their_own_sessions_reconciles_every_node() {
    let n = sessions();
    let lab = Lab::new(3);
    let mut c = split::start(
        &lab,
        3,
        "manager = \"delta\"\nreplication = \"sync\"\npartition = \"available\"",
    );
    let since: Vec<usize> = c.nodes.iter_mut().map(|x| x.proc.mark()).collect();
    lab.isolate(2);
    c.nodes[0]
        .proc
        .wait_since(since[0], "member_disappeared", &["node3"], T);
    c.nodes[2]
        .proc
        .wait_since(since[2], "member_disappeared", &["node1", "node2"], T);
    let (majority, minority) = (c.nodes[0].http.clone(), c.nodes[2].http.clone());
    std::thread::scope(|s| {
        s.spawn(|| create(&majority, n));
        s.spawn(|| create(&minority, n));
    });
    let want = 2 * n as u64;
    assert_eq!(
        active(&c.admin[0]),
        Some(n as u64),
        "majority side before the heal"
    );
    assert_eq!(active(&c.admin[2]), Some(n as u64), "node3 before the heal");

    let healed = Instant::now();
    lab.heal();
    let reconciled = loop {
        let last: Vec<Option<u64>> = c.admin.iter().map(|a| active(a)).collect();
        if last.iter().all(|v| *v == Some(want)) {
            break healed.elapsed();
        }
        assert!(
            healed.elapsed() < BOUND,
            "not reconciled {BOUND:?} after the heal: sessions per node {last:?}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "heal-to-reconciled: {} ms ({n} sessions on each side, 3 nodes, delta sync, partition = available)",
        reconciled.as_millis()
    );
}
