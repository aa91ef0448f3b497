//! What members send each other, and its versioned byte form.
mod codec;
mod message;

pub use codec::{decode, encode, WireError, WIRE_VERSION};
pub use message::{Change, Message};
