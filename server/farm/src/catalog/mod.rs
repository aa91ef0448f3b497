//! The deployed set: per name, the current entry (what is live) and the previous one
//! (kept for rollback). Entries are totally ordered by (generation, deploy id); a node's
//! current entry for a name only ever moves up in that order, which is what makes every
//! node converge on the same current after partitions, restarts and lost messages.
mod entry;
mod slots;

pub use entry::{DeployId, Entry, Generation, Holder, Target};
pub use slots::{Catalog, Slot};
