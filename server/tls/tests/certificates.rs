//! Loading a listener's certificate: what a bad file says, and a certificate replaced on
//! disk served by the next handshake after the reload check, in-process over loopback.
use shoal_testkit::{https_get, TestCa};
use shoal_tls::{Listener, ServerTls, TlsError, TlsFiles, RELOAD_CHECK};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn files(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

#[test]
fn bad_files_are_named_with_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let e = ServerTls::load(&f, "[http.tls]")
        .err()
        .expect("missing files");
    assert!(matches!(e, TlsError::Read { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("[http.tls]") && msg.contains("cert.pem"),
        "{msg}"
    );

    let ca = TestCa::new("test CA");
    let a = ca.issue("a");
    let b = ca.issue("b");
    std::fs::write(&f.cert, "not a certificate").expect("write");
    std::fs::write(&f.key, &a.key_pem).expect("write");
    let msg = ServerTls::load(&f, "[admin.tls]")
        .err()
        .expect("no cert")
        .to_string();
    assert!(
        msg.contains("cert.pem") && msg.contains("BEGIN CERTIFICATE"),
        "{msg}"
    );

    std::fs::write(&f.cert, &a.cert_pem).expect("write");
    std::fs::write(&f.key, "garbage").expect("write");
    let msg = ServerTls::load(&f, "[admin.tls]")
        .err()
        .expect("bad key")
        .to_string();
    assert!(
        msg.contains("key.pem") && msg.contains("private key"),
        "{msg}"
    );

    // A key of another certificate.
    std::fs::write(&f.key, &b.key_pem).expect("write");
    let e = ServerTls::load(&f, "[http.tls]").err().expect("mismatch");
    assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("key.pem") && msg.contains("cert.pem"), "{msg}");

    a.write(&f.cert, &f.key);
    assert!(ServerTls::load(&f, "[http.tls]").is_ok());
}

#[test]
fn client_config_names_a_bad_ca_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    let msg = shoal_tls::client_config(&ca, "--ca")
        .expect_err("missing")
        .to_string();
    assert!(msg.contains("--ca") && msg.contains("ca.pem"), "{msg}");
    std::fs::write(&ca, "hello").expect("write");
    let msg = shoal_tls::client_config(&ca, "--ca")
        .expect_err("no cert")
        .to_string();
    assert!(msg.contains("ca.pem"), "{msg}");
    TestCa::new("ok").write_ca(&ca);
    assert!(shoal_tls::client_config(&ca, "--ca").is_ok());
}

/// A listener answering every TLS connection with a tiny HTTP response.
async fn serve(mut listener: Listener) {
    loop {
        let (mut s, _) = listener.accept().await;
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await;
            let _ = s.shutdown().await;
        });
    }
}

#[tokio::test]
async fn a_replaced_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let ca = TestCa::new("test CA");
    let first = ca.issue("first");
    first.write(&f.cert, &f.key);
    let tls = ServerTls::load(&f, "[http.tls]").expect("loads");
    let cert = tls.certificate();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    tokio::spawn(serve(Listener::new(tcp, Some(tls)).expect("listener")));

    let reply = https_get(addr, &ca.cert_pem, "/").await.expect("trusted");
    assert_eq!((reply.status(), reply.body.as_str()), (200, "ok"));
    assert_eq!(reply.peer_leaf, first.cert_der);

    let other = TestCa::new("other CA");
    let e = https_get(addr, &other.cert_pem, "/")
        .await
        .expect_err("untrusted");
    assert!(e.to_string().contains("certificate"), "{e}");

    // A broken pair (key of another certificate) keeps the old one in service.
    let stray = ca.issue("stray");
    std::fs::write(&f.key, &stray.key_pem).expect("write");
    let e = cert.reload_now().expect_err("a mismatched pair is refused");
    assert!(e.to_string().contains("key.pem"), "{e}");
    let reply = https_get(addr, &ca.cert_pem, "/")
        .await
        .expect("still served");
    assert_eq!(
        reply.peer_leaf, first.cert_der,
        "a mismatched pair replaced the certificate"
    );

    let second = ca.issue("second");
    second.write(&f.cert, &f.key);
    let deadline = tokio::time::Instant::now() + RELOAD_CHECK * 5;
    loop {
        let reply = https_get(addr, &ca.cert_pem, "/").await.expect("served");
        if reply.peer_leaf == second.cert_der {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replaced certificate was not served within {:?}",
            RELOAD_CHECK * 5
        );
        tokio::time::sleep(shoal_testkit::POLL_EVERY).await;
    }
}

#[tokio::test]
async fn plain_http_to_a_tls_port_gets_a_400_naming_https() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    TestCa::new("ca").issue("x").write(&f.cert, &f.key);
    let tls = ServerTls::load(&f, "[admin.tls]").expect("loads");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    tokio::spawn(serve(Listener::new(tcp, Some(tls)).expect("listener")));
    let reply = shoal_testkit::get(&addr.to_string(), "/api/v1/cluster/members", None, &[])
        .await
        .expect("an answer");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        reply.body.contains(&format!("https://{addr}/")),
        "{reply:?}"
    );
    assert!(reply.body.contains("[admin.tls]"), "{reply:?}");
}
