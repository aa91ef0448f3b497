//! Member roles as a node lives them: which members are session peers, and the
//! [`READY_NOTICE`] a node sends to balancer members once it can serve. The constants of the
//! protocol live in `shoal_cluster::roles` (the balancer reads them too) and are re-exported
//! here.
//!
//! Data flow: membership from the channel → [`serves_sessions`] (read by `link.rs`, so
//! balancers are never backups or state-transfer peers) and [`announce_ready`] (sends the
//! notice out over the channel); the drain sequence (`drain/sequence.rs`) sends
//! [`DRAIN_NOTICE`] the same way.
use shoal_cluster::{Member, MemberId, SendOptions};
use shoal_net::Channel;
use std::time::Duration;

pub use shoal_cluster::roles::{
    is_balancer, DRAINING_HEADER, DRAIN_NOTICE, META_HTTP, META_ROLE, READY_NOTICE, ROLE_BALANCER,
    ROLE_NODE,
};

/// False for members with meta `role = "balancer"` (`shoal balancer --join`): they are in the
/// channel to learn the nodes, never hold sessions, never are backups or state-transfer peers.
pub fn serves_sessions(m: &Member) -> bool {
    !is_balancer(m)
}

/// The ids of the balancer members among `members`.
pub fn balancers(members: Vec<Member>) -> Vec<MemberId> {
    members
        .into_iter()
        .filter(is_balancer)
        .map(|m| m.id)
        .collect()
}

/// Sends [`READY_NOTICE`] to the balancers once `registry` is ready, then to each balancer
/// that joins. Runs until the channel stops.
pub async fn announce_ready(ch: Channel, registry: std::sync::Arc<shoal_session::SessionRegistry>) {
    let mut events = ch.subscribe();
    while !registry.wait_ready(Duration::from_secs(60)).await {
        tracing::warn!("sessions still not ready after 60 s; balancers keep waiting for this node");
    }
    let now = balancers(ch.members());
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
