//! `shoal demo`: three `shoal node` child processes on 127.0.0.1 with static membership and a
//! fresh random cluster secret; Ctrl-C (or SIGTERM) stops them. Later issues add HTTP and the
//! balancer to it.
use anyhow::{Context, Result};
use std::time::Duration;
use tokio::process::{Child, Command};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Receiver port of node1; node2 and node3 take the next ones (Tomcat's default: 4000).
    #[arg(long, default_value_t = 4000)]
    pub base_port: u16,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
}

pub async fn run(a: DemoArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot locate the shoal executable")?;
    let secret = format!("{:032x}", rand::random::<u128>());
    let ports: Vec<u16> = (0..a.nodes).map(|i| a.base_port + i).collect();
    let mut children: Vec<Child> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let mut cmd = Command::new(&exe);
        cmd.arg("node").args([
            "--name",
            &format!("node{}", i + 1),
            "--port",
            &port.to_string(),
        ]);
        for p in &ports {
            cmd.args(["--member", &format!("127.0.0.1:{p}")]);
        }
        cmd.env("SHOAL_CLUSTER_SECRET", &secret)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start node{}", i + 1))?;
        if let Some(err) = child.stderr.take() {
            tokio::spawn(prefix_lines(format!("[node{}]", i + 1), err));
        }
        children.push(child);
    }
    tracing::info!(
        "demo: {} nodes on 127.0.0.1 ports {:?}; Ctrl-C stops them",
        a.nodes,
        ports
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    tracing::info!("demo: stopping the nodes");
    for c in &mut children {
        // A terminal's Ctrl-C reached the children too; give them a moment to leave cleanly.
        if tokio::time::timeout(Duration::from_secs(3), c.wait())
            .await
            .is_err()
        {
            let _ = c.kill().await;
        }
    }
    Ok(())
}

/// Copies a child's log lines to our stderr, prefixed with its name (three nodes, one terminal).
async fn prefix_lines(prefix: String, err: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(err).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        eprintln!("{prefix} {l}");
    }
}
