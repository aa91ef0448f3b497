//! `shoal demo`: a local cluster to try in one command. Three `shoal node` child processes
//! (one OS process per node, so `kill -9` shows a real failover) with HTTP on
//! 127.0.0.1:18081–18083, the admin API/UI on 19081–19083, the Wasm bench app at `/app`, and
//! the balancer in this process on 127.0.0.1:18080. Ctrl-C or SIGTERM drains and stops them.
//!
//! No orphans: the children run in their own process group (a terminal's Ctrl-C reaches only
//! the demo, which stops them in order) and with `--control-stdin`: when the demo exits in any
//! way — even `kill -9` — their stdin closes and they drain and exit. A panic kills them
//! (`kill_on_drop`).
use anyhow::{Context, Result};
use shoal_balancer::{Backend, Balancer, BalancerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Cluster receiver port of node1; the others take the next ones (Tomcat's default: 4000).
    #[arg(long, default_value_t = 4000)]
    pub base_port: u16,
    /// HTTP port of node1; the others take the next ones.
    #[arg(long, default_value_t = 18081)]
    pub http_port: u16,
    /// Admin API/UI port of node1; the others take the next ones.
    #[arg(long, default_value_t = 19081)]
    pub admin_port: u16,
    /// Port of the balancer (the app's front door).
    #[arg(long, default_value_t = 18080)]
    pub balancer_port: u16,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Serve the native bench app instead of the Wasm one.
    #[arg(long)]
    pub native: bool,
    /// Only say which bench app the demo would serve, and exit: status 0 for the Wasm app,
    /// 1 if it would fall back to the native one (`scripts/test.sh` checks the release build).
    #[arg(long)]
    pub check: bool,
    /// Stop by itself after this many seconds (scripts and tests).
    #[arg(long = "for")]
    pub run_for: Option<u64>,
}

struct NodeChild {
    name: String,
    child: Child,
    stdin: Option<tokio::process::ChildStdin>,
    /// The node's log lines while it starts, shown only once every node has started: a
    /// demo that cannot start prints one line with the reason, not three nodes' logs.
    held: HeldLog,
}

/// Log lines held back while `Some`; written to stderr as they come once `None`.
type HeldLog = Arc<Mutex<Option<Vec<String>>>>;

/// What a node's event reader reports while the demo waits for the cluster to form.
enum StartEvent {
    /// The node is up (`ready`).
    Started(usize),
    /// The node finished its state transfer and sees all its peers.
    Formed(usize),
    /// The node exited before it was up, with its reason.
    Failed(usize, String),
}

/// How long the nodes get to start and see each other.
const FORM_WITHIN: Duration = Duration::from_secs(20);

pub async fn run(a: DemoArgs) -> Result<()> {
    if a.check {
        anyhow::ensure!(
            wasm_app_available(),
            "the demo would serve the native bench app, not the Wasm one"
        );
        println!("demo: serves the Wasm bench app (plugin bench-app)");
        return Ok(());
    }
    // Installed before any node starts: Ctrl-C or SIGTERM at any point stops everything.
    let mut signals = crate::node::Signals::install()?;
    let exe = std::env::current_exe().context("cannot locate the shoal executable")?;
    let dir = std::env::temp_dir().join(format!("shoal-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let wasm = !a.native && wasm_app_available();
    let config = write_config(&dir, wasm)?;
    let (token, generated) = match std::env::var("SHOAL_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => (t, false),
        _ => (format!("{:032x}", rand::random::<u128>()), true),
    };
    let secret = format!("{:032x}", rand::random::<u128>());

    // Bound before any node starts: a taken balancer port fails at once, alone.
    let listen = SocketAddr::from(([127, 0, 0, 1], a.balancer_port));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--balancer-port)"))?;
    let ports: Vec<u16> = (0..a.nodes).map(|i| a.base_port + i).collect();
    let mut nodes = Vec::new();
    let (tx, mut starts) = mpsc::unbounded_channel();
    for i in 0..a.nodes {
        match spawn_node(&exe, &a, i, &ports, &config, &secret, &token, tx.clone()) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                kill(&mut nodes).await;
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.context(format!("cannot start node{}", i + 1)));
            }
        }
    }
    drop(tx);
    let result = match wait_formed(&nodes, &mut starts, &mut signals).await {
        Ok(true) => serve(&a, listener, &nodes, &token, generated, wasm, signals).await,
        Ok(false) => Ok(()),
        Err(e) => {
            // Nothing was served yet: no drain, just stop the others.
            kill(&mut nodes).await;
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    stop(&mut nodes).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Waits until every node has started and formed the cluster. Fails at once, naming the node
/// and its reason, when one exits during start-up (a port in use, a bad token, ...). A node
/// that starts but does not see everyone within [`FORM_WITHIN`] is reported, not fatal.
/// `Ok(false)`: Ctrl-C or SIGTERM came first.
async fn wait_formed(
    nodes: &[NodeChild],
    starts: &mut mpsc::UnboundedReceiver<StartEvent>,
    signals: &mut crate::node::Signals,
) -> Result<bool> {
    let deadline = tokio::time::Instant::now() + FORM_WITHIN;
    let mut started = vec![false; nodes.len()];
    let mut formed = vec![false; nodes.len()];
    while !formed.iter().all(|f| *f) {
        let ev = tokio::select! {
            ev = tokio::time::timeout_at(deadline, starts.recv()) => ev,
            () = signals.wait() => return Ok(false),
        };
        match ev {
            Ok(Some(StartEvent::Started(i))) => started[i] = true,
            Ok(Some(StartEvent::Formed(i))) => (started[i], formed[i]) = (true, true),
            Ok(Some(StartEvent::Failed(i, why))) => {
                anyhow::bail!("{} did not start: {why}", nodes[i].name)
            }
            Ok(None) => anyhow::bail!("the nodes' event readers stopped"),
            Err(_) => break,
        }
    }
    if let Some(i) = started.iter().position(|s| !s) {
        anyhow::bail!(
            "{} did not start within {} s (a slow machine? see `shoal node --help`)",
            nodes[i].name,
            FORM_WITHIN.as_secs()
        );
    }
    for (n, f) in nodes.iter().zip(&formed) {
        if !f {
            tracing::warn!(
                "{} started but did not see all its peers within {} s; going on",
                n.name,
                FORM_WITHIN.as_secs()
            );
        }
    }
    // Everyone is up: show what the nodes logged while starting, then their logs as they come.
    for n in nodes.iter() {
        let held = n.held.lock().ok().and_then(|mut h| h.take());
        for l in held.unwrap_or_default() {
            eprintln!("[{}] {l}", n.name);
        }
    }
    Ok(true)
}

/// Waits for the nodes, runs the balancer until Ctrl-C / SIGTERM / `--for`.
async fn serve(
    a: &DemoArgs,
    listener: tokio::net::TcpListener,
    nodes: &[NodeChild],
    token: &str,
    generated: bool,
    wasm: bool,
    mut signals: crate::node::Signals,
) -> Result<()> {
    let backends = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Backend::new(
                n.name.clone(),
                format!("127.0.0.1:{}", a.http_port + i as u16),
            )
        })
        .collect();
    let cfg = BalancerConfig {
        listen: listener.local_addr()?,
        backends,
        ..BalancerConfig::default()
    };
    let balancer = Balancer::new(cfg).context("balancer configuration")?;
    print_banner(a, nodes, token, generated, wasm);
    let run_for = a.run_for;
    balancer
        .serve(listener, async move {
            match run_for {
                Some(s) => {
                    tokio::select! {
                        () = signals.wait() => {}
                        _ = tokio::time::sleep(Duration::from_secs(s)) => {}
                    }
                }
                None => signals.wait().await,
            }
        })
        .await?;
    Ok(())
}

/// True if the Wasm bench app was built; otherwise says why and that the native one is used.
fn wasm_app_available() -> bool {
    let entry: Result<shoal_node::plugins::PluginEntry, _> =
        toml::from_str("name = \"bench-app\"\npath = \"example:bench-app\"");
    let resolved = entry
        .map_err(|e| e.to_string())
        .and_then(|e| shoal_node::plugins::resolve_path(&e, None));
    match resolved {
        Ok(_) => true,
        Err(why) => {
            eprintln!(
                "demo: the Wasm bench app is not available ({why}); serving the native bench app at /app instead"
            );
            false
        }
    }
}

/// The node config shared by every node (ports and names come as flags). The farm lives
/// in the demo's temp dir (removed at exit), not in `data/farm/<node>` under the cwd.
fn write_config(dir: &Path, wasm: bool) -> Result<PathBuf> {
    let mut text = String::from(
        "# written by `shoal demo`\n[http]\nbind = \"127.0.0.1\"\n\n[[http.contexts]]\npath = \"/app\"\napp = \"bench\"\n\n[http.contexts.session]\nmanager = \"delta\"\nreplication = \"sync\"\n",
    );
    let farm = dir.join("farm").join("{node}");
    let farm = toml::Value::String(farm.display().to_string());
    text.push_str(&format!("\n[farm]\ndir = {farm}\n"));
    if wasm {
        text.push_str(
            "\n# The Wasm bench app answers /app before the native app behind it.\n[[plugin]]\nname = \"bench-app\"\npath = \"example:bench-app\"\n",
        );
    }
    let path = dir.join("node.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[allow(clippy::too_many_arguments)]
fn spawn_node(
    exe: &Path,
    a: &DemoArgs,
    i: u16,
    ports: &[u16],
    config: &Path,
    secret: &str,
    token: &str,
    starts: mpsc::UnboundedSender<StartEvent>,
) -> Result<NodeChild> {
    let name = format!("node{}", i + 1);
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .args(["--config", &config.display().to_string()])
        .args(["--name", &name, "--port", &ports[i as usize].to_string()])
        .args(["--http-port", &(a.http_port + i).to_string()])
        .args(["--admin-port", &(a.admin_port + i).to_string()])
        .args(["--json-events", "--control-stdin"])
        .args(["--worker-threads", &share_of_cores().to_string()]);
    for p in ports {
        cmd.args(["--member", &format!("127.0.0.1:{p}")]);
    }
    cmd.env("SHOAL_CLUSTER_SECRET", secret)
        .env("SHOAL_ADMIN_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let held: HeldLog = Arc::new(Mutex::new(Some(Vec::new())));
    if let Some(err) = child.stderr.take() {
        tokio::spawn(relay_log(format!("[{name}]"), err, held.clone()));
    }
    let out = child
        .stdout
        .take()
        .context("node stdout was not captured")?;
    let peers = ports.len().saturating_sub(1);
    tokio::spawn(read_events(i as usize, peers, out, held.clone(), starts));
    let stdin = child.stdin.take();
    Ok(NodeChild {
        name,
        child,
        stdin,
        held,
    })
}

/// Reads node `i`'s events: reports when it is `ready`, when it has finished its state
/// transfer and sees its `peers` (the banner then means "formed", not "started": the first
/// requests do not race the members finding each other), or why it exited before it was up
/// (its `fatal` event, else its last log line). Keeps reading afterwards (a full pipe would
/// block the node).
async fn read_events(
    i: usize,
    peers: usize,
    out: tokio::process::ChildStdout,
    held: HeldLog,
    starts: mpsc::UnboundedSender<StartEvent>,
) {
    let mut lines = BufReader::new(out).lines();
    let (mut started, mut sessions, mut formed) = (false, false, false);
    let mut fatal = None;
    let mut seen = std::collections::BTreeSet::new();
    while let Ok(Some(l)) = lines.next_line().await {
        if formed {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
            continue;
        };
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        match v["event"].as_str() {
            Some("ready") => {
                started = true;
                let _ = starts.send(StartEvent::Started(i));
            }
            Some("fatal") => fatal = v["error"].as_str().map(str::to_owned),
            Some("sessions_ready") => sessions = v["ready"] == true,
            Some("member_added") => {
                seen.insert(name);
            }
            Some("member_disappeared") => {
                seen.remove(&name);
            }
            _ => {}
        }
        if started && sessions && seen.len() >= peers {
            formed = true;
            let _ = starts.send(StartEvent::Formed(i));
        }
    }
    if !started {
        let last_line = || {
            held.lock()
                .ok()
                .and_then(|h| h.as_ref().and_then(|v| v.last().cloned()))
        };
        let why = fatal.or_else(last_line).unwrap_or_else(|| {
            "it exited without a reason (run `shoal node` alone to see why)".into()
        });
        let _ = starts.send(StartEvent::Failed(i, why));
    }
}

fn print_banner(a: &DemoArgs, nodes: &[NodeChild], token: &str, generated: bool, wasm: bool) {
    let b = a.balancer_port;
    let app = if wasm {
        "the Wasm bench app (plugin bench-app)"
    } else {
        "the native bench app"
    };
    println!(
        "\nshoal demo: {} nodes, {app} at /app, DeltaManager, sync replication\n",
        nodes.len()
    );
    for (i, n) in nodes.iter().enumerate() {
        let pid = n
            .child
            .id()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into());
        println!(
            "  {}  pid {pid:<8} http://127.0.0.1:{}/app/   admin http://127.0.0.1:{}/ui/",
            n.name,
            a.http_port + i as u16,
            a.admin_port + i as u16
        );
    }
    println!("\n  app through the balancer   http://127.0.0.1:{b}/app/counter");
    println!("  balancer status            http://127.0.0.1:{b}/balancer/status");
    println!(
        "  admin UI                   http://127.0.0.1:{}/ui/",
        a.admin_port
    );
    println!(
        "  API docs                   http://127.0.0.1:{}/api/docs",
        a.admin_port
    );
    if generated {
        println!("  admin token (generated)    {token}");
        println!("\n  export SHOAL_ADMIN_TOKEN={token}");
    } else {
        println!("  admin token                from SHOAL_ADMIN_TOKEN");
    }
    let pid1 = nodes
        .first()
        .and_then(|n| n.child.id())
        .map(|p| p.to_string())
        .unwrap_or_else(|| "<pid of node1>".into());
    println!("\nTry a failover:");
    println!("  curl -s -c /tmp/jar -b /tmp/jar -i http://127.0.0.1:{b}/app/counter   # note X-Shoal-Backend");
    println!("  kill -9 <pid of the node named in X-Shoal-Backend>                   # e.g. kill -9 {pid1}");
    println!("  curl -s -c /tmp/jar -b /tmp/jar http://127.0.0.1:{b}/app/counter      # counter keeps counting");
    println!(
        "  shoal ctl --url http://127.0.0.1:{} members                          # (cargo run --release -p shoal -- ctl members)",
        a.admin_port + 1
    );
    println!("\nCtrl-C stops everything.");
}

/// Asks every node to drain (`quit` on its stdin), then kills what is still running after 10 s.
async fn stop(nodes: &mut [NodeChild]) {
    tracing::info!("demo: stopping the nodes");
    for n in nodes.iter_mut() {
        if let Some(mut stdin) = n.stdin.take() {
            let _ = stdin.write_all(b"quit\n").await;
        }
    }
    for n in nodes.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), n.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("{} did not stop within 10 s; killing it", n.name);
            let _ = n.child.kill().await;
        }
    }
}

/// Kills nodes that never served (a failed start): nothing to drain.
async fn kill(nodes: &mut [NodeChild]) {
    for n in nodes.iter_mut() {
        let _ = n.child.kill().await;
    }
}

/// Copies a child's log lines to our stderr, prefixed with its name (three nodes, one
/// terminal); holds them back while the node starts (see [`NodeChild::held`]).
async fn relay_log(prefix: String, err: tokio::process::ChildStderr, held: HeldLog) {
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        let Ok(mut h) = held.lock() else { return };
        match h.as_mut() {
            Some(v) => v.push(l),
            None => eprintln!("{prefix} {l}"),
        }
    }
}

/// Worker threads per node: the demo's 3 nodes share this machine's cores.
fn share_of_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 3).max(1))
}
