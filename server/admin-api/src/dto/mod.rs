//! The types the API speaks (serde + utoipa `ToSchema`). They are the boundary between the
//! HTTP layer and whatever backend implements [`crate::AdminBackend`]; the node's crates map
//! their own types onto these, so the wire format does not move when their internals do.

mod channel;
mod cluster;
mod deployments;
mod plugins;
mod sessions;
mod time;

pub use channel::*;
pub use cluster::*;
pub use deployments::*;
pub use plugins::*;
pub use sessions::*;
pub use time::{now_ms, rfc3339};
