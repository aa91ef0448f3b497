//! One test suite, run against every discovery provider: given a set of advertised receiver
//! addresses, the provider (1) yields all of them promptly, (2) yields them again later
//! (periodic re-offering, so restarts and healed partitions are found), and (3) yields no
//! address outside the advertised ports.
use super::multicast::multicast_loopback_check;
use super::*;
use crate::config::MulticastConfig;
use shoal_cluster::MemberId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use tokio::time::{timeout_at, Instant};

async fn collect_round(
    p: &mut dyn Discovery,
    want: &[SocketAddr],
    ports: &BTreeSet<u16>,
    round: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = BTreeSet::new();
    while !want.iter().all(|a| seen.contains(a)) {
        let batch = timeout_at(deadline, p.next()).await.unwrap_or_else(|_| {
            panic!(
                "{}: {round}: saw {seen:?}, wanted {want:?} within 3 s",
                p.name()
            )
        });
        for a in batch {
            assert!(
                ports.contains(&a.port()),
                "{}: yielded {a}, which nobody advertised",
                p.name()
            );
            seen.insert(a);
        }
    }
}

/// The shared properties; `want` is what the fixture advertised.
pub(crate) async fn check(mut p: Box<dyn Discovery>, want: Vec<SocketAddr>) {
    let ports: BTreeSet<u16> = want.iter().map(|a| a.port()).collect();
    collect_round(p.as_mut(), &want, &ports, "first round").await;
    collect_round(p.as_mut(), &want, &ports, "second round (re-offer)").await;
}

fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
    ports
        .iter()
        .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *p))
        .collect()
}

const FAST: Duration = Duration::from_millis(50);

#[tokio::test]
async fn memory_twin() {
    let net = MemoryNet::default();
    let want = addrs(&[4101, 4102, 4103]);
    for a in &want {
        net.announce(*a);
    }
    check(Box::new(MemoryDiscovery::new(net, FAST)), want).await;
}

#[tokio::test]
async fn static_list() {
    let want = addrs(&[4201, 4202]);
    let entries = vec!["127.0.0.1:4201".to_string(), "localhost:4202".to_string()];
    let mut p = StaticDiscovery::new(entries, FAST);
    // `localhost` may also resolve to ::1; the suite allows any address with an advertised port.
    check(
        Box::new(StaticDiscovery::new(
            vec!["127.0.0.1:4201".into(), "127.0.0.1:4202".into()],
            FAST,
        )),
        want,
    )
    .await;
    let first = p.next().await;
    assert!(
        first.iter().any(|a| a.port() == 4202),
        "host names resolve: {first:?}"
    );
}

#[tokio::test]
async fn dns_localhost() {
    // `localhost` resolves to 127.0.0.1 (and maybe ::1): the candidates of a one-address "service".
    check(
        Box::new(DnsDiscovery::new("localhost".into(), 4301, FAST)),
        addrs(&[4301]),
    )
    .await;
}

fn member(port: u16, seed: u8) -> Member {
    Member {
        id: MemberId([seed; 16]),
        name: format!("m{seed}"),
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        domain: "default".into(),
        incarnation: 1,
        meta: BTreeMap::new(),
    }
}

fn mcast_cfg(port: u16) -> MulticastConfig {
    MulticastConfig {
        port,
        frequency_ms: 50,
        ttl: 0,
        interface: Some("127.0.0.1".into()),
        ..MulticastConfig::default()
    }
}

/// Multicast needs `lo` with MULTICAST and a 224.0.0.0/4 route. Where this host's `lo`
/// lacks them, the test runs again in a network namespace of its own (`unshare --net`, as
/// root: CI is) that has them, and `false` says the child ran it and passed; a host where
/// neither works fails the test with the reason. Nothing on the host is changed.
async fn multicast_here_or_in_netns(port: u16, test: &str) -> bool {
    let why = match multicast_loopback_check(Ipv4Addr::new(228, 0, 0, 4), port).await {
        Ok(()) => return true,
        Err(why) => why,
    };
    assert!(
        std::env::var_os("SHOAL_TEST_NETNS").is_none(),
        "multicast on lo inside the test's own network namespace: {why}"
    );
    let exe = std::env::current_exe().expect("the test binary's path");
    let script = "ip link set lo up && ip link set lo multicast on \
        && ip route add 224.0.0.0/4 dev lo && exec \"$0\" --exact \"$1\" --test-threads 1";
    let out = std::process::Command::new("unshare")
        .args(["--net", "--", "sh", "-c", script])
        .arg(&exe)
        .arg(test)
        .env("SHOAL_TEST_NETNS", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("lo has no multicast here ({why}) and `unshare --net` cannot run ({e}): run the tests as root, or enable multicast on lo")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in a network namespace of its own (lo here: {why}): {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[tokio::test]
async fn multicast_beacons() {
    // A port of its own, away from the default 45564 other nodes on this host may use.
    let port = 45_611;
    if !multicast_here_or_in_netns(port, "discovery::suite::multicast_beacons").await {
        return;
    }
    let secret = ClusterSecret::new(b"suite".to_vec());
    let a =
        MulticastDiscovery::start(&mcast_cfg(port), member(4401, 1), secret.clone()).expect("a");
    let b =
        MulticastDiscovery::start(&mcast_cfg(port), member(4402, 2), secret.clone()).expect("b");
    let listener =
        MulticastDiscovery::start(&mcast_cfg(port), member(4400, 0), secret).expect("listener");
    check(Box::new(listener), addrs(&[4401, 4402])).await;
    drop((a, b));
}

#[tokio::test]
async fn multicast_beacons_with_a_bad_proof_are_dropped_and_counted() {
    let port = 45_612;
    let test = "discovery::suite::multicast_beacons_with_a_bad_proof_are_dropped_and_counted";
    if !multicast_here_or_in_netns(port, test).await {
        return;
    }
    let mut listener = MulticastDiscovery::start(
        &mcast_cfg(port),
        member(4500, 0),
        ClusterSecret::new(b"right".to_vec()),
    )
    .expect("l");
    let stats = listener.stats();
    let _stranger = MulticastDiscovery::start(
        &mcast_cfg(port),
        member(4501, 1),
        ClusterSecret::new(b"wrong".to_vec()),
    )
    .expect("s");
    let _friend = MulticastDiscovery::start(
        &mcast_cfg(port),
        member(4502, 2),
        ClusterSecret::new(b"right".to_vec()),
    )
    .expect("f");
    let deadline = Instant::now() + Duration::from_secs(3);
    while stats.bad_proof.load(std::sync::atomic::Ordering::Relaxed) < 3 {
        let batch = timeout_at(deadline, listener.next())
            .await
            .expect("bad beacons counted in time");
        assert!(
            batch.iter().all(|a| a.port() == 4502),
            "only the friend is a candidate: {batch:?}"
        );
    }
}
