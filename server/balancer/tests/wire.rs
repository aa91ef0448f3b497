//! The lean HTTP/1.1 path byte by byte: raw client sockets against the balancer, and
//! scripted backends that answer with exactly the bytes a test needs (pipelining, chunked
//! framing split over several writes, a backend dying mid-response, malformed heads).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use shoal_balancer::{Backend, BalancerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a scripted backend sends for one request (given its path): a list of writes.
type Script = fn(&str) -> Vec<Vec<u8>>;

/// A backend that answers every request on every connection with `script`, counting them
/// (health probes excepted: they get the script's answer too, which is all they need).
async fn scripted(script: Script) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let hits = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    if path != "/app/stats" {
                        hits.fetch_add(1, Ordering::SeqCst); // health probes aside
                    }
                    for part in script(&path) {
                        if part.is_empty() {
                            return; // the script says: close now
                        }
                        if s.write_all(&part).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, hits)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn balancer_for(addr: SocketAddr) -> RunningBalancer {
    start_balancer(BalancerConfig {
        backends: vec![Backend::new("node1", addr.to_string())],
        ..BalancerConfig::default()
    })
    .await
}

/// Reads from `s` until `done` says the bytes so far are complete, or EOF.
async fn read_until(s: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    let read_all = async {
        while !done(&String::from_utf8_lossy(&got)) {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_all)
        .await
        .expect("answer within 5 s");
    String::from_utf8_lossy(&got).to_string()
}

fn ok_with(path: &str) -> Vec<Vec<u8>> {
    let body = format!("path={path}");
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    vec![format!("{head}{body}").into_bytes()]
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_backend_connection() {
    let (node, hits) = scripted(ok_with).await;
    let lb = balancer_for(node).await;
    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    let two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    c.write_all(two.as_bytes()).await.expect("send");
    let got = read_until(&mut c, |t| t.contains("path=/b")).await;
    let a = got.find("path=/a").expect("first answer");
    let b = got.find("path=/b").expect("second answer");
    assert!(a < b, "answers out of order: {got}");
    assert_eq!(got.matches("x-shoal-backend: node1").count(), 2, "{got}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

fn chunked(path: &str) -> Vec<Vec<u8>> {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
    vec![
        head.to_vec(),
        b"5\r\nhel".to_vec(),
        b"lo\r\n".to_vec(),
        format!("{:x}\r\n{path}\r\n0\r\n\r\n", path.len()).into_bytes(),
    ]
}

#[tokio::test]
async fn chunked_responses_keep_their_framing_and_the_connection_stays_usable() {
    let (node, hits) = scripted(chunked).await;
    let lb = balancer_for(node).await;
    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    for path in ["/one", "/two"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        c.write_all(req.as_bytes()).await.expect("send");
        let got = read_until(&mut c, |t| t.ends_with("0\r\n\r\n")).await;
        let expected = format!("5\r\nhello\r\n4\r\n{path}\r\n0\r\n\r\n");
        assert!(got.contains("transfer-encoding: chunked\r\n"), "{got}");
        assert!(
            !got.to_ascii_lowercase().contains("connection: keep-alive"),
            "{got}"
        );
        assert!(got.ends_with(&expected), "{got}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

fn dies_mid_response(_: &str) -> Vec<Vec<u8>> {
    vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b".to_vec(),
        Vec::new(),
    ]
}

#[tokio::test]
async fn backend_closing_mid_response_closes_the_client_connection_without_resend() {
    let (node, hits) = scripted(dies_mid_response).await;
    let lb = balancer_for(node).await;
    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    c.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let got = read_until(&mut c, |_| false).await; // until EOF
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(
        got.ends_with("only ten b"),
        "truncated body, then EOF: {got}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a started response is never resent"
    );
}

fn closes_before_answering(_: &str) -> Vec<Vec<u8>> {
    vec![Vec::new()]
}

#[tokio::test]
async fn backend_closing_before_answering_a_post_gives_502_on_a_kept_connection() {
    let (node, hits) = scripted(closes_before_answering).await;
    let lb = balancer_for(node).await;
    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    let post = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab";
    for _ in 0..2 {
        c.write_all(post.as_bytes()).await.expect("send");
        let got = read_until(&mut c, |t| t.contains("check before repeating")).await;
        assert!(got.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{got}");
        assert!(got.contains("not resent"), "{got}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn malformed_and_oversized_heads_get_400_and_431() {
    let (node, hits) = scripted(ok_with).await;
    let lb = balancer_for(node).await;
    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        .await
        .expect("send");
    let got = read_until(&mut c, |_| false).await;
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    assert!(got.contains("malformed request head"), "{got}");

    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\r\n",
        "c".repeat(70_000)
    );
    let _ = c.write_all(big.as_bytes()).await; // the balancer may close before reading it all
    let got = read_until(&mut c, |_| false).await;
    assert!(
        got.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{got}"
    );
    assert!(got.contains("larger than 65536 bytes"), "{got}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn http10_and_chunked_request_bodies_take_the_hyper_path() {
    let (_store, nodes) = three_nodes().await;
    let lb = start_balancer(config_for(&nodes)).await;
    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    c.write_all(b"GET /app/echo HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let got = read_until(&mut c, |t| t.contains("body=")).await;
    assert!(got.starts_with("HTTP/1.0 200 OK\r\n"), "{got}");
    assert!(got.contains("method=GET path=/app/echo"), "{got}");

    let mut c = TcpStream::connect(lb.addr).await.expect("connect");
    let first = "GET /app/echo HTTP/1.1\r\nHost: x\r\n\r\n";
    let second = "POST /app/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    c.write_all(format!("{first}{second}").as_bytes())
        .await
        .expect("send");
    let got = read_until(&mut c, |t| t.contains("body=7")).await;
    assert!(
        got.contains("method=GET") && got.contains("method=POST"),
        "{got}"
    );
}

#[tokio::test]
async fn several_accept_threads_share_the_listener() {
    let (node, hits) = scripted(ok_with).await;
    let lb = start_balancer(BalancerConfig {
        backends: vec![Backend::new("node1", node.to_string())],
        threads: 3,
        ..BalancerConfig::default()
    })
    .await;
    let addr = lb.addr;
    let mut clients = Vec::new();
    for i in 0..12 {
        clients.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            let req = format!("GET /c{i} HTTP/1.1\r\nHost: x\r\n\r\n");
            c.write_all(req.as_bytes()).await.expect("send");
            read_until(&mut c, move |t| t.contains(&format!("path=/c{i}"))).await
        }));
    }
    for (i, c) in clients.into_iter().enumerate() {
        let got = c.await.expect("client task");
        assert!(got.contains(&format!("path=/c{i}")), "{got}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 12);
}
