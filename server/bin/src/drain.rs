//! Graceful drain of a full node (SIGTERM, Ctrl-C, or `quit` on the control stdin).
//!
//! Order, chosen so that nothing acknowledged is lost:
//! 1. Tell the balancers that joined the cluster (members with `role = "balancer"`): they
//!    stop sending new sessions here (`mark_draining`); sticky requests still come.
//! 2. Stop the HTTP listener; requests in flight finish. In sync mode a response is only
//!    written once every member applied the change, so what a client saw acknowledged is
//!    already on the others. New connections are refused: a balancer resends them elsewhere
//!    (nothing was sent, so any method may be resent).
//! 3. Stop replicating, leave the cluster and flush the connections (`Channel::shutdown`):
//!    queued asynchronous replication goes out first, then peers drop this node with reason
//!    `Left` — DeltaManager peers already hold every session; BackupManager peers promote the
//!    backups of the sessions this node was primary for, as after a crash, but without
//!    waiting for failure detection.
use serde_json::json;
use shoal_cluster::SendOptions;
use shoal_net::Channel;
use std::time::Duration;

/// Member meta key: the node's HTTP address (`127.0.0.1:18081`), read by `shoal balancer --join`.
pub const META_HTTP: &str = "http";
/// Member meta key: `node` (serves sessions) or `balancer` (serves none).
pub const META_ROLE: &str = "role";
pub const ROLE_NODE: &str = "node";
pub const ROLE_BALANCER: &str = "balancer";
/// Payload a draining node sends to balancer members (not a session or control message).
pub const DRAIN_NOTICE: &[u8] = b"SHOAL-DRAIN\x01";

/// Longest wait for in-flight requests and the channel flush before exiting anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(15);

/// Drains and stops `node`. Prints `draining` and `drained` events with `json`.
pub async fn drain(node: shoal_node::RunningNode, json: bool) {
    let ch = node.channel.clone();
    let told = notify_balancers(&ch).await;
    tracing::info!(
        balancers = told,
        "draining: no new sessions; finishing requests in flight"
    );
    if json {
        println!("{}", json!({"event": "draining", "balancers": told}));
    }
    if tokio::time::timeout(SHUTDOWN_LIMIT, node.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain: requests or the channel flush still pending after {SHUTDOWN_LIMIT:?}; exiting anyway");
    }
    if json {
        println!("{}", json!({"event": "drained"}));
    }
}

/// Sends the drain notice to every balancer member; returns how many acknowledged it.
async fn notify_balancers(ch: &Channel) -> usize {
    let ids: Vec<_> = ch
        .members()
        .into_iter()
        .filter(|m| m.meta.get(META_ROLE).map(String::as_str) == Some(ROLE_BALANCER))
        .map(|m| m.id)
        .collect();
    if ids.is_empty() {
        return 0;
    }
    let send = ch.send(
        &ids,
        DRAIN_NOTICE.to_vec(),
        SendOptions(SendOptions::USE_ACK),
    );
    match tokio::time::timeout(Duration::from_secs(2), send).await {
        Ok(report) => report
            .results
            .iter()
            .filter(|(_, o)| !matches!(o, shoal_net::Outcome::Failed(_)))
            .count(),
        Err(_) => {
            tracing::warn!("drain: a balancer did not acknowledge the drain notice within 2 s");
            0
        }
    }
}
