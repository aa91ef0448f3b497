//! Drain through the admin API and `shoal ctl drain`, with real `shoal` processes.
//!
//! - Rolling restart of three nodes behind `shoal balancer` with a *static* backend list
//!   (no `--join`), each node drained by `POST /api/v1/cluster/drain`: the balancer sees the
//!   drain in its health probes (no new sessions there, sticky requests still served), and no
//!   session and no acknowledged update is lost.
//! - `shoal ctl drain --node URL` drains a node: the command and the node exit 0, and the
//!   peers see it leave (`left`, not a failure).
use shoal_testkit::eventually_blocking;
use shoal_tests::front::{check_rolling_restart, get, Front, Load};
use shoal_tests::sessions::HttpNode;
use shoal_tests::{admin_call, free_port, shoal_bin, temp_file, NodeProc, NodeSpec};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["node1", "node2", "node3"];
const TOKEN: &str = "drain-test-admin-token-0123456789";

/// The tests of this file run one at a time: a node that restarts on its fixed ports leaves
/// them free for a moment, and a parallel test's `free_port()` could take them. Each test's
/// cluster also has its own secret, so nodes of two tests can never join each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fixed ports of one node, so it comes back where the static balancer expects it.
#[derive(Clone, Copy)]
struct Ports {
    channel: u16,
    http: u16,
    admin: u16,
}

fn ports() -> Vec<Ports> {
    NAMES
        .iter()
        .map(|_| Ports {
            channel: free_port(),
            http: free_port(),
            admin: free_port(),
        })
        .collect()
}

/// Sync `/app` with `manager` (delta|backup) on fixed HTTP and admin ports.
fn node_config(p: Ports, manager: &str) -> std::path::PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = {}\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"{manager}\"\nreplication = \"sync\"\n\
         max_inactive_secs = 1800\n\n[admin]\nbind = \"127.0.0.1:{}\"\nadmin_token = \"{TOKEN}\"\n",
        p.http, p.admin
    );
    temp_file("shoal.toml", &toml)
}

fn spawn_node(i: usize, all: &[Ports], manager: &str, secret: &str) -> HttpNode {
    let members: Vec<u16> = all.iter().map(|p| p.channel).collect();
    let mut spec = NodeSpec::new(NAMES[i], all[i].channel, &members, secret);
    spec.config = Some(node_config(all[i], manager));
    let mut proc = NodeProc::spawn_with(spec, &["--drain-grace-ms", "2500"]);
    let ready = proc.wait_event("ready", |_| true, Duration::from_secs(10));
    let http = ready.json["http"].as_str().unwrap_or_default().to_string();
    assert_eq!(http, format!("127.0.0.1:{}", all[i].http), "{}", ready.json);
    HttpNode { proc, http }
}

/// One admin API call on a fresh connection: (status, body).
fn admin(port: u16, method: &str, path: &str) -> Result<(u16, String), String> {
    let (status, body) = admin_call(&format!("127.0.0.1:{port}"), TOKEN, method, path)?;
    // Small JSON answers; a chunked body would only add framing around it.
    let body = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| body[a..=b].to_string()))
        .unwrap_or_default();
    Ok((status, body))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The balancer's view of `route`: (status, addr).
fn backend_status(front: &str, route: &str) -> Option<(String, String)> {
    let s = get(front, "/balancer/status", None).ok()?.body;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    v["backends"].as_array()?.iter().find_map(|b| {
        (b["route"] == route).then(|| {
            (
                b["status"].as_str().unwrap_or_default().to_string(),
                b["addr"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
}

#[test]
fn rolling_restart_drained_through_the_api_behind_a_static_balancer_loses_nothing() {
    rolling_restart("delta");
}

/// BackupManager: the drained node's primary sessions are promoted on their backups.
#[test]
fn rolling_restart_drained_through_the_api_backup_manager_loses_nothing() {
    rolling_restart("backup");
}

fn rolling_restart(manager: &str) {
    let _serial = serial();
    let secret = format!("drain-api-{manager}-secret-0123456789");
    let all = ports();
    let mut nodes: Vec<Option<HttpNode>> = (0..3)
        .map(|i| Some(spawn_node(i, &all, manager, &secret)))
        .collect();
    for n in nodes.iter_mut().flatten() {
        n.wait_members(&NAMES);
    }
    let backends: Vec<(String, String)> = nodes
        .iter()
        .flatten()
        .map(|n| (n.name().to_string(), n.http.clone()))
        .collect();
    let front = Front::balancer(&backends, &[], &secret);
    let load = Load::start(&front.addr, 9, Duration::from_millis(10));
    assert!(load.wait_successes(&[0; 9], 10, Duration::from_secs(15)));

    for i in 0..3 {
        let route = NAMES[i];
        let mut old = nodes[i].take().expect("node");
        let t = Instant::now();
        let (status, body) = admin(all[i].admin, "POST", "/api/v1/cluster/drain").expect("drain");
        assert_eq!(status, 202, "{body}");
        let started = json(&body);
        assert_eq!(started["draining"], true, "{started}");
        assert_eq!(started["trigger"], "api", "{started}");
        let (again, body) = admin(all[i].admin, "POST", "/api/v1/cluster/drain").expect("again");
        assert_eq!(again, 409, "a second drain request: {body}");
        let (ready, body) = admin(all[i].admin, "GET", "/api/v1/ready").expect("ready");
        assert_eq!(ready, 503, "{body}");
        assert_eq!(json(&body)["status"], "draining");

        eventually_blocking(
            &format!("{route} reports a drain event"),
            Duration::from_secs(1),
            || {
                admin(all[i].admin, "GET", "/api/v1/events/recent")
                    .is_ok_and(|(_, b)| b.contains("\"kind\":\"drain\""))
            },
        );

        // The static balancer sees the drain in a probe (every 500 ms) while the node still
        // serves (grace: 2.5 s).
        eventually_blocking(
            &format!("balancer marks {route} draining"),
            Duration::from_millis(2300),
            || backend_status(&front.addr, route).map(|s| s.0) == Some("draining".into()),
        );
        for _ in 0..5 {
            let r = get(&front.addr, "/app/counter", None).expect("new session");
            assert_eq!(r.status, 200, "{}", r.body);
            assert_ne!(
                r.backend.as_deref(),
                Some(route),
                "draining node got a new session"
            );
        }

        let ev = old
            .proc
            .wait_event("draining", |_| true, Duration::from_secs(5));
        assert_eq!(ev.json["trigger"], "api", "{}", ev.json);
        old.proc
            .wait_event("drained", |_| true, Duration::from_secs(20));
        old.proc.wait_exit(Duration::from_secs(5));
        let drained = t.elapsed();
        assert!(
            admin(all[i].admin, "GET", "/api/v1/health").is_err(),
            "the admin API of an exited node still answers"
        );

        let mut new = spawn_node(i, &all, manager, &secret);
        new.proc.wait_event(
            "sessions_ready",
            |v| v["ready"] == true,
            Duration::from_secs(15),
        );
        eventually_blocking(
            &format!("balancer serves {route} again"),
            Duration::from_secs(10),
            || backend_status(&front.addr, route).map(|s| s.0) == Some("up".into()),
        );
        println!(
            "{route} drained through the API in {drained:?}, back at {}",
            new.http
        );
        nodes[i] = Some(new);
        let base = load.successes();
        assert!(
            load.wait_successes(&base, 10, Duration::from_secs(15)),
            "load stalled after restarting {route}"
        );
    }
    let logs = load.stop();
    let (unacked, total) = check_rolling_restart(&front.addr, &logs);
    println!(
        "rolling restart ({manager}) through POST /api/v1/cluster/drain (static balancer): {} sessions, \
         {total} requests, no acknowledged update lost, {unacked} answered 503 'not acknowledged, retry'",
        logs.len()
    );
}

#[test]
fn ctl_drain_drains_a_node_that_exits_0_and_peers_see_it_leave() {
    let _serial = serial();
    let secret = "drain-api-ctl-secret-0123456789";
    let all = ports();
    let mut peers: Vec<HttpNode> = (0..2)
        .map(|i| spawn_node(i, &all, "delta", secret))
        .collect();
    // node3 without --control-stdin: a node as an operator runs it; its exit status is ours.
    let members: Vec<String> = all
        .iter()
        .flat_map(|p| ["--member".to_string(), format!("127.0.0.1:{}", p.channel)])
        .collect();
    let log = temp_file("node3.log", "");
    let mut node3 = Command::new(shoal_bin())
        .args(["node", "--name", "node3", "--bind", "127.0.0.1"])
        .args(["--port", &all[2].channel.to_string()])
        // Its farm's default dir (data/farm/node3) in a temp dir, never in the source tree.
        .current_dir(shoal_tests::node_workdir(&NodeSpec::new(
            "node3",
            all[2].channel,
            &[],
            secret,
        )))
        .args(&members)
        .arg("--config")
        .arg(node_config(all[2], "delta"))
        .env("SHOAL_CLUSTER_SECRET", secret)
        .env_remove("SHOAL_ADMIN_TOKEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn node3");
    for p in peers.iter_mut() {
        p.proc.wait_event(
            "member_added",
            |v| v["name"] == "node3",
            Duration::from_secs(10),
        );
    }
    eventually_blocking(
        "node3's admin API answers ready",
        Duration::from_secs(15),
        || admin(all[2].admin, "GET", "/api/v1/ready").map(|r| r.0) == Ok(200),
    );

    let t = Instant::now();
    let out = Command::new(shoal_bin())
        .args(["ctl", "--token", TOKEN, "drain", "--timeout-secs", "30"])
        .args(["--node", &format!("http://127.0.0.1:{}", all[2].admin)])
        .env_remove("SHOAL_ADMIN_URL")
        .output()
        .expect("run shoal ctl drain");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ctl drain failed: {stdout}\n{stderr}");
    assert!(stdout.contains("node3 is draining"), "{stdout}");
    assert!(stdout.contains("node3 drained"), "{stdout}");
    println!("shoal ctl drain ({:?}):\n{stdout}", t.elapsed());

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = node3.try_wait().expect("node3 status") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = node3.kill();
            panic!(
                "node3 did not exit after its drain:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "node3 exited with {status}:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for p in peers.iter_mut() {
        let ev = p.proc.wait_event(
            "member_disappeared",
            |v| v["name"] == "node3",
            Duration::from_secs(10),
        );
        assert_eq!(ev.json["reason"], "left", "{}", ev.json);
    }
}

/// SIGTERM drains a node started with `--control-stdin` too (before, only `quit` did and a
/// SIGTERM killed it on the spot), and a second SIGTERM while it drains does not cut the
/// drain short: the node still reports `drained`, exits 0, and its peer sees it leave.
#[test]
fn sigterm_drains_a_control_stdin_node_and_a_second_one_does_not_cut_it_short() {
    let _serial = serial();
    let secret = "drain-api-sigterm-secret-0123456789";
    let all = ports();
    let mut nodes: Vec<HttpNode> = (0..2)
        .map(|i| spawn_node(i, &all[..2], "delta", secret))
        .collect();
    nodes[0]
        .proc
        .wait_members(&["node2"], Duration::from_secs(10));
    let node2 = &mut nodes[1].proc;
    node2.signal("TERM");
    let ev = node2.wait_event("draining", |_| true, Duration::from_secs(5));
    assert_eq!(ev.json["trigger"], "signal", "{}", ev.json);
    node2.signal("TERM"); // during the 2.5 s grace: ignored, the drain goes on
    node2.wait_event("drained", |_| true, Duration::from_secs(20));
    let status = node2.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "node2 exited with {status}");
    let ev = nodes[0].proc.wait_event(
        "member_disappeared",
        |v| v["name"] == "node2",
        Duration::from_secs(10),
    );
    assert_eq!(ev.json["reason"], "left", "{}", ev.json);
}
