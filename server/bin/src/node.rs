//! `shoal node`: one cluster node (for now: the channel; sessions and HTTP join later).
//!
//! For tests and scripts, `--json-events` prints one JSON object per line on stdout:
//! `ready`, `member_added`, `member_suspected`, `member_disappeared`, `received`,
//! `send_report`, `stats`, `fatal` (the error that stopped it); a full node adds `sessions_ready` (state transfer done), `draining`
//! and `drained`. `--control-stdin` reads commands, one per line:
//! `send async|ack|sync|plain TEXT` (to every member), `stats`, `leave`, `quit`.
//! A full node (`[http]`) drains on SIGTERM, Ctrl-C, `quit` or `POST /api/v1/cluster/drain`
//! on its admin API (`shoal ctl drain`): one trigger, one sequence (`shoal_node::drain`).
use anyhow::{anyhow, Context, Result};
use serde_json::json;
use shoal_cluster::{InterceptorStack, Member, SendOptions};
use shoal_config::{Config, Overrides};
use shoal_net::{Channel, ClusterConfig, Incoming, MembershipEvent, Outcome, SendReport};
use shoal_node::drain::{self, DrainTrigger, Progress};
use shoal_node::roles;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's TOML file (see README, "Configuration"). Without it, defaults + flags.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Print membership and message events as JSON lines on stdout.
    #[arg(long)]
    pub json_events: bool,
    /// Read commands from stdin (`send MODE TEXT`, `stats`, `leave`, `quit`).
    #[arg(long)]
    pub control_stdin: bool,
    /// While draining, keep serving this long after telling the balancers, so balancers
    /// with a static backend list see the drain in a health probe before the HTTP listener
    /// closes (`shoal balancer` probes every 500 ms by default).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub drain_grace_ms: u64,
    /// Threads that run the node's tasks (default: one per core, or $TOKIO_WORKER_THREADS).
    /// Give each node its share when several share a machine: `shoal demo` and the
    /// benchmark scripts use cores / 3 (at least 1). On 2 cores shared by 3 nodes, 1 worker
    /// each served 40% more replicated requests than 2 (idle workers of one node search
    /// for work on the cores the others need); see docs/bench-sessions.md.
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<usize>,
}

/// Runs the node; with `--json-events`, an error that stops it is also reported as a
/// `{"event": "fatal", "error": "..."}` line (how `shoal demo` names the reason a node failed).
pub async fn run(args: NodeArgs) -> Result<()> {
    let json = args.json_events;
    let r = run_node(args).await;
    if let (true, Err(e)) = (json, &r) {
        println!("{}", json!({"event": "fatal", "error": format!("{e:#}")}));
    }
    r
}

async fn run_node(args: NodeArgs) -> Result<()> {
    // Before anything can announce readiness: a SIGTERM during start-up stops the node the
    // normal way instead of killing it (the default action while no handler is installed).
    let mut signals = Signals::install()?;
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.apply(&args.overrides, &args.config)?;
    crate::logfmt::set_node_name(&cfg.cluster.name);
    let secret = cfg.cluster.resolve_secret();
    let settings = cfg.cluster.settings(secret)?;
    let stack = build_stack(&cfg.cluster).with_context(|| {
        format!(
            "config {}",
            args.config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    })?;
    if let Some(http) = cfg.http.take() {
        return run_full(args, cfg, http, settings, stack, signals).await;
    }
    let (ch, incoming) = Channel::start(settings, stack)
        .await
        .context("cannot start the cluster channel")?;
    let json = args.json_events;
    if json {
        println!(
            "{}",
            json!({"event": "ready", "name": ch.local().name, "id": ch.local().id.to_hex(),
            "addr": ch.local().addr.to_string(), "incarnation": ch.local().incarnation})
        );
    }
    tokio::spawn(membership_events(ch.clone(), json));
    tokio::spawn(receive(incoming, ch.clone(), json));
    let quit = if args.control_stdin {
        // `quit` on stdin, or a signal: a test harness may use either.
        tokio::select! {
            q = tokio::spawn(control(ch.clone())) => q.unwrap_or(Ok(())),
            () = signals.wait() => Ok(()),
        }
    } else {
        signals.wait().await;
        Ok(())
    };
    ch.shutdown().await;
    quit
}

/// A node with HTTP contexts (sessions), plugins and optionally the admin API.
async fn run_full(
    args: NodeArgs,
    cfg: Config,
    http: shoal_http::HttpConfig,
    mut settings: shoal_net::ChannelSettings,
    stack: InterceptorStack,
    mut signals: Signals,
) -> Result<()> {
    let http_addr = format!("{}:{}", http.bind, http.port);
    let http_listener = tokio::net::TcpListener::bind(&http_addr)
        .await
        .with_context(|| {
            format!("cannot bind the HTTP listener to {http_addr} (http.bind / http.port / --http-port)")
        })?;
    let admin_listener = match &cfg.admin {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a.bind)
                .await
                .with_context(|| {
                    format!(
                        "cannot bind the admin listener to {} (admin.bind / --admin-port)",
                        a.bind
                    )
                })?,
        ),
        None => None,
    };
    let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
    // A balancer that joined the cluster learns where to send requests from these.
    if let Ok(a) = http_listener.local_addr() {
        settings.meta.insert(roles::META_HTTP.into(), a.to_string());
    }
    settings
        .meta
        .insert(roles::META_ROLE.into(), roles::ROLE_NODE.into());
    let parts = shoal_node::NodeParts {
        settings,
        stack,
        http,
        plugins: cfg.plugin,
        config_dir: args
            .config
            .as_ref()
            .and_then(|p| p.parent().map(|d| d.to_path_buf())),
        admin: cfg.admin,
        farm: Some(cfg.farm),
    };
    let node = shoal_node::start(parts, http_listener, admin_listener).await?;
    let ch = node.channel.clone();
    let json = args.json_events;
    if json {
        println!(
            "{}",
            json!({"event": "ready", "name": ch.local().name, "id": ch.local().id.to_hex(),
            "addr": ch.local().addr.to_string(), "incarnation": ch.local().incarnation,
            "http": node.http_addr.to_string(),
            "admin": admin_addr.map(|a| a.to_string())})
        );
    }
    tokio::spawn(roles::announce_ready(
        ch.clone(),
        node.http.registry().clone(),
    ));
    if json {
        let registry = node.http.registry().clone();
        tokio::spawn(async move {
            let ready = registry
                .wait_ready(std::time::Duration::from_secs(60))
                .await;
            println!("{}", json!({"event": "sessions_ready", "ready": ready}));
        });
    }
    {
        // Serving: the code that only starting ran leaves the resident set.
        let registry = node.http.registry().clone();
        tokio::spawn(async move {
            registry
                .wait_ready(std::time::Duration::from_secs(60))
                .await;
            crate::code_pages::release_startup_pages();
        });
    }
    crate::malloc::trim_periodically();
    tokio::spawn(membership_events(ch.clone(), json));
    let trigger = node.drain.clone();
    let (quit, source) = tokio::select! {
        quit = async {
            if args.control_stdin {
                // SIGTERM drains here too (and, its handler installed, cannot cut short a
                // drain that `quit` or the API started).
                tokio::select! {
                    q = tokio::spawn(control(ch.clone())) => (q.unwrap_or(Ok(())), DrainTrigger::Control),
                    () = signals.wait() => (Ok(()), DrainTrigger::Signal),
                }
            } else {
                signals.wait().await;
                (Ok(()), DrainTrigger::Signal)
            }
        } => quit,
        // The admin API pulled the same trigger (`POST /api/v1/cluster/drain`).
        _ = trigger.requested() => (Ok(()), DrainTrigger::Api),
    };
    // A no-op if the API asked first: the first request wins.
    let _ = trigger.request(source);
    // SIGTERM, Ctrl-C, `quit` and the API all drain: nothing acknowledged is lost on the way out.
    let grace = std::time::Duration::from_millis(args.drain_grace_ms);
    drain::run(&trigger, &ch, grace, node.shutdown(), |p| {
        if !json {
            return;
        }
        match p {
            Progress::Draining { balancers, trigger } => println!(
                "{}",
                json!({"event": "draining", "balancers": balancers, "trigger": trigger})
            ),
            Progress::Drained => println!("{}", json!({"event": "drained"})),
        }
    })
    .await;
    quit
}

/// The interceptor stack from `[[cluster.interceptor]]`, top first.
fn build_stack(c: &ClusterConfig) -> Result<InterceptorStack> {
    let mut stack = InterceptorStack::default();
    for (i, ic) in c.interceptor.iter().enumerate() {
        let layer = shoal_cluster::interceptors::build(&ic.name, &ic.options)
            .map_err(|e| anyhow!("cluster.interceptor[{i}] ({}): {e}", ic.name))?;
        stack
            .push(layer)
            .map_err(|e| anyhow!("cluster.interceptor[{i}] ({}): {e}", ic.name))?;
    }
    Ok(stack)
}

/// SIGTERM and SIGINT (Ctrl-C) handlers, installed when created. Once installed they stay
/// for the life of the process, so a later signal (a second SIGTERM during a drain) is
/// taken by them instead of killing the process.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        tracing::info!("signal received, leaving the cluster");
    }
}

fn member_json(event: &str, m: &Member) -> serde_json::Value {
    json!({"event": event, "name": m.name, "id": m.id.to_hex(), "addr": m.addr.to_string(),
        "incarnation": m.incarnation})
}

async fn membership_events(ch: Channel, json: bool) {
    let mut rx = ch.subscribe();
    if json {
        // Members that joined before the subscription (duplicates are harmless).
        for m in ch.members() {
            println!("{}", member_json("member_added", &m));
        }
    }
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("{n} membership events missed by the log");
                continue;
            }
            Err(_) => return,
        };
        if !json {
            continue;
        }
        let line = match &ev {
            MembershipEvent::Added(m) => member_json("member_added", m),
            MembershipEvent::Suspected { member, reason } => {
                let mut v = member_json("member_suspected", member);
                v["reason"] = json!(reason);
                v
            }
            MembershipEvent::Disappeared { member, reason } => {
                let mut v = member_json("member_disappeared", member);
                v["reason"] = json!(reason.to_string());
                v
            }
        };
        println!("{line}");
    }
}

/// Processes incoming messages: this node has no application yet, so processing = logging.
async fn receive(mut incoming: Incoming, ch: Channel, json: bool) {
    while let Some(m) = incoming.recv().await {
        if json {
            let from = ch
                .members()
                .into_iter()
                .find(|x| x.id == m.from)
                .map(|x| x.name)
                .unwrap_or_default();
            let text: String = String::from_utf8_lossy(&m.payload)
                .chars()
                .take(200)
                .collect();
            println!(
                "{}",
                json!({"event": "received", "from": from, "id": m.id, "len": m.payload.len(),
                "options": m.options.0, "text": text})
            );
        }
        if let Some(c) = m.completion {
            c.complete();
        }
    }
}

fn report_json(r: &SendReport, ch: &Channel) -> serde_json::Value {
    let members = ch.members();
    let results: Vec<serde_json::Value> = r
        .results
        .iter()
        .map(|(id, o)| {
            let name = members
                .iter()
                .find(|m| m.id == *id)
                .map(|m| m.name.clone())
                .unwrap_or_else(|| id.to_hex());
            let outcome = match o {
                Outcome::Failed(why) => format!("failed: {why}"),
                other => format!("{other:?}").to_lowercase(),
            };
            json!({"member": name, "outcome": outcome})
        })
        .collect();
    json!({"event": "send_report", "ok": r.ok(), "results": results})
}

/// Lines of stdin, read on a plain thread: a read blocked in tokio's blocking pool would keep
/// the runtime (and so the process) from exiting after a drain the admin API started.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    rx
}

async fn control(ch: Channel) -> Result<()> {
    let mut lines = stdin_lines();
    while let Some(line) = lines.recv().await {
        let line = line?;
        let mut parts = line.trim().splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("send"), Some(mode), text) => {
                let opts = match mode {
                    "async" => SendOptions::ASYNCHRONOUS,
                    "ack" => SendOptions::USE_ACK,
                    "sync" => SendOptions::SYNCHRONIZED_ACK,
                    "plain" => 0,
                    other => {
                        eprintln!("unknown send mode {other:?}: use async, ack, sync or plain");
                        continue;
                    }
                };
                let r = ch
                    .send_all(text.unwrap_or("").as_bytes().to_vec(), SendOptions(opts))
                    .await;
                println!("{}", report_json(&r, &ch));
            }
            (Some("stats"), _, _) => {
                let s = ch.stats().await;
                println!("{}", json!({"event": "stats", "stats": s}));
            }
            (Some("leave"), _, _) => ch.leave().await,
            (Some("quit"), _, _) => return Ok(()),
            (Some(""), _, _) | (None, _, _) => {}
            (Some(other), _, _) => eprintln!("unknown command {other:?}: send, stats, leave, quit"),
        }
    }
    Ok(())
}
