//! For tests and the dev server only (feature `testing`; never in a node or the release
//! binary):
//!
//! - `memory/`: [`MemoryBackend`], the in-memory twin of a node's admin backend — a fake
//!   3-node cluster that answers every [`crate::AdminBackend`] call and can be changed.
//! - [`suite`]: the conformance suite every [`crate::AdminBackend`] must pass; run against
//!   the twin here (`tests/conformance.rs`) and against the node's backend in shoal-node, so
//!   the two cannot drift apart.
//!
//! Data flow: tests → the twin or a real backend → [`suite`]'s checks; the twin applies the
//! same [`crate::rules`] as the node.
mod memory;
pub mod suite;

pub use memory::MemoryBackend;
