//! Moving an artifact's bytes from a holder to a receiver: the chunk arithmetic, the
//! receiver's in-order cursor, the sender's window and its pacing per receiver. Pure state; the core turns it into
//! messages and storage actions.
mod incoming;
mod outgoing;
mod pace;
mod plan;

pub(crate) use incoming::{Incoming, IncomingState};
pub(crate) use outgoing::Outgoing;
pub(crate) use pace::Pacer;
pub use plan::{chunk_count, chunk_len};
