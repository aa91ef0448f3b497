//! The rules every [`crate::AdminBackend`] applies the same way, in one home: the node's
//! backend (shoal-node) and the in-memory twin (`testing` feature) both call these, and the
//! conformance suite (`testing::suite`) checks that they do.
//!
//! - `sessions.rs`: the session list's filter, order (most recently used first) and paging.
//! - `events.rs`: [`EventLog`], the numbered event ring behind `/events` and `/events/recent`.
//! - `artifacts.rs`: which deployment artifacts are accepted (name, non-empty body).
//! - `order.rs`: a requested order must name every current item exactly once.
//! - `probes.rs`: health and readiness from a backend's checks (and its drain).
//!
//! Data flow: a backend's own data (sessions, events, names) → these functions → the DTOs
//! the routes return. Nothing here holds a backend's state except [`EventLog`].
mod artifacts;
mod events;
mod order;
mod probes;
mod sessions;

pub use artifacts::{check_artifact, check_artifact_name, MAX_ARTIFACT_NAME};
pub use events::{EventLog, EVENTS_KEPT};
pub use order::check_same_names;
pub use probes::{health, readiness};
pub use sessions::{id_matches, page_sessions, with_idle, DEFAULT_PAGE};
