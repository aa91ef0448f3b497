//! shoal-session: sessions and their replication (Tomcat's DeltaManager and BackupManager).
//!
//! The managers are sans-io: they take `now` (ms since the epoch) and messages and return
//! [`Outgoing`] messages; the runtime ([`SessionService`], [`SessionRegistry`]) carries them
//! over a [`ClusterLink`].
//!
//! # Module map
//!
//! Data flows in at the runtime and down to the sessions, and back out as messages:
//!
//! ```text
//! channel ──▶ runtime::link ──▶ runtime::registry ──▶ runtime::service ──▶ SessionManager
//!             (ClusterLink)     decode, route by      lock the manager,     delta/ or backup/
//!                               context, tick         feed it               (both on core.rs)
//!                                                                                  │ Outgoing
//! channel ◀── runtime::link ◀── sync: awaited by the request ◀─────────────────────┤
//!                           ◀── async: runtime::async_queue (ordered, bounded) ◀───┘
//! ```
//!
//! - `id.rs`: [`SessionId`], 128-bit CSPRNG ids, and the `<id>.<route>` cookie value.
//! - `attrs.rs`: [`AttrValue`] and [`AttrMap`], a session's attributes.
//! - `session.rs`: the [`Session`] model, [`DeltaOp`]s, [`SessionLimits`], [`Stamp`].
//! - `message.rs`: replication messages ([`SessionMessage`]) and their versioned wire form.
//! - `stats.rs`: [`ManagerStats`] and the per-message counters.
//! - `error.rs`: [`SessionError`], the crate's one error enum.
//! - `versioned.rs`: the in-memory versioned session map both managers hold (ordering,
//!   gaps, tombstones, conflicts). Not a persistent store.
//! - `read_gate.rs`: [`ReadGate`], read-your-writes in async mode: a request whose client
//!   saw a newer version ([`Seen`]) than this node holds waits for the replication, then
//!   fetches, then serves the newest surviving copy and counts the loss.
//!   `token.rs`: [`TokenKey`], the signed version token that carries [`Seen`].
//! - `placement.rs`: rendezvous choice of a session's backups (BackupManager).
//! - `manager.rs`: the [`SessionManager`] trait, what goes in and out of it, and
//!   [`ManagerConfig`]. It knows no manager.
//! - `core.rs` (crate-private): `Core`, the state and handlers every manager shares (expiry,
//!   FETCH, invalidation) and the trait methods that only forward to it.
//! - `delta/`: DeltaManager (all-to-all, state transfer in `transfer.rs`, `digest.rs` when
//!   two serving members meet). `backup/`: BackupManager (primary + N backups, proxies;
//!   incoming messages in `receive.rs`).
//! - `factory.rs`: [`build_manager`], the one place that knows every manager.
//! - `runtime/`: the tokio side: `link.rs` ([`ClusterLink`], what the runtime needs from the
//!   channel), `registry.rs` ([`SessionRegistry`], one per node), `service.rs`
//!   ([`SessionService`], one per context), `async_queue.rs` (bounded ordered async sends),
//!   `persistent.rs` ([`PersistentService`], a persistent context's core run against its
//!   store), `write_behind.rs` ([`WriteBehind`], the store behind a replicated context:
//!   bounded coalescing queue, CAS writer, lag, cold-start loads; its design note is there).
//! - `persistent/`: the sans-io core of the persistent manager (Tomcat's PersistentManager
//!   and PersistentValve): store operations out, their replies in; the store itself is
//!   `shoal-store`. Its design note (guarantees, store round trips per request) is in
//!   `persistent/mod.rs`. Imports only the crate-root types (session, id, attrs, error).
//! - `memory.rs` (feature `testing` only): `MemoryCluster`, the in-process [`ClusterLink`]
//!   twin for tests.
//!
//! Imports run one way: a module imports only from the layers below its own, so none
//! imports one that imports it back (checked with `grep -rn "use crate::\|super::" src`).
//! Within `delta/` and `backup/`, `mod.rs` and its files are one manager split by topic.
//!
//! ```text
//! 1  runtime::registry
//! 2  runtime::service       factory read_gate
//! 3  runtime::async_queue   delta/  backup/  memory
//!    runtime::write_behind
//! 4  runtime::link          core    placement
//! 5                         manager versioned
//! 6                         stats
//! 7                         message
//! 8                         session token
//! 9                         attrs   id  error
//! ```
//!
//! # Two managers, one write
//!
//! The managers are plain state machines: whoever holds them carries their messages (the
//! runtime over the cluster, a test or this example by hand).
//!
//! ```
//! use rand::SeedableRng;
//! use shoal_cluster::MemberId;
//! use shoal_session::{
//!     build_manager, AttrValue, DeltaOp, Lookup, ManagerConfig, Outgoing, RequestEnd,
//!     SessionManager,
//! };
//! use std::collections::VecDeque;
//!
//! type Node = (MemberId, Box<dyn SessionManager>);
//!
//! /// Delivers `out` (sent by `from`) and every message it causes, until none is left.
//! fn carry(nodes: &mut [Node], from: MemberId, out: Vec<Outgoing>) {
//!     let mut queue: VecDeque<_> = out.into_iter().map(|o| (from, o)).collect();
//!     while let Some((from, o)) = queue.pop_front() {
//!         for to in &o.to {
//!             let (_, node) = nodes.iter_mut().find(|(id, _)| id == to).expect("a member");
//!             let received = node.handle_payload(from, &o.payload, 1);
//!             assert!(received.ack.is_ok(), "{:?}", received.ack);
//!             queue.extend(received.out.into_iter().map(|o| (*to, o)));
//!         }
//!     }
//! }
//!
//! let (a, b) = (MemberId([1; 16]), MemberId([2; 16]));
//! let config = ManagerConfig::default(); // DeltaManager, synchronous replication
//! let mut nodes: Vec<Node> = [(a, "a"), (b, "b")]
//!     .into_iter()
//!     .map(|(id, route)| {
//!         let rng = rand::rngs::StdRng::seed_from_u64(u64::from(id.0[0]));
//!         (id, build_manager("app", id, route, config.clone(), rng))
//!     })
//!     .collect();
//!
//! // Both start seeing each other: each asks the other for its sessions (state transfer).
//! let started: Vec<_> = nodes.iter_mut().map(|(id, m)| (*id, m.start(&[a, b], 0))).collect();
//! for (from, out) in started {
//!     carry(&mut nodes, from, out);
//! }
//! assert!(nodes.iter().all(|(_, m)| m.is_ready()));
//!
//! // One request on A creates a session and writes an attribute...
//! let session = nodes[0].1.create(2);
//! let user = AttrValue::Json("\"ann\"".into());
//! let end = RequestEnd {
//!     id: Some(session.id.clone()),
//!     ops: vec![DeltaOp::Set("user".into(), user.clone())],
//!     accessed: true,
//!     replicate: true,
//!     ..RequestEnd::default()
//! };
//! let out = nodes[0].1.end_request(end, 3).expect("within the limits");
//! // ...whose replication, once carried, leaves the same session on B.
//! carry(&mut nodes, a, out);
//! let Lookup::Found(copy) = nodes[1].1.find(&session.id, 4) else {
//!     panic!("B holds the session");
//! };
//! assert_eq!(copy.attributes.get("user"), Some(&user));
//! assert_eq!(copy.version, 1);
//! ```
//!
//! # Ordering and conflicts
//!
//! Every change of a session makes version `v+1` and records its [`Stamp`] (writer node and
//! time, the time never below the previous stamp's + 1). A delta names the stamp it was
//! built on (`prev`). A replica at version `v`:
//! - applies a delta `v+1` whose `prev` is its own stamp;
//! - ignores versions `<= v` (duplicates, late messages): **a replica never goes back**;
//! - buffers versions `> v+1` until the gap fills (async mode may deliver out of order
//!   across senders); after `gap_timeout_ms` it fetches the whole session instead;
//! - otherwise sees a **conflict**: the same version written on two nodes (concurrent
//!   requests on one session on different nodes), counted in `ManagerStats::conflicts`.
//!
//! Conflict rule (deterministic, the same on every node): the write with the higher
//! `(version, stamp.ts, stamp.node)` wins. The replica keeps its state if it ranks higher,
//! otherwise fetches the winner's whole session from the sender; whole sessions (CREATED,
//! state transfer, BACKUP_PUT, FETCHED) replace a held one only if they rank higher. So
//! all replicas converge on the winner. A replica that did not apply a write answers the
//! synchronous ack with an error, so the losing request is not acknowledged (HTTP 503) and
//! an acknowledged write is on every live replica.
//!
//! Repair: in sync mode messages are never reordered, so a gap means a lost message: the
//! replica fetches the session at once and does not acknowledge; and after a write that was
//! not acknowledged by every replica, the session's next change is sent whole. A node that
//! served its state to a joiner forwards the changes it receives to it for a while, since
//! writers may not have seen the joiner yet. DeltaManager members that meet while both are
//! already serving (a partial mesh at start-up, a healed partition) exchange a DIGEST of
//! what they hold and removed: each fetches what it lacks and drops what the other logged
//! out, and sends its own sessions' next change whole (see `delta::digest`). (There is no
//! periodic anti-entropy: between two members that stay connected, a replica that missed
//! the *last* change of a session that is never written again keeps the older version
//! until a fetch or a failover brings it the newer one.)
//!
//! Removal (expiry, invalidation) at version `v` hides versions `<= v`; a newer write wins
//! over a concurrent removal. Only the node that served a session last (its primary)
//! expires it at the max inactive interval and tells the others; replicas drop a session
//! silently at twice the interval (Tomcat's rule), so they never expire one in use elsewhere.

#![warn(unreachable_pub)]

mod attrs;
mod backup;
mod core;
mod delta;
mod error;
mod factory;
mod id;
mod manager;
#[cfg(feature = "testing")]
mod memory;
mod message;
pub mod persistent;
mod placement;
pub mod quorum;
mod read_gate;
mod runtime;
mod session;
mod stats;
mod token;
mod versioned;

pub use attrs::{AttrMap, AttrValue};
pub use error::SessionError;
pub use factory::build_manager;
pub use id::{parse_full_id, SessionId};
pub use manager::{
    Lookup, ManagerConfig, ManagerKind, Outgoing, Received, ReplicationMode, RequestEnd,
    SessionManager, WriteBehindConfig, DEFAULT_STORE_PATH,
};
#[cfg(feature = "testing")]
pub use memory::{MemoryCluster, MemoryLink};
pub use message::{
    decode, encode, is_session_payload, Delta, Location, MessageKind, SessionEnvelope,
    SessionMessage,
};
pub use read_gate::{ReadGate, ReadStep};
pub use runtime::link::{ClusterLink, Completion, Incoming, LinkEvent, SendResults};
pub use runtime::persistent::PersistentService;
pub use runtime::registry::SessionRegistry;
pub use runtime::service::{now_ms, SessionService};
pub use runtime::write_behind::WriteBehind;
pub use session::{DeltaOp, Millis, Seen, Session, SessionLimits, Stamp};
pub use stats::{ManagerStats, StoreLatency, WriteBehindStats, RYW_BUCKETS_MS};
pub use token::TokenKey;
