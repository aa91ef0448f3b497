//! TLS on a real `shoal node` process: `[http.tls]` and `[admin.tls]` with certificates of
//! a CA made by the test.
//!
//! - HTTPS to the HTTP listener with the configured CA succeeds; a client trusting another
//!   CA fails the handshake.
//! - Plain HTTP to the TLS admin port (and HTTP port) gets a `400` naming `https://`.
//! - The certificate replaced on disk (new key, serial and CN) is served without a restart.
//! - `shoal ctl --ca` talks to the TLS admin API; without `--ca` it fails and says to pass it.
//! - A node whose key does not match its certificate does not start, naming both files.
//! - `shoal balancer --backend-ca` in front of a TLS node: its health probe (hyper path)
//!   brings the node up over HTTPS, and sticky requests (lean path) reach it.
use shoal_testkit::{https_get, TestCa, TlsReply};
use shoal_tests::front::{get, Front};
use shoal_tests::{free_port, shoal_bin, NodeProc, NodeSpec};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "tls-test-admin-token-0123456789";

fn https(addr: SocketAddr, ca_pem: &str, path: &str) -> std::io::Result<TlsReply> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(https_get(addr, ca_pem, path))
}

struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new("shoal test CA");
        ca.write_ca(&dir.path().join("ca.pem"));
        Pki { dir, ca }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A config with both listeners on TLS; the cert and key paths are relative to the file.
fn write_config(dir: &Path, http: u16, admin: u16) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = {http}\n\n[http.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n\
         [admin]\nbind = \"127.0.0.1:{admin}\"\nadmin_token = \"{TOKEN}\"\n\n\
         [admin.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"
    );
    let p = dir.join("shoal.toml");
    std::fs::write(&p, toml).expect("write config");
    p
}

fn ctl(url: &str, ca: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(shoal_bin());
    cmd.args(["ctl", "--url", url, "--token", TOKEN]);
    if let Some(ca) = ca {
        cmd.arg("--ca").arg(ca);
    }
    cmd.arg("members")
        .env_remove("SHOAL_ADMIN_CA")
        .stdin(Stdio::null())
        .output()
        .expect("run shoal ctl")
}

#[test]
fn https_listeners_verify_refuse_plain_http_and_reload_the_certificate() {
    let pki = Pki::new();
    let first = pki.ca.issue("node1-first");
    first.write(&pki.path("cert.pem"), &pki.path("key.pem"));
    let (http_port, admin_port) = (free_port(), free_port());
    let mut spec = NodeSpec::new("node1", free_port(), &[], "tls-test-secret-0123456789");
    spec.config = Some(write_config(pki.dir.path(), http_port, admin_port));
    let _node = NodeProc::spawn(spec);
    let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();

    // HTTPS with the configured CA: the bench app answers, with the configured certificate.
    let reply = https(http, &pki.ca.cert_pem, "/app/counter").expect("HTTPS to the node");
    assert_eq!(reply.status(), 200, "{reply:?}");
    assert_eq!(reply.peer_leaf, first.cert_der);
    let reply = https(admin, &pki.ca.cert_pem, "/api/v1/health").expect("HTTPS to admin");
    assert_eq!(reply.status(), 200, "{reply:?}");

    // A client that trusts another CA fails the handshake.
    let stranger = TestCa::new("some other CA");
    let e = https(http, &stranger.cert_pem, "/app/counter").expect_err("untrusted");
    assert!(e.to_string().contains("certificate"), "{e}");

    // Plain HTTP to a TLS port: a 400 that says to use https://.
    for addr in [admin, http] {
        let plain = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(shoal_testkit::get(
                &addr.to_string(),
                "/api/v1/health",
                None,
                &[],
            ))
            .expect("an answer");
        assert_eq!(plain.status, 400, "{plain:?}");
        assert!(
            plain.body.contains(&format!("https://{addr}/")),
            "{plain:?}"
        );
    }

    // ctl with --ca works; without it the unknown CA is refused and --ca is suggested.
    let url = format!("https://127.0.0.1:{admin_port}");
    let out = ctl(&url, Some(&pki.path("ca.pem")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("node1"),
        "ctl --ca: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl(&url, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ctl without --ca succeeded");
    assert!(stderr.contains("--ca"), "{stderr}");
    let out = ctl(&format!("http://127.0.0.1:{admin_port}"), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("https://"),
        "{stderr}"
    );

    // The certificate renewed on disk is served without a restart (both listeners).
    let second = pki.ca.issue("node1-second");
    second.write(&pki.path("cert.pem"), &pki.path("key.pem"));
    for addr in [http, admin] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = https(addr, &pki.ca.cert_pem, "/app/counter").expect("served");
            if r.peer_leaf == second.cert_der {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{addr} still serves the first certificate 10 s after it was replaced"
            );
            std::thread::sleep(shoal_testkit::POLL_EVERY);
        }
    }
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_the_start_naming_both_files() {
    let pki = Pki::new();
    let a = pki.ca.issue("a");
    let b = pki.ca.issue("b");
    std::fs::write(pki.path("cert.pem"), &a.cert_pem).expect("write");
    std::fs::write(pki.path("key.pem"), &b.key_pem).expect("write");
    let config = write_config(pki.dir.path(), free_port(), free_port());
    let mut child = Command::new(shoal_bin())
        .args([
            "node",
            "--name",
            "node1",
            "--port",
            &free_port().to_string(),
        ])
        .arg("--config")
        .arg(&config)
        .env("SHOAL_CLUSTER_SECRET", "tls-test-secret-0123456789")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shoal node");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a node with a mismatched key still runs after 20 s");
        }
        std::thread::sleep(shoal_testkit::POLL_EVERY);
    };
    let mut stderr = String::new();
    use std::io::Read;
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    assert!(!status.success());
    assert!(
        stderr.contains("[http.tls]") && stderr.contains("key.pem") && stderr.contains("cert.pem"),
        "{stderr}"
    );
}

#[test]
fn the_balancer_speaks_https_to_a_tls_node_with_backend_ca() {
    let pki = Pki::new();
    pki.ca
        .issue("node1")
        .write(&pki.path("cert.pem"), &pki.path("key.pem"));
    let (http_port, admin_port) = (free_port(), free_port());
    let secret = "tls-balancer-secret-0123456789";
    let ca = pki.path("ca.pem");
    let ca = ca.to_str().expect("utf-8 temp path");
    // The balancer first, while the node is not running: the refused request marks node1
    // down, and only a health probe (over HTTPS, the hyper client) brings it back up.
    let front = Front::balancer_with(
        &[("node1".into(), format!("127.0.0.1:{http_port}"))],
        &[],
        secret,
        &["--backend-ca", ca],
    );
    let r = get(&front.addr, "/app/counter", None).expect("the balancer answers");
    assert_ne!(r.status, 200, "{r:?}");

    let mut spec = NodeSpec::new("node1", free_port(), &[], secret);
    spec.config = Some(write_config(pki.dir.path(), http_port, admin_port));
    let _node = NodeProc::spawn(spec);
    shoal_testkit::eventually_blocking(
        "the balancer's HTTPS health probe marks node1 up",
        Duration::from_secs(15),
        || shoal_tests::persistent::balancer_status(&front.addr, "node1").is_ok_and(|s| s == "up"),
    );

    // A session through the balancer's lean path, over TLS to the node, sticky.
    let first = get(&front.addr, "/app/counter", None).expect("first request");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.field("counter"), Some("1"), "{first:?}");
    let cookie = first.cookie.clone().expect("a session cookie");
    let second = get(&front.addr, "/app/counter", Some(&cookie)).expect("second request");
    assert_eq!(second.field("counter"), Some("2"), "{second:?}");
    assert_eq!(second.backend.as_deref(), Some("node1"), "{second:?}");
}
