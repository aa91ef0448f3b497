//! `shoal demo` on non-default ports: it starts three node processes and the balancer,
//! answers through the balancer with the Wasm bench app, and leaves no process behind when
//! it is stopped with SIGTERM.
use shoal_tests::front::get;
use shoal_tests::shoal_bin;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn demo_starts_answers_and_stops_cleanly() {
    // One run of ten: separate runs can overlap (node1's HTTP port on node3's admin port).
    let b = shoal_tests::free_run(10);
    let (base, http, admin, front) = (b, b + 3, b + 6, b + 9);
    let mut child = Command::new(shoal_bin())
        .arg("demo")
        .args([
            "--base-port",
            &base.to_string(),
            "--http-port",
            &http.to_string(),
        ])
        .args([
            "--admin-port",
            &admin.to_string(),
            "--balancer-port",
            &front.to_string(),
        ])
        .args(["--for", "60"])
        .env_remove("SHOAL_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shoal demo");
    // The banner names the node pids and the generated admin token.
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !banner
        .iter()
        .any(|l: &String| l.contains("Ctrl-C stops everything"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => banner.push(l),
            Err(_) => panic!("no complete banner within 30 s; got {banner:#?}"),
        }
    }
    let text = banner.join("\n");
    assert!(text.contains("Wasm bench app"), "not the Wasm app:\n{text}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{front}/app/counter")),
        "{text}"
    );
    assert!(
        text.contains(&format!("http://127.0.0.1:{admin}/ui/")),
        "{text}"
    );
    assert!(text.contains("admin token (generated)"), "{text}");
    let pids: Vec<u32> = banner
        .iter()
        .filter_map(|l| {
            l.split("pid ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(pids.len(), 3, "three node pids in the banner:\n{text}");
    assert!(pids.iter().all(|p| alive(*p)));

    let addr = format!("127.0.0.1:{front}");
    // The Wasm app's stats line has no `manager=` (the native app's has).
    let stats = get(&addr, "/app/stats", None).expect("stats through the balancer");
    assert_eq!(stats.status, 200, "{stats:?}");
    assert!(stats.body.starts_with("node=node"), "{stats:?}");
    assert!(
        !stats.body.contains("manager="),
        "native app answered: {stats:?}"
    );
    assert!(stats.backend.is_some(), "no X-Shoal-Backend: {stats:?}");
    let first = get(&addr, "/app/counter", None).expect("counter");
    let cookie = first.cookie.clone().expect("a session cookie");
    let second = get(&addr, "/app/counter", Some(&cookie)).expect("counter again");
    assert_eq!(first.field("counter"), Some("1"), "{first:?}");
    assert_eq!(second.field("counter"), Some("2"), "{second:?}");

    // SIGTERM: the demo drains its nodes and exits; nothing is left running.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(
        st.map(|s| s.success()).unwrap_or(false),
        "kill -TERM failed"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "demo did not exit within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "demo exit status {status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "node processes left behind: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        get(&addr, "/app/stats", None).is_err(),
        "balancer still answers"
    );
}

/// Runs `shoal demo --native` on a fresh run of ports with `env` and `RUST_BACKTRACE=1`,
/// expecting it to fail: returns its stderr lines, asserting it exits non-zero within 15 s.
fn demo_that_fails(ports: u16, env: &[(&str, &str)]) -> Vec<String> {
    let (base, http, admin, front) = (ports, ports + 3, ports + 6, ports + 9);
    let mut cmd = Command::new(shoal_bin());
    cmd.arg("demo")
        .args(["--native", "--for", "60"])
        .args(["--base-port", &base.to_string()])
        .args(["--http-port", &http.to_string()])
        .args(["--admin-port", &admin.to_string()])
        .args(["--balancer-port", &front.to_string()])
        .env_remove("SHOAL_ADMIN_TOKEN")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn shoal demo");
    let err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not exit within 15 s of a node failing to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = reader.join().expect("stderr reader");
    assert!(!status.success(), "demo exit status {status}: {lines:#?}");
    lines
}

#[test]
fn demo_with_a_short_admin_token_fails_with_one_line() {
    let lines = demo_that_fails(shoal_tests::free_run(10), &[("SHOAL_ADMIN_TOKEN", "short")]);
    assert_eq!(lines.len(), 1, "one line, no backtrace: {lines:#?}");
    let l = &lines[0];
    // Every node refuses the token; whichever reports first is named.
    assert!(
        l.starts_with("error: node") && l.contains(" did not start: "),
        "{l}"
    );
    assert!(l.contains("SHOAL_ADMIN_TOKEN") && l.contains("16"), "{l}");
}

#[test]
fn demo_with_a_port_in_use_fails_with_one_line_naming_the_node() {
    let ports = shoal_tests::free_run(10);
    // node2's HTTP port is taken.
    let taken = ports + 4;
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", taken)).expect("bind the squatter");
    let lines = demo_that_fails(ports, &[]);
    assert_eq!(lines.len(), 1, "one line, no backtrace: {lines:#?}");
    let l = &lines[0];
    assert!(l.contains("node2 did not start"), "{l}");
    assert!(l.contains(&format!("127.0.0.1:{taken}")), "{l}");
    assert!(l.contains("--http-port"), "{l}");
}
