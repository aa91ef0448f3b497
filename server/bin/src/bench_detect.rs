//! Detection bench: 3 `shoal node` processes; kill -9 one, time until both others report it
//! gone (their `member_disappeared` JSON line), restart it, repeat; the median is printed.
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

struct Proc {
    child: Child,
    events: mpsc::UnboundedReceiver<(Instant, Value)>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn spawn_node(name: &str, port: u16, ports: &[u16]) -> Result<Proc> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "node",
        "--json-events",
        "--name",
        name,
        "--port",
        &port.to_string(),
    ]);
    for p in ports {
        cmd.args(["--member", &format!("127.0.0.1:{p}")]);
    }
    cmd.env("SHOAL_CLUSTER_SECRET", "bench-detect-secret")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("spawn {name}"))?;
    let out = child.stdout.take().context("stdout")?;
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(out).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                let _ = tx.send((Instant::now(), v));
            }
        }
    });
    Ok(Proc { child, events })
}

/// Waits for an event `kind` about member `name`; returns when it was read.
async fn wait_for(p: &mut Proc, kind: &str, name: &str, within: Duration) -> Result<Instant> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, p.events.recv()).await {
            Ok(Some((t, v))) if v["event"] == kind && v["name"] == name => return Ok(t),
            Ok(Some(_)) => {}
            Ok(None) => bail!("node exited while waiting for {kind} {name}"),
            Err(_) => bail!("no {kind} for {name} within {within:?}"),
        }
    }
}

pub async fn detection(rounds: usize) -> Result<()> {
    let ports = [free_port()?, free_port()?, free_port()?];
    let mut n1 = spawn_node("node1", ports[0], &ports).await?;
    let mut n2 = spawn_node("node2", ports[1], &ports).await?;
    let mut n3 = spawn_node("node3", ports[2], &ports).await?;
    for (p, other) in [(&mut n1, "node3"), (&mut n2, "node3")] {
        wait_for(p, "member_added", other, Duration::from_secs(10)).await?;
    }
    let mut worst = Vec::new();
    let mut each = Vec::new();
    for _ in 0..rounds {
        n3.child.start_kill()?; // SIGKILL
        let t0 = Instant::now();
        let a = wait_for(
            &mut n1,
            "member_disappeared",
            "node3",
            Duration::from_secs(10),
        )
        .await?;
        let b = wait_for(
            &mut n2,
            "member_disappeared",
            "node3",
            Duration::from_secs(10),
        )
        .await?;
        let (da, db) = (a.duration_since(t0), b.duration_since(t0));
        each.extend([da, db]);
        worst.push(da.max(db));
        let _ = n3.child.wait().await;
        n3 = spawn_node("node3", ports[2], &ports).await?;
        wait_for(&mut n1, "member_added", "node3", Duration::from_secs(10)).await?;
        wait_for(&mut n2, "member_added", "node3", Duration::from_secs(10)).await?;
    }
    worst.sort();
    each.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!(
        "kill -9 detection (3 processes, {rounds} kills): median until both survivors report it {:.1} ms (max {:.1} ms); per observer median {:.1} ms",
        ms(worst[worst.len() / 2]),
        ms(worst[worst.len() - 1]),
        ms(each[each.len() / 2])
    );
    for mut p in [n1, n2, n3] {
        let _ = p.child.start_kill();
        let _ = p.child.wait().await;
    }
    Ok(())
}
