//! Which manifests a node trusts: ed25519 public keys from the config, and whether an
//! unsigned manifest is acceptable at all.
use super::manifest::SignedManifest;
use ed25519_compact::{PublicKey, Signature};

#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    /// Refuse unsigned manifests (`require_signatures = true` in the config).
    pub require_signatures: bool,
    /// Public keys (32 bytes each) whose signatures are accepted.
    pub trusted_keys: Vec<[u8; 32]>,
}

impl TrustPolicy {
    /// Ok if the manifest may be staged and activated here; the error says why not, naming
    /// the artifact. A signature that is present is always checked, even when not required:
    /// a bad signature means tampering, not "unsigned".
    pub fn check(&self, sm: &SignedManifest) -> Result<(), String> {
        let m = &sm.manifest;
        let Some(sig) = &sm.signature else {
            return if self.require_signatures {
                Err(format!(
                    "{m}: unsigned, and this cluster requires signatures (sign it with a trusted key)"
                ))
            } else {
                Ok(())
            };
        };
        let sig = Signature::from_slice(sig).map_err(|_| {
            format!(
                "{m}: signature is {} bytes, an ed25519 signature is 64",
                sig.len()
            )
        })?;
        let msg = m.canonical_bytes();
        let trusted = self
            .trusted_keys
            .iter()
            .any(|k| PublicKey::new(*k).verify(&msg, &sig).is_ok());
        if trusted {
            Ok(())
        } else {
            Err(format!(
                "{m}: signature does not verify against any of the {} trusted keys",
                self.trusted_keys.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{Digest, Kind, Manifest};
    use ed25519_compact::{KeyPair, Seed};

    fn manifest() -> Manifest {
        Manifest {
            name: "app".into(),
            version: "1.0".into(),
            kind: Kind::Application,
            sha256: Digest::of(b"content"),
            size: 7,
            metadata: [("context".to_string(), "/app".to_string())].into(),
        }
    }

    #[test]
    fn signatures_are_checked_against_trusted_keys() {
        let good = KeyPair::from_seed(Seed::new([1; 32]));
        let rogue = KeyPair::from_seed(Seed::new([2; 32]));
        let strict = TrustPolicy {
            require_signatures: true,
            trusted_keys: vec![*good.pk],
        };
        assert_eq!(
            strict.check(&SignedManifest::signed(manifest(), &good.sk)),
            Ok(())
        );
        let e = strict
            .check(&SignedManifest::signed(manifest(), &rogue.sk))
            .expect_err("rogue");
        assert!(e.contains("app@1.0") && e.contains("trusted"), "{e}");
        let e = strict
            .check(&SignedManifest::unsigned(manifest()))
            .expect_err("unsigned");
        assert!(e.contains("app@1.0") && e.contains("unsigned"), "{e}");
        // Tampering after signing: a changed size invalidates the signature.
        let mut sm = SignedManifest::signed(manifest(), &good.sk);
        sm.manifest.size = 8;
        assert!(strict.check(&sm).is_err());
        // Not required: unsigned passes, a bad signature still does not.
        let lax = TrustPolicy {
            require_signatures: false,
            ..strict
        };
        assert_eq!(lax.check(&SignedManifest::unsigned(manifest())), Ok(()));
        let mut sm = SignedManifest::signed(manifest(), &good.sk);
        sm.signature = Some(vec![0; 10]);
        assert!(lax.check(&sm).expect_err("short").contains("64"));
    }
}
