//! Convergence of the farm deployer across real `shoal node` processes: a node that is down
//! during a deploy and an undeploy, and a node killed (`kill -9`) in the middle of receiving
//! a 50 MiB artifact, each hold the cluster's current set when they come back **before**
//! they report ready (the `ready` event is printed only once the farm has converged); the
//! rollout that lost a member mid-transfer still ends (the dead member is excluded) and no
//! staging file is left behind.
use shoal_testkit::eventually_blocking;
use shoal_tests::free_ports;
use shoal_tests::sessions::HttpNode;
use shoal_tests::temp_file;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN: &str = "farm-test-admin-token-0123456789abcdef";
const BIG: usize = 50 << 20;

fn config(farm_dir: &Path) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"delta\"\nreplication = \"sync\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n\
         [farm]\ndir = \"{}\"\nmax_upload_bytes = {}\nstage_deadline_secs = 60\n",
        farm_dir.display(),
        BIG + 1024
    );
    temp_file("shoal.toml", &toml)
}

struct Node {
    http: HttpNode,
    admin: String,
    farm: PathBuf,
}

fn spawn(name: &str, port: u16, ports: &[u16], base: &Path) -> Node {
    let farm = base.join(name);
    let mut http = HttpNode::spawn(name, port, ports, &config(&farm));
    let ready = http
        .proc
        .wait_event("ready", |_| true, Duration::from_secs(10));
    let admin = ready.json["admin"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: ready without admin: {}", ready.json))
        .to_string();
    Node { http, admin, farm }
}

fn call(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn file_on(node: &Node, name: &str) -> Option<Vec<u8>> {
    std::fs::read(node.farm.join("files").join(name)).ok()
}

/// Bytes in `staging/` (a transfer in progress).
fn staged_bytes(farm: &Path) -> u64 {
    std::fs::read_dir(farm.join("staging"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn nodes_that_missed_changes_converge_before_they_report_ready() {
    let names = ["ga", "gb", "gc"];
    let ports = free_ports(3);
    let base = std::env::temp_dir().join(format!(
        "shoal-farm-converge-{}-{}",
        std::process::id(),
        ports[0]
    ));
    let mut nodes: Vec<Node> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| spawn(n, *p, &ports, &base))
        .collect();
    for n in nodes.iter_mut() {
        n.http.wait_members(&names);
    }
    let (status, text) = call(
        &nodes[0].admin,
        "PUT",
        "/api/v1/deployments/old.txt?kind=file",
        b"old",
    );
    assert_eq!(status, 201, "{text}");
    assert!(nodes.iter().all(|n| file_on(n, "old.txt").is_some()));

    // gc goes down; while it is away, a 50 MiB file is deployed and old.txt undeployed.
    nodes[2].http.proc.kill9();
    nodes[0]
        .http
        .proc
        .wait_new_member_event("member_disappeared", "gc", Duration::from_secs(10));

    let big: Vec<u8> = (0..BIG).map(|i| (i % 253) as u8).collect();
    let admin = nodes[0].admin.clone();
    let body = big.clone();
    let deploy = std::thread::spawn(move || {
        call(
            &admin,
            "PUT",
            "/api/v1/deployments/big.bin?kind=file&version=1",
            &body,
        )
    });
    // gb dies in the middle of receiving it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut caught = 0;
    while Instant::now() < deadline {
        caught = staged_bytes(&nodes[1].farm);
        if caught > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(caught > 0, "gb never started receiving big.bin");
    nodes[1].http.proc.kill9();
    let (status, text) = deploy.join().expect("deploy thread");
    assert!(
        caught < BIG as u64,
        "gb was killed after it had the whole file ({caught} bytes)"
    );
    assert_eq!(
        status, 201,
        "the rollout excludes the dead member and ends: {text}"
    );
    let (status, text) = call(
        &nodes[0].admin,
        "DELETE",
        "/api/v1/deployments/old.txt",
        b"",
    );
    assert_eq!(status, 204, "{text}");
    assert!(file_on(&nodes[0], "old.txt").is_none());
    assert_eq!(file_on(&nodes[0], "big.bin").map(|b| b.len()), Some(BIG));

    // Both come back: by their `ready` event they hold big.bin and no longer old.txt.
    for i in [1, 2] {
        let (name, port, ps, b) = (names[i], ports[i], ports.clone(), base.clone());
        let node = match std::panic::catch_unwind(move || spawn(name, port, &ps, &b)) {
            Ok(n) => n,
            Err(_) => {
                let (_, m) = call(&nodes[0].admin, "GET", "/metrics", b"");
                panic!(
                    "{name} did not come back; ga's farm metrics:\n{}",
                    m.lines()
                        .filter(|l| l.starts_with("shoal_farm"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        };
        assert!(
            file_on(&node, "big.bin") == Some(big.clone()),
            "{}: big.bin (50 MiB) is there, byte for byte, when it reports ready",
            names[i]
        );
        assert!(
            file_on(&node, "old.txt").is_none(),
            "{}: old.txt was undeployed while it was away",
            names[i]
        );
        nodes[i] = node;
    }
    eventually_blocking(
        "no staging file left anywhere",
        Duration::from_secs(5),
        || nodes.iter().all(|n| staged_bytes(&n.farm) == 0),
    );
    let (status, text) = call(&nodes[2].admin, "GET", "/api/v1/ready", b"");
    assert_eq!(status, 200, "gc is ready: {text}");
    assert!(
        text.contains("\"farm\""),
        "readiness lists the farm check: {text}"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}
