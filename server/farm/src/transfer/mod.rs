//! Moving an artifact's bytes from a holder to a receiver: the chunk arithmetic, the
//! receiver's in-order cursor and the sender's window. Pure state; the core turns it into
//! messages and storage actions.
mod incoming;
mod outgoing;
mod plan;

pub(crate) use incoming::{Incoming, IncomingState};
pub(crate) use outgoing::Outgoing;
pub use plan::{chunk_count, chunk_len};
