//! What is deployed: a content digest, a manifest describing the content, and the
//! signature rule that decides whether a manifest is trusted.
mod digest;
mod manifest;
mod signature;

pub use digest::Digest;
pub use manifest::{Kind, Manifest, SignedManifest};
pub use signature::TrustPolicy;
