//! The drain sequence of a full node, run once its trigger was pulled (SIGTERM, Ctrl-C,
//! `quit` on the control stdin, or `POST /api/v1/cluster/drain`, i.e. `shoal ctl drain`).
//! The admin API reports its phase (`GET /api/v1/cluster/drain`) until it closes in step 3.
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
use super::{Drain, Phase};
use crate::roles::{balancers, DRAIN_NOTICE};
use shoal_cluster::SendOptions;
use shoal_net::Channel;
use std::future::Future;
use std::time::Duration;

/// Longest wait for in-flight requests and the channel flush before exiting anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(15);

/// Milestones of [`run`], for whoever reports them (the binary prints them as JSON events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Balancers told (`balancers` acknowledged); `trigger` says what asked.
    Draining {
        balancers: usize,
        trigger: &'static str,
    },
    /// The node has stopped.
    Drained,
}

/// Drains the node of `trigger` (already pulled) and `ch`, telling `report` each milestone;
/// `stop` stops the node (its HTTP listener, then the channel: `RunningNode::shutdown`).
pub async fn run(
    trigger: &Drain,
    ch: &Channel,
    grace: Duration,
    stop: impl Future<Output = ()>,
    mut report: impl FnMut(Progress),
) {
    let by = trigger
        .state()
        .map(|s| s.trigger.as_str())
        .unwrap_or("signal");
    trigger.set_phase(Phase::Notifying, "no new sessions; telling the balancers");
    let told = notify_balancers(ch).await;
    tracing::info!(
        balancers = told,
        trigger = by,
        "draining: no new sessions; finishing requests in flight"
    );
    report(Progress::Draining {
        balancers: told,
        trigger: by,
    });
    if !grace.is_zero() {
        trigger.set_phase(
            Phase::Grace,
            format!(
                "told {told} joined balancer(s); serving sticky requests for {} ms so static balancers see the drain",
                grace.as_millis()
            ),
        );
        tokio::time::sleep(grace).await;
    }
    trigger.set_phase(
        Phase::Closing,
        "closing the HTTP listener; requests in flight finish, then the node leaves the cluster",
    );
    if tokio::time::timeout(SHUTDOWN_LIMIT, stop).await.is_err() {
        tracing::warn!("drain: requests or the channel flush still pending after {SHUTDOWN_LIMIT:?}; exiting anyway");
    }
    report(Progress::Drained);
}

/// Sends the drain notice to every balancer member; returns how many acknowledged it.
async fn notify_balancers(ch: &Channel) -> usize {
    let ids = balancers(ch.members());
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
