//! The manifest: what an artifact is (name, version, kind, metadata) and which bytes it is
//! (sha256 and size). The signature covers [`Manifest::canonical_bytes`].
use super::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What the node does with an artifact once it is active. The core only carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A component of a plugin world; metadata: contexts, stack position, policy.
    Plugin,
    /// A context (shoal's WAR); metadata: context path, session manager, replication.
    Application,
    /// An opaque file made available to plugins and applications by name.
    File,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The deployment's name; one current version per name in the cluster.
    pub name: String,
    /// Free-form version label shown to people; ordering is by generation, not by this.
    pub version: String,
    pub kind: Kind,
    pub sha256: Digest,
    pub size: u64,
    /// Kind-specific settings; a BTreeMap so the canonical encoding is deterministic.
    pub metadata: BTreeMap<String, String>,
}

/// Prefix of the signed bytes, so a signature over a manifest is never valid for anything else.
const SIGNING_DOMAIN: &[u8] = b"shoal-farm manifest v1\0";

impl Manifest {
    /// The bytes an ed25519 signature covers: a domain prefix, then the manifest in bincode
    /// standard encoding (field order as declared, metadata sorted by key).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = SIGNING_DOMAIN.to_vec();
        // Encoding plain strings, integers and a BTreeMap into a Vec cannot fail.
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .unwrap_or_else(|e| unreachable!("manifest encoding: {e}"));
        out.extend_from_slice(&body);
        out
    }
}

impl fmt::Display for Manifest {
    /// `name@version (sha256:abcdef012345, 1234 bytes)`: how errors name an artifact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} ({:?}, {} bytes)",
            self.name, self.version, self.sha256, self.size
        )
    }
}

/// A manifest with its optional detached ed25519 signature (64 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    pub manifest: Manifest,
    pub signature: Option<Vec<u8>>,
}

impl SignedManifest {
    pub fn unsigned(manifest: Manifest) -> Self {
        SignedManifest {
            manifest,
            signature: None,
        }
    }
    /// Signs with an ed25519 secret key (64 bytes, as ed25519-compact stores it).
    pub fn signed(manifest: Manifest, secret_key: &ed25519_compact::SecretKey) -> Self {
        let sig = secret_key.sign(manifest.canonical_bytes(), None);
        SignedManifest {
            manifest,
            signature: Some(sig.to_vec()),
        }
    }
}
