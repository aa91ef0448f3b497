//! What members send each other, and its versioned byte form.
mod codec;
mod message;
#[cfg(test)]
mod raw_bytes;

pub use codec::{decode, encode, WireError, WIRE_VERSION};
pub use message::{Change, Message};
