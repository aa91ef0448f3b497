//! Graceful drain of a full node: SIGTERM, Ctrl-C, `quit` on the control stdin, or
//! `POST /api/v1/cluster/drain` on the admin API (`shoal ctl drain`). All of them pull the
//! node's one drain trigger ([`shoal_node::admin::drain::Drain`]) and run this sequence; the
//! admin API reports its phase (`GET /api/v1/cluster/drain`) until it closes in step 3.
//!
//! Order, chosen so that nothing acknowledged is lost:
//! 1. From the trigger on, readiness answers 503 `draining` and every HTTP response carries
//!    `x-shoal-draining: 1`. Tell the balancers that joined the cluster (members with
//!    `role = "balancer"`): they stop sending new sessions here (`mark_draining`); sticky
//!    requests still come.
//! 2. Grace (`--drain-grace-ms`, 1 s): keep serving, so balancers with a static backend
//!    list see the mark in a health probe and stop sending new sessions too.
//! 3. Stop the HTTP listener; requests in flight finish. In sync mode a response is only
//!    written once every member applied the change, so what a client saw acknowledged is
//!    already on the others. New connections are refused: a balancer resends them elsewhere
//!    (nothing was sent, so any method may be resent).
//! 4. Stop replicating, leave the cluster and flush the connections (`Channel::shutdown`):
//!    queued asynchronous replication goes out first, then peers drop this node with reason
//!    `Left` — DeltaManager peers already hold every session; BackupManager peers promote the
//!    backups of the sessions this node was primary for, as after a crash, but without
//!    waiting for failure detection.
use serde_json::json;
use shoal_admin::dto::DrainPhase;
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
/// Payload a node sends to balancer members once its sessions are ready (state transfer
/// done), and to every balancer that joins later: only then does it become a backend, so no
/// request waits on (or times out in) a joining node's state transfer.
pub const READY_NOTICE: &[u8] = b"SHOAL-READY\x01";

fn is_balancer(m: &shoal_cluster::Member) -> bool {
    m.meta.get(META_ROLE).map(String::as_str) == Some(ROLE_BALANCER)
}

/// Sends [`READY_NOTICE`] to the balancers once `registry` is ready, then to each balancer
/// that joins. Runs until the channel stops.
pub async fn announce_ready(ch: Channel, registry: std::sync::Arc<shoal_session::SessionRegistry>) {
    let mut events = ch.subscribe();
    while !registry.wait_ready(Duration::from_secs(60)).await {
        tracing::warn!("sessions still not ready after 60 s; balancers keep waiting for this node");
    }
    let now: Vec<_> = ch
        .members()
        .into_iter()
        .filter(is_balancer)
        .map(|m| m.id)
        .collect();
    if !now.is_empty() {
        let _ = ch
            .send(
                &now,
                READY_NOTICE.to_vec(),
                SendOptions(SendOptions::USE_ACK),
            )
            .await;
    }
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(shoal_net::MembershipEvent::Added(m)) if is_balancer(&m) => {
                let _ = ch
                    .send(
                        &[m.id],
                        READY_NOTICE.to_vec(),
                        SendOptions(SendOptions::USE_ACK),
                    )
                    .await;
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// Longest wait for in-flight requests and the channel flush before exiting anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(15);

/// Drains and stops `node` (its drain trigger already pulled). Prints `draining` and
/// `drained` events with `json`.
pub async fn drain(node: shoal_node::RunningNode, json: bool, grace: Duration) {
    let ch = node.channel.clone();
    let trigger = node.drain.clone();
    let by = trigger
        .state()
        .map(|s| s.trigger.as_str())
        .unwrap_or("signal");
    trigger.set_phase(
        DrainPhase::Notifying,
        "no new sessions; telling the balancers",
    );
    let told = notify_balancers(&ch).await;
    tracing::info!(
        balancers = told,
        trigger = by,
        "draining: no new sessions; finishing requests in flight"
    );
    if json {
        println!(
            "{}",
            json!({"event": "draining", "balancers": told, "trigger": by})
        );
    }
    if !grace.is_zero() {
        trigger.set_phase(
            DrainPhase::Grace,
            format!(
                "told {told} joined balancer(s); serving sticky requests for {} ms so static balancers see the drain",
                grace.as_millis()
            ),
        );
        tokio::time::sleep(grace).await;
    }
    trigger.set_phase(
        DrainPhase::Closing,
        "closing the HTTP listener; requests in flight finish, then the node leaves the cluster",
    );
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
        .filter(is_balancer)
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
