//! `shoal ctl drain`: asks a node to drain (`POST /api/v1/cluster/drain`, the same sequence
//! as SIGTERM) and follows it (`GET /api/v1/cluster/drain`) until the node's admin API stops
//! answering, which it does once the node has closed its HTTP listener and is leaving the
//! cluster.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::client::{Client, Polled};
use shoal_admin::dto::{DrainPhase, DrainStatus};

const PATH: &str = "/api/v1/cluster/drain";
/// Pause between two polls of the drain status.
const POLL: Duration = Duration::from_millis(200);
/// Consecutive failed polls that mean "gone" (one may be a keep-alive connection the node
/// closed as it shut its listener).
const GONE_AFTER: u32 = 2;

/// Drains the node at `client`'s URL and waits up to `timeout` for it to go away.
pub async fn run(client: &Client, json: bool, timeout: Duration) -> anyhow::Result<()> {
    let current: DrainStatus = client.get(PATH, &[]).await?;
    let started = if current.draining {
        say(
            json,
            &current,
            &format!(
                "{} is already draining (since {}, trigger {}); following it",
                current.node,
                current.since.as_deref().unwrap_or("?"),
                current.trigger.as_deref().unwrap_or("?")
            ),
        );
        current
    } else {
        let s: DrainStatus = client.call(reqwest::Method::POST, PATH).await?;
        say(json, &s, &format!("{} is draining; it will:", s.node));
        if !json {
            for (i, step) in s.steps.iter().enumerate() {
                println!("  {}. {step}", i + 1);
            }
        }
        s
    };
    follow(client, json, started, timeout).await
}

async fn follow(
    client: &Client,
    json: bool,
    mut last: DrainStatus,
    timeout: Duration,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let mut failures = 0;
    let mut shown_phase = None;
    loop {
        if shown_phase != Some(last.phase) {
            shown_phase = Some(last.phase);
            say(
                json,
                &last,
                &format!("  {}: {}", phase(last.phase), last.detail),
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "{} is still draining after {} s (phase {}: {}); the drain goes on: check the node's log, or wait with a longer --timeout-secs",
                last.node,
                timeout.as_secs(),
                phase(last.phase),
                last.detail
            );
        }
        tokio::time::sleep(POLL).await;
        match client.poll::<DrainStatus>(PATH).await? {
            Polled::Answer(s) => {
                failures = 0;
                last = s;
            }
            Polled::Unreachable(why) => {
                tracing::debug!("drain poll got no answer: {why}");
                failures += 1;
                if failures >= GONE_AFTER {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"node": last.node, "gone": true,
                                "after_ms": t0.elapsed().as_millis() as u64})
                        );
                    } else {
                        println!(
                            "{} drained: its admin API stopped answering after {:.1} s; it has closed its HTTP listener and leaves the cluster, its sessions continue on the other nodes",
                            last.node,
                            t0.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(());
                }
            }
        }
    }
}

fn say(json: bool, status: &DrainStatus, text: &str) {
    if json {
        println!("{}", serde_json::to_string(status).unwrap_or_default());
    } else {
        println!("{text}");
    }
}

fn phase(p: DrainPhase) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
