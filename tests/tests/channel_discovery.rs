//! Membership through multicast beacons and through DNS, with real `shoal node` processes.
use shoal_tests::{free_port, temp_file, NodeProc, NodeSpec};
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "discovery-test-secret";
const T: Duration = Duration::from_secs(10);

/// Sends one datagram to `group:port` over loopback and waits for it to come back.
fn loopback_multicast_works(group: Ipv4Addr, port: u16) -> Result<(), String> {
    let s = UdpSocket::bind(("0.0.0.0", port)).map_err(|e| format!("bind {port}: {e}"))?;
    s.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
        .map_err(|e| format!("join {group} on lo: {e}"))?;
    s.set_multicast_loop_v4(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let send = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    send.send_to(b"probe", (group, port))
        .map_err(|e| format!("send to {group}:{port}: {e}"))?;
    let mut buf = [0u8; 16];
    s.recv_from(&mut buf)
        .map(|_| ())
        .map_err(|e| format!("no loopback multicast datagram: {e}"))
}

/// Restores `lo` when the test enabled multicast on it.
struct McastGuard {
    flag_added: bool,
    route_added: bool,
}

impl Drop for McastGuard {
    fn drop(&mut self) {
        if self.route_added {
            let _ = Command::new("ip")
                .args(["route", "del", "224.0.0.0/4", "dev", "lo"])
                .status();
        }
        if self.flag_added {
            let _ = Command::new("ip")
                .args(["link", "set", "lo", "multicast", "off"])
                .status();
        }
    }
}

/// Loopback multicast, enabling it (and restoring it after) where permitted; `Err` = skip reason.
fn multicast_on_loopback(group: Ipv4Addr, port: u16) -> Result<McastGuard, String> {
    let none = McastGuard {
        flag_added: false,
        route_added: false,
    };
    let Err(first) = loopback_multicast_works(group, port) else {
        return Ok(none);
    };
    let link = Command::new("ip")
        .args(["link", "show", "lo"])
        .output()
        .map_err(|e| format!("{first}; no `ip` tool: {e}"))?;
    let mut g = none;
    if !String::from_utf8_lossy(&link.stdout).contains("MULTICAST") {
        g.flag_added = Command::new("ip")
            .args(["link", "set", "lo", "multicast", "on"])
            .status()
            .is_ok_and(|s| s.success());
    }
    let route = Command::new("ip")
        .args(["route", "show", "224.0.0.0/4"])
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&route.stdout).contains("dev lo") {
        g.route_added = Command::new("ip")
            .args(["route", "add", "224.0.0.0/4", "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
    }
    loopback_multicast_works(group, port)
        .map(|_| g)
        .map_err(|e| format!("{first}; after trying to enable it on lo: {e}"))
}

#[test]
fn multicast_beacons_form_a_cluster_and_a_kill_is_detected() {
    // A group port of its own, so other clusters on this host (default 45564) do not mix in.
    let mport = 45_700 + (std::process::id() % 200) as u16;
    let group = Ipv4Addr::new(228, 0, 0, 4);
    let _guard = multicast_on_loopback(group, mport).unwrap_or_else(|why| {
        panic!(
            "multicast on loopback: {why} (run as root: the test enables it on lo and restores it)"
        )
    });
    let cfg = temp_file(
        "mcast.toml",
        &format!(
            "[cluster.membership]\nprovider = \"multicast\"\n[cluster.membership.multicast]\n\
             port = {mport}\nfrequency_ms = 100\nttl = 0\ninterface = \"127.0.0.1\"\n"
        ),
    );
    let names = ["m1", "m2", "m3"];
    let mut nodes: Vec<NodeProc> = names
        .iter()
        .map(|n| {
            NodeProc::spawn(NodeSpec {
                config: Some(cfg.clone()),
                ..NodeSpec::new(n, free_port(), &[], SECRET)
            })
        })
        .collect();
    for n in nodes.iter_mut() {
        let others: Vec<&str> = names
            .iter()
            .copied()
            .filter(|x| *x != n.spec.name)
            .collect();
        n.wait_members(&others, T);
    }
    // A node with another secret on the same group: its beacons are dropped and counted.
    let mut intruder = NodeProc::spawn(NodeSpec {
        config: Some(cfg.clone()),
        ..NodeSpec::new("m-intruder", free_port(), &[], "wrong-secret")
    });
    let deadline = std::time::Instant::now() + T;
    loop {
        nodes[0].command("stats");
        let ev = nodes[0].wait_event("stats", |_| true, T);
        nodes[0].history.retain(|e| e.json["event"] != "stats");
        if ev.json["stats"]["beacons_bad_proof"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no bad-proof beacon counted: {}",
            ev.json
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    intruder.drain();
    assert!(
        intruder
            .history
            .iter()
            .all(|e| e.json["event"] != "member_added"),
        "{:?}",
        intruder.kinds()
    );
    nodes[0].drain();
    assert!(
        nodes[0]
            .history
            .iter()
            .all(|e| e.json["name"] != "m-intruder"),
        "{:?}",
        nodes[0].kinds()
    );
    drop(intruder);

    let mut m3 = nodes.pop().expect("m3");
    let killed = m3.kill9();
    for n in nodes.iter_mut() {
        let ev = n.wait_new_member_event("member_disappeared", "m3", Duration::from_secs(5));
        assert!(
            ev.at.duration_since(killed) < Duration::from_secs(1),
            "{}: {:?}",
            n.spec.name,
            ev.at.duration_since(killed)
        );
    }
}

#[test]
fn dns_name_yields_candidates_and_the_handshake_admits_them() {
    // `localhost` resolves to 127.0.0.1: the "service" is d1 there; d2 listens on 127.0.0.2
    // on the same port (as pods behind a headless service do) and finds d1 by name.
    let port = free_port();
    let cfg = temp_file(
        "dns.toml",
        &format!("[cluster.membership]\nprovider = \"dns\"\n[cluster.membership.dns]\nname = \"localhost\"\nport = {port}\ninterval_ms = 200\n"),
    );
    let mut d1 = NodeProc::spawn(NodeSpec {
        config: Some(cfg.clone()),
        ..NodeSpec::new("d1", port, &[], SECRET)
    });
    let mut d2 = NodeProc::spawn(NodeSpec {
        config: Some(cfg.clone()),
        bind: "127.0.0.2".into(),
        ..NodeSpec::new("d2", port, &[], SECRET)
    });
    d1.wait_members(&["d2"], T);
    d2.wait_members(&["d1"], T);
    // A node with another secret resolving the same name is dialled but never admitted.
    let mut d3 = NodeProc::spawn(NodeSpec {
        config: Some(cfg),
        bind: "127.0.0.3".into(),
        ..NodeSpec::new("d3", port, &[], "other-secret")
    });
    assert!(
        d1.wait_log(&["handshake failed"], T).is_some(),
        "{}",
        d1.stderr_text()
    );
    d1.drain();
    d3.drain();
    assert!(
        d1.history.iter().all(|e| e.json["name"] != "d3"),
        "{:?}",
        d1.kinds()
    );
    assert!(
        d3.history.iter().all(|e| e.json["event"] != "member_added"),
        "{:?}",
        d3.kinds()
    );
}
