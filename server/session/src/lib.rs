//! shoal-session: sessions and their replication (Tomcat's DeltaManager and BackupManager).
//!
//! The managers are sans-io: they take `now` (ms since the epoch) and messages and return
//! [`Outgoing`] messages; the runtime ([`SessionService`], [`SessionRegistry`]) carries them
//! over a [`ClusterLink`].
//!
//! Module map:
//! - [`id`]: 128-bit CSPRNG session ids and the `<id>.<route>` cookie value.
//! - [`session`]: the session model, delta operations, limits; [`attrs`]: its attribute map.
//! - [`message`]: replication messages and their versioned wire form.
//! - [`store`]: versioned store shared by both managers (ordering, gaps, tombstones).
//! - [`manager`]: the [`SessionManager`] trait and [`ManagerConfig`].
//! - [`delta`]: DeltaManager (all-to-all, state transfer). [`backup`]: BackupManager
//!   (primary + N backups, proxies). [`placement`]: rendezvous choice of backups.
//! - [`link`]: the [`ClusterLink`] trait; [`memory`]: the in-process `MemoryCluster` twin.
//! - [`service`], [`registry`]: the tokio runtime around the managers.
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

mod async_queue;
pub mod attrs;
pub mod backup;
pub mod delta;
pub mod error;
pub mod id;
pub mod link;
pub mod manager;
pub mod memory;
pub mod message;
pub mod persistent;
pub mod placement;
pub mod registry;
pub mod service;
pub mod session;
pub mod stats;
pub mod store;

pub use attrs::AttrMap;
pub use error::SessionError;
pub use id::{parse_full_id, SessionId};
pub use link::{ClusterLink, Completion, Incoming, LinkEvent, SendResults};
pub use manager::{
    build_manager, Lookup, ManagerConfig, ManagerKind, Outgoing, Received, ReplicationMode,
    RequestEnd, SessionManager,
};
pub use memory::{MemoryCluster, MemoryLink};
pub use message::{SessionEnvelope, SessionMessage};
pub use registry::SessionRegistry;
pub use service::{now_ms, SessionService};
pub use session::{AttrValue, DeltaOp, Millis, Session, SessionLimits, Stamp};
pub use stats::ManagerStats;
