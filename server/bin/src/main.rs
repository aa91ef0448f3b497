//! The `shoal` binary: thin CLI over the library crates.
//!
//! - `shoal node`: run one node (config file + per-node flags).
//! - `shoal demo`: a local 3-node cluster on 127.0.0.1 (child processes), Ctrl-C stops it.
//! - `shoal balancer`: the sticky reverse proxy (static backends or `--join` the cluster).
//! - `shoal ctl`: the admin API from a terminal.
//! - `shoal plugin`: write, build and try a Wasm plugin (new, build, test).
//! - `shoal config import`: a Tomcat server.xml / context.xml as a node file.
//! - `shoal bench-channel`: channel throughput / latency / failure-detection figures.
mod balancer;
mod bench;
mod bench_detect;
mod code_pages;
mod demo;
mod import;
mod logfmt;
mod malloc;
mod node;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "shoal",
    version,
    about = "A cluster server for web sessions (Tomcat clustering, rebuilt)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log lines on stderr as text or as one JSON object per line (a node's file may say
    /// `[log] format = "json"`; this flag wins).
    #[arg(long, global = true, value_enum)]
    log_format: Option<logfmt::LogFormat>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one cluster node.
    Node(node::NodeArgs),
    /// Start a local 3-node cluster on 127.0.0.1 and stop it on Ctrl-C.
    Demo(demo::DemoArgs),
    /// Sticky-by-route HTTP balancer in front of the nodes.
    Balancer(balancer::BalancerArgs),
    /// Administer a running cluster through a node's admin API.
    Ctl(shoal_ctl::Ctl),
    /// Write, build and try a Wasm plugin: `new`, `build`, `test` (then `ctl plugins load`).
    #[command(subcommand)]
    Plugin(shoal_plugin_dev::PluginCommand),
    /// Measure the channel: throughput, sync_ack latency, kill -9 detection.
    BenchChannel(bench::BenchArgs),
    /// Node configuration files: `shoal config import server.xml [context.xml …]`.
    #[command(subcommand)]
    Config(import::ConfigCmd),
}

/// With the `mimalloc` feature: mimalloc instead of glibc malloc. The request path allocates
/// many small short-lived buffers (headers, frames, deltas) across threads, where glibc's
/// malloc/free took ~17% of a node's CPU; mimalloc saves ~10% CPU per replicated request but
/// keeps ~4 MiB more resident (more with arena eager commit, which `.cargo/config.toml`
/// turns off). Off by default: the 40 MiB budget for 10,000 sessions comes first.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error ends the process with status 1 and ONE line: the error and its causes, never a
/// backtrace (`RUST_BACKTRACE` or not). These are errors a user can cause and fix (a port in
/// use, a bad key, an unreachable node); bugs panic, and a panic keeps its backtrace.
fn main() -> ExitCode {
    // Before any thread exists (see malloc.rs).
    malloc::limit_arenas();
    let cli = Cli::parse();
    logfmt::init(log_format(&cli));
    if let Cmd::Node(node::NodeArgs {
        overrides: shoal_config::Overrides {
            name: Some(name), ..
        },
        ..
    }) = &cli.cmd
    {
        // Errors before the config is resolved carry the name too.
        logfmt::set_node_name(name);
    }
    // The terminal commands speak to a person: a plain `error: ...` line. The servers log it,
    // so it lands where their other log lines go, in their format.
    let plain = matches!(cli.cmd, Cmd::Ctl(_) | Cmd::Demo(_) | Cmd::Config(_));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if plain => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--log-format`, else a node's `[log] format`, else text.
fn log_format(cli: &Cli) -> logfmt::LogFormat {
    if let Some(f) = cli.log_format {
        return f;
    }
    match &cli.cmd {
        Cmd::Node(a) => a
            .config
            .as_deref()
            .and_then(shoal_config::LogConfig::peek)
            .map(|l| l.format)
            .unwrap_or_default(),
        _ => logfmt::LogFormat::Text,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let workers = match &cli.cmd {
        Cmd::Node(node::NodeArgs {
            worker_threads: Some(n),
            ..
        }) => Some(*n),
        _ => None,
    };
    // One worker: a current-thread runtime. The main task, the sockets and every task share
    // one thread, so a wake-up is a queue push rather than a cross-thread unpark (several
    // nodes on few cores spend less CPU per request; measured in docs/bench-vs-tomcat.md).
    if let Some(n) = workers {
        anyhow::ensure!(n > 0, "--worker-threads must be at least 1");
    }
    let mut builder = if workers == Some(1) && std::env::var_os("SHOAL_MULTI_THREAD").is_none() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = workers {
            b.worker_threads(n);
        }
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        match cli.cmd {
            Cmd::Node(a) => node::run(a).await,
            Cmd::Demo(a) => demo::run(a).await,
            Cmd::BenchChannel(a) => bench::run(a).await,
            Cmd::Balancer(a) => balancer::run(a).await,
            Cmd::Ctl(c) => shoal_ctl::run(c).await,
            // Blocking (cargo, compilation): off the async workers.
            Cmd::Plugin(p) => tokio::task::spawn_blocking(move || shoal_plugin_dev::run(p)).await?,
            Cmd::Config(c) => import::run(c),
        }
    })
}
