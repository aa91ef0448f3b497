//! The `shoal` binary: thin CLI over the library crates.
//!
//! - `shoal node`: run one node (config file + per-node flags).
//! - `shoal demo`: a local 3-node cluster on 127.0.0.1 (child processes), Ctrl-C stops it.
//! - `shoal balancer`: the sticky reverse proxy (static backends or `--join` the cluster).
//! - `shoal ctl`: the admin API from a terminal.
//! - `shoal plugin`: write, build and try a Wasm plugin (new, build, test).
//! - `shoal bench-channel`: channel throughput / latency / failure-detection figures.
mod balancer;
mod bench;
mod bench_detect;
mod config;
mod demo;
mod logfmt;
mod node;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "shoal",
    version,
    about = "A cluster server for web sessions (Tomcat clustering, rebuilt)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
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
}

/// With the `mimalloc` feature: mimalloc instead of glibc malloc. The request path allocates
/// many small short-lived buffers (headers, frames, deltas) across threads, where glibc's
/// malloc/free took ~17% of a node's CPU; mimalloc saves ~10% CPU per replicated request but
/// keeps ~4 MiB more resident (more with arena eager commit, which `.cargo/config.toml`
/// turns off). Off by default: the 40 MiB budget for 10,000 sessions comes first.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logfmt::init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Cmd::Node(node::NodeArgs {
        worker_threads: Some(n),
        ..
    }) = &cli.cmd
    {
        anyhow::ensure!(*n > 0, "--worker-threads must be at least 1");
        builder.worker_threads(*n);
    }
    let rt = builder.enable_all().build()?;
    let r = rt.block_on(async {
        match cli.cmd {
            Cmd::Node(a) => node::run(a).await,
            Cmd::Demo(a) => demo::run(a).await,
            Cmd::BenchChannel(a) => bench::run(a).await,
            Cmd::Balancer(a) => balancer::run(a).await,
            Cmd::Ctl(c) => shoal_ctl::run(c).await,
            // Blocking (cargo, compilation): off the async workers.
            Cmd::Plugin(p) => tokio::task::spawn_blocking(move || shoal_plugin_dev::run(p)).await?,
        }
    });
    if let Err(e) = &r {
        tracing::error!("{e:#}");
    }
    r
}
