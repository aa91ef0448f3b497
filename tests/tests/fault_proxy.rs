//! The fault proxy (tests/src/fault_proxy.rs) on loopback: the delay it adds is measured
//! through it (an echo server's round trip), jitter stays within its bounds and keeps the
//! bytes of one connection in order, a cut link answers nothing, and a healed one forwards
//! again on new connections.
use shoal_tests::fault_proxy::FaultProxy;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// An echo server on loopback; returns its address.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Round trip of `msg` through `conn` (every byte back, or the error).
fn round_trip(conn: &mut TcpStream, msg: &[u8]) -> std::io::Result<Duration> {
    let t = Instant::now();
    conn.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    conn.read_exact(&mut back)?;
    assert_eq!(back, msg, "bytes came back changed or out of order");
    Ok(t.elapsed())
}

fn connect(p: &FaultProxy) -> TcpStream {
    let c = TcpStream::connect(p.addr()).expect("connect to the proxy");
    c.set_nodelay(true).expect("nodelay");
    c.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    c
}

#[test]
fn delay_and_jitter_are_measured_through_the_proxy() {
    let proxy = FaultProxy::start("127.0.0.1:0".parse().expect("addr"), echo_server());
    let mut conn = connect(&proxy);
    let direct = round_trip(&mut conn, b"warm-up").expect("echo");
    assert!(
        direct < Duration::from_millis(50),
        "no delay set: {direct:?}"
    );

    proxy.set_delay(Duration::from_millis(50), Duration::ZERO);
    let mut rtts: Vec<Duration> = (0..10)
        .map(|i| round_trip(&mut conn, format!("ping {i}").as_bytes()).expect("echo"))
        .collect();
    rtts.sort();
    // 50 ms each way; the upper bound only keeps a stuck proxy from passing.
    assert!(rtts[0] >= Duration::from_millis(100), "{rtts:?}");
    assert!(rtts[5] < Duration::from_millis(400), "{rtts:?}");

    proxy.set_delay(Duration::from_millis(40), Duration::from_millis(30));
    let mut rtts: Vec<Duration> = (0..20)
        .map(|i| {
            let msg: Vec<u8> = (0..200).map(|b| (b + i) as u8).collect();
            round_trip(&mut conn, &msg).expect("echo in order")
        })
        .collect();
    rtts.sort();
    assert!(
        rtts[0] >= Duration::from_millis(20),
        "10..70 ms each way: {rtts:?}"
    );
    assert!(
        rtts[19] > rtts[0] + Duration::from_millis(5),
        "jitter varies the round trip: {rtts:?}"
    );
}

#[test]
fn a_cut_link_answers_nothing_and_a_healed_one_forwards_again() {
    let proxy = FaultProxy::start("127.0.0.1:0".parse().expect("addr"), echo_server());
    let mut conn = connect(&proxy);
    round_trip(&mut conn, b"before").expect("echo before the cut");

    proxy.cut();
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let lost = round_trip(&mut conn, b"during");
    assert!(lost.is_err(), "a cut link delivered: {lost:?}");
    let mut fresh = connect(&proxy);
    fresh
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(
        round_trip(&mut fresh, b"new during").is_err(),
        "a new connection over a cut link was answered"
    );

    proxy.heal();
    let mut after = connect(&proxy);
    let rtt = round_trip(&mut after, b"after").expect("a healed link forwards");
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    assert!(proxy.accepted() >= 3, "{} connections", proxy.accepted());
}

#[test]
fn a_close_arrives_after_the_delay_like_data() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        // Accepts and closes at once, as a process killed right after accepting would.
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let proxy = FaultProxy::start("127.0.0.1:0".parse().expect("addr"), server);
    proxy.set_delay(Duration::from_millis(100), Duration::ZERO);
    let t = Instant::now();
    let mut conn = connect(&proxy);
    let mut b = [0u8; 1];
    let n = conn.read(&mut b).expect("a clean close");
    assert_eq!(n, 0, "the server sent nothing");
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "the close came through after {:?}, before the 100 ms delay",
        t.elapsed()
    );
}
