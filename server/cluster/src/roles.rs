//! The member-role protocol between shoal nodes and shoal balancers: what a member says
//! about itself in its meta, the two notices a node sends to balancer members over the
//! channel, and the HTTP header of a draining node.
//!
//! Data flow: a node (shoal-node) and a joining balancer (`shoal balancer --join`) write
//! [`META_ROLE`] / [`META_HTTP`] into their member meta; the node sends [`READY_NOTICE`] and
//! [`DRAIN_NOTICE`] to balancer members and marks its HTTP responses with
//! [`DRAINING_HEADER`] while it drains; balancers (shoal-balancer, the binary) read them and
//! mark their health probes with [`PROBE_HEADER`].
//! Here because this is the lowest crate both sides can depend on.

/// Member meta key: the node's HTTP address (`127.0.0.1:18081`), read by `shoal balancer --join`.
pub const META_HTTP: &str = "http";
/// Member meta key: [`ROLE_NODE`] (serves sessions) or [`ROLE_BALANCER`] (serves none).
pub const META_ROLE: &str = "role";
/// A shoal node: holds sessions, is a backup and a state-transfer peer.
pub const ROLE_NODE: &str = "node";
/// A balancer that joined the channel to learn the nodes: never holds sessions.
pub const ROLE_BALANCER: &str = "balancer";
/// Payload a draining node sends to balancer members (not a session or control message).
pub const DRAIN_NOTICE: &[u8] = b"SHOAL-DRAIN\x01";
/// Payload a node sends to balancer members once its sessions are ready (state transfer
/// done), and to every balancer that joins later: only then does it become a backend, so no
/// request waits on (or times out in) a joining node's state transfer.
pub const READY_NOTICE: &[u8] = b"SHOAL-READY\x01";
/// Response header of a draining node (value `1`); a balancer with a static backend list
/// reads it in its health probes and stops sending new sessions there.
pub const DRAINING_HEADER: &str = "x-shoal-draining";
/// Response header of a `503` a node answers *without running the request* (split-brain
/// protection: it sees no majority, `partition = "majority"`): a balancer may send the same
/// request to another node, whatever its method, since nothing was applied.
pub const REFUSED_HEADER: &str = "x-shoal-refused";
/// Request header of a balancer's health probe (value `health`): valve plugins see it and may
/// skip work meant for users (the SDK's `Request::is_health_probe`). Any client can send it,
/// so a valve must never skip a security check for it.
pub const PROBE_HEADER: &str = "x-shoal-probe";

/// Whether `m` announced itself as a balancer ([`META_ROLE`] = [`ROLE_BALANCER`]).
pub fn is_balancer(m: &crate::Member) -> bool {
    m.meta.get(META_ROLE).map(String::as_str) == Some(ROLE_BALANCER)
}
