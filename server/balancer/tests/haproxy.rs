//! deploy/haproxy/haproxy.cfg, run by Debian's haproxy in front of the fake nodes.
//!
//! The committed file is used as is, except that its node and frontend addresses are
//! replaced by this test's ports. Without a `haproxy` binary the tests print why they skip
//! (scripts/prereqs.sh installs it when run as root).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use shoal_testkit::poll;

/// A haproxy child process, killed (by its own pid) when dropped.
struct Haproxy {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Haproxy {
    /// Sends one command on the runtime API socket and returns the answer.
    async fn admin(&self, command: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = self.dir.path().join("admin.sock");
        let mut stream = tokio::net::UnixStream::connect(&socket)
            .await
            .expect("admin socket");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("send admin command");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .expect("admin answer");
        answer
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_binary() -> PathBuf {
    let found = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match found {
        Ok(s) if s.success() => PathBuf::from("haproxy"),
        other => panic!(
            "`haproxy -v` failed ({other:?}): install it (apt-get install haproxy, or run scripts/prereqs.sh as root)"
        ),
    }
}

async fn start_haproxy(nodes: &[FakeNode]) -> Haproxy {
    let template =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy/haproxy.cfg");
    let mut cfg = std::fs::read_to_string(&template).expect("read deploy/haproxy/haproxy.cfg");
    for (i, node) in nodes.iter().enumerate() {
        let placeholder = format!("127.0.0.1:{}", 18081 + i);
        assert!(cfg.contains(&placeholder), "template lost {placeholder}");
        cfg = cfg.replace(&placeholder, &node.addr.to_string());
    }
    // Reserve a free port for the frontend; haproxy binds it right after.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    cfg = cfg.replace("127.0.0.1:18080", &addr.to_string());
    let dir = tempfile::tempdir().expect("temp dir");
    // A runtime API socket, so tests can drain a server as an operator would.
    let socket = dir.path().join("admin.sock");
    let stats = format!(
        "\nglobal\n    stats socket {} level admin\n",
        socket.display()
    );
    assert!(cfg.contains("\nglobal\n"), "template has a global section");
    cfg = cfg.replacen("\nglobal\n", &stats, 1);
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("write haproxy.cfg");
    let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log file");
    let child = Command::new(haproxy_binary())
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn haproxy");
    let proxy = Haproxy { child, addr, dir };
    let http = HttpClient::new();
    let mut ready = false;
    for _ in 0..100 {
        if matches!(http.get(addr, "/app/stats", None).await, Ok(a) if a.status == StatusCode::OK) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(proxy.dir.path().join("haproxy.log")).unwrap_or_default();
    assert!(
        ready,
        "haproxy did not answer on {addr} within 5 s; its log:\n{log}"
    );
    proxy
}

#[tokio::test]
async fn haproxy_is_sticky_by_route_and_spreads_new_sessions() {
    let (_store, nodes) = three_nodes().await;
    let hap = start_haproxy(&nodes).await;
    let http = HttpClient::new();
    let mut cookies = std::collections::HashMap::new();
    for _ in 0..30 {
        let a = http
            .get(hap.addr, "/app/counter", None)
            .await
            .expect("new session");
        let route = a.backend.clone().expect("X-Shoal-Backend from haproxy");
        cookies
            .entry(route)
            .or_insert_with(|| a.cookie.clone().expect("cookie"));
    }
    assert_eq!(
        cookies.len(),
        3,
        "new sessions reach every node: {cookies:?}"
    );
    for (route, cookie) in &cookies {
        for _ in 0..30 {
            let a = http
                .get(hap.addr, "/app/counter", Some(cookie))
                .await
                .expect("sticky");
            assert_eq!(a.backend.as_ref(), Some(route), "cookie {cookie}");
        }
    }
    let header = [("x-shoal-session", "ABC.node3")];
    let a = http
        .send(Method::GET, hap.addr, "/app/echo", &header, "")
        .await
        .expect("header");
    assert_eq!(a.backend.as_deref(), Some("node3"));
    let a = http
        .get(hap.addr, "/app/echo;jsessionid=ABC.node2", None)
        .await
        .expect("path param");
    assert_eq!(a.backend.as_deref(), Some("node2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_fails_over_a_killed_node_within_one_second() {
    let (_store, mut nodes) = three_nodes().await;
    let hap = start_haproxy(&nodes).await;
    let report = load::kill_under_load(hap.addr, &mut nodes, "node2").await;
    println!("haproxy failover: {report}");
    report.assert_ok();
}

#[tokio::test]
async fn haproxy_does_not_resend_a_post_lost_with_its_node() {
    let (_store, nodes) = three_nodes().await;
    let hap = start_haproxy(&nodes).await;
    let http = HttpClient::new();
    let addr = hap.addr;
    let post = tokio::spawn(async move {
        let cookie = [("cookie", "JSESSIONID=ABC.node1")];
        http.send(Method::POST, addr, "/app/hang", &cookie, "order=1")
            .await
    });
    assert!(
        poll(Duration::from_secs(5), || nodes[0]
            .state
            .posts
            .load(Ordering::SeqCst)
            == 1)
        .await
    );
    nodes[0].kill();
    let a = post.await.expect("task");
    println!("haproxy answer to the lost POST: {a:?}");
    let resent: u64 = nodes[1..]
        .iter()
        .map(|n| n.state.posts.load(Ordering::SeqCst))
        .sum();
    assert_eq!(
        resent, 0,
        "haproxy resent a POST that may have been applied"
    );
    assert!(
        matches!(a, Ok(a) if a.status.is_server_error()),
        "the client learns the POST failed"
    );
}

#[tokio::test]
async fn haproxy_drain_keeps_sticky_sessions_and_sends_new_ones_elsewhere() {
    let (_store, nodes) = three_nodes().await;
    let hap = start_haproxy(&nodes).await;
    let answer = hap.admin("set server shoal_nodes/node2 state drain").await;
    assert!(
        answer.trim().is_empty(),
        "haproxy refused the drain: {answer}"
    );
    let http = HttpClient::new();
    for _ in 0..12 {
        let a = http
            .get(hap.addr, "/app/counter", None)
            .await
            .expect("new session");
        assert_ne!(
            a.backend.as_deref(),
            Some("node2"),
            "draining node got a new session"
        );
        let a = http
            .get(hap.addr, "/app/echo", Some("JSESSIONID=A.node2"))
            .await
            .expect("sticky");
        assert_eq!(
            a.backend.as_deref(),
            Some("node2"),
            "draining node lost its session"
        );
    }
}
