//! Delay and loss between nodes in network namespaces (issue #12): every link through a
//! fault proxy (tests/src/fault_proxy.rs, wired by `Lab::proxy_links`).
//!
//! - the proxies carry the cluster channel: three nodes find each other through them, and
//!   the delay set on a link is measured on it (time to a node's first handshake frame);
//! - the failure detector under 50 ms delay on every link and 5% packet loss from every node:
//!   no live member is dropped during a bounded run, and a member killed with kill -9 is
//!   dropped by both others within 1 s. `SHOAL_FD_SECS` (default 20) sets the run and
//!   `SHOAL_FD_ROUNDS` (default 1) how many kill/restart rounds follow one another;
//!   `scripts/fd-figures.sh` runs it long and prints the figures (docs/failure-detection.md).
use shoal_tests::netns::Lab;
use shoal_tests::{NodeProc, NodeSpec};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SECRET: &str = "netns-delay-secret-0123456789";
const NAMES: [&str; 3] = ["d1", "d2", "d3"];
const T: Duration = Duration::from_secs(20);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A proxied lab of three and its cluster port.
fn proxied_lab() -> (Lab, u16) {
    let mut lab = Lab::new(3);
    let port = shoal_tests::free_port();
    lab.proxy_links(port);
    (lab, port)
}

fn spawn(lab: &Lab, port: u16, i: usize) -> NodeProc {
    let addrs: Vec<String> = (0..lab.len())
        .map(|j| format!("{}:{port}", lab.ip(j)))
        .collect();
    NodeProc::spawn(NodeSpec {
        bind: lab.ip(i).to_string(),
        member_addrs: addrs,
        netns: Some(lab.ns(i)),
        ..NodeSpec::new(NAMES[i], port, &[], SECRET)
    })
}

fn others(i: usize) -> Vec<&'static str> {
    (0..3).filter(|&j| j != i).map(|j| NAMES[j]).collect()
}

/// Time from connecting to the proxy of link `from` → `to` until `to`'s Challenge frame
/// (the first thing a node sends on an accepted connection) arrives.
fn first_frame_after(lab: &Lab, from: usize, to: usize) -> Duration {
    let t = Instant::now();
    let mut c = TcpStream::connect(lab.link(from, to).addr()).expect("connect to the proxy");
    c.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut b = [0u8; 1];
    c.read_exact(&mut b).expect("a challenge frame");
    t.elapsed()
}

#[test]
fn the_cluster_channel_runs_through_the_proxies_and_their_delay_is_measured() {
    let (lab, port) = proxied_lab();
    lab.delay_all(Duration::from_millis(50), Duration::from_millis(5));
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| spawn(&lab, port, i)).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.wait_members(&others(i), T);
    }
    for (from, from_name) in NAMES.iter().enumerate() {
        for (to, to_name) in NAMES.iter().enumerate().filter(|&(t, _)| t != from) {
            assert!(
                lab.link(from, to).accepted() > 0,
                "{from_name} reached {to_name} without the proxy"
            );
        }
    }
    let slow = first_frame_after(&lab, 0, 1);
    assert!(
        slow >= Duration::from_millis(45),
        "50 ± 5 ms on the link: {slow:?}"
    );
    lab.delay(0, 1, Duration::ZERO, Duration::ZERO);
    let fast = first_frame_after(&lab, 0, 1);
    assert!(fast < slow, "no delay {fast:?}, delay {slow:?}");
    for n in &mut nodes {
        assert!(n.is_running(), "{} exited", n.spec.name);
    }
}

#[test]
fn failure_detector_under_delay_and_loss_drops_no_live_member_and_a_dead_one_within_1s() {
    let live = Duration::from_secs(env_u64("SHOAL_FD_SECS", 20));
    let rounds = env_u64("SHOAL_FD_ROUNDS", 1);
    let (lab, port) = proxied_lab();
    lab.delay_all(Duration::from_millis(50), Duration::from_millis(5));
    for i in 0..3 {
        lab.loss(i, 5);
    }
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| spawn(&lab, port, i)).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.wait_members(&others(i), T);
    }
    let mut drops = Vec::new();
    let mut watched = Duration::ZERO;
    for round in 0..rounds {
        // Live: nobody may be dropped.
        let since: Vec<usize> = nodes.iter_mut().map(NodeProc::mark).collect();
        let start = Instant::now();
        while start.elapsed() < live {
            std::thread::sleep(shoal_testkit::POLL_EVERY);
            for (n, &m) in nodes.iter_mut().zip(&since) {
                n.drain();
                let false_drops: Vec<String> = n.kinds()[m..]
                    .iter()
                    .filter(|k| k.starts_with("\"member_disappeared\""))
                    .cloned()
                    .collect();
                assert!(
                    false_drops.is_empty(),
                    "round {round}: {} dropped a live member after {:?} under 50 ms delay and 5% loss: {false_drops:?}\nstderr:\n{}",
                    n.spec.name,
                    start.elapsed(),
                    n.stderr_text()
                );
            }
        }
        watched += live;
        // Dead: node 3, killed, is dropped by both others within 1 s.
        let since: Vec<usize> = nodes.iter_mut().map(NodeProc::mark).collect();
        let killed = nodes[2].kill9();
        for (i, n) in nodes.iter_mut().enumerate().take(2) {
            n.wait_since(since[i], "member_disappeared", &["d3"], T);
            let e = n.history[since[i]..]
                .iter()
                .find(|e| e.json["event"] == "member_disappeared" && e.json["name"] == "d3")
                .expect("the event just waited for");
            drops.push(e.at.saturating_duration_since(killed));
        }
        println!(
            "fd round {round}: {live:?} live without a false drop; dead member dropped after {:?} and {:?}",
            drops[drops.len() - 2],
            drops[drops.len() - 1]
        );
        if round + 1 < rounds {
            nodes[2] = spawn(&lab, port, 2);
            for (i, n) in nodes.iter_mut().enumerate() {
                n.wait_new_member_event("member_added", if i == 2 { "d1" } else { "d3" }, T);
            }
        }
    }
    let mut sorted = drops.clone();
    sorted.sort();
    println!(
        "fd figures: {} drops of a killed member, median {:?}, worst {:?}; 0 false drops in {:?} of a live 3-node cluster ({} rounds of {live:?}, each node watching 2 members)",
        sorted.len(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        watched,
        rounds
    );
    for (i, d) in drops.iter().enumerate() {
        assert!(
            *d <= Duration::from_secs(1),
            "drop {i} of the killed member took {d:?} (over 1 s): {drops:?}"
        );
    }
}
