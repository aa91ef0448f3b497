//! Artifact signing for `shoal ctl`: `keygen` writes an ed25519 key pair, `deploy --sign-key`
//! signs the manifest exactly as a node verifies it (`shoal_farm::Manifest::canonical_bytes`,
//! checked by `shoal_farm::TrustPolicy`).
//!
//! Files written by `keygen <dir>`:
//! - `farm-signing.key`: the 32-byte ed25519 seed as 64 hex digits (mode 0600 on Unix); keep it
//!   off the nodes;
//! - `farm-signing.pub`: the public key as 64 hex digits, the form `[farm] trusted_keys` takes.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use ed25519_compact::{KeyPair, Seed};
use sha2::{Digest as _, Sha256};
use shoal_farm::{Digest, Manifest};

pub const SECRET_FILE: &str = "farm-signing.key";
pub const PUBLIC_FILE: &str = "farm-signing.pub";

/// Writes a fresh key pair into `dir` (created if missing); refuses to overwrite a key.
/// Returns the paths of the secret and public key files.
pub fn keygen(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use rand::RngCore as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (secret, public) = (dir.join(SECRET_FILE), dir.join(PUBLIC_FILE));
    for f in [&secret, &public] {
        if f.exists() {
            bail!(
                "{} exists already; remove it or choose another directory (a key is never overwritten)",
                f.display()
            );
        }
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = KeyPair::from_seed(Seed::new(seed));
    write_private(&secret, &format!("{}\n", hex::encode(seed)))?;
    std::fs::write(&public, format!("{}\n", hex::encode(*pair.pk)))
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok((secret, public))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a secret key file written by [`keygen`] (64 hex digits of the seed).
pub fn read_key(path: &Path) -> anyhow::Result<KeyPair> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    let bytes = hex::decode(text.trim()).map_err(|e| {
        anyhow!(
            "{}: not hex ({e}); give a key file written by `shoal ctl keygen`",
            path.display()
        )
    })?;
    let seed: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow!(
            "{}: {} bytes, an ed25519 seed is 32 (64 hex digits, as `shoal ctl keygen` writes it)",
            path.display(),
            b.len()
        )
    })?;
    Ok(KeyPair::from_seed(Seed::new(seed)))
}

/// sha256 and size of a file, read in 64 KiB pieces (never whole in memory).
pub fn digest_file(path: &Path) -> anyhow::Result<(Digest, u64)> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (mut hasher, mut buf, mut size) = (Sha256::new(), vec![0u8; 64 * 1024], 0u64);
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Digest(hasher.finalize().into()), size))
}

/// The ed25519 signature (hex, 128 digits) a node verifies for this manifest.
pub fn sign(manifest: &Manifest, key: &KeyPair) -> String {
    hex::encode(*key.sk.sign(manifest.canonical_bytes(), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_farm::{Kind, SignedManifest, TrustPolicy};

    #[test]
    fn a_generated_key_signs_what_a_node_verifies() {
        let dir = tempfile::tempdir().expect("tmp");
        let (secret, public) = keygen(dir.path()).expect("keygen");
        assert!(keygen(dir.path()).is_err(), "a key is never overwritten");
        let file = dir.path().join("a.bin");
        std::fs::write(&file, vec![7u8; 200_000]).expect("write");
        let (sha256, size) = digest_file(&file).expect("digest");
        assert_eq!(sha256, Digest::of(&vec![7u8; 200_000]));
        let manifest = Manifest {
            name: "a.bin".into(),
            version: "1".into(),
            kind: Kind::File,
            sha256,
            size,
            metadata: [("k".to_string(), "v".to_string())].into(),
        };
        let sig = sign(&manifest, &read_key(&secret).expect("key"));
        // The node's side: the public key as `[farm] trusted_keys` holds it.
        let pk_hex = std::fs::read_to_string(&public).expect("pub");
        let pk: [u8; 32] = hex::decode(pk_hex.trim())
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let policy = TrustPolicy {
            require_signatures: true,
            trusted_keys: vec![pk],
        };
        let signed = SignedManifest {
            manifest: manifest.clone(),
            signature: Some(hex::decode(&sig).expect("hex")),
        };
        assert_eq!(policy.check(&signed), Ok(()));
        // Any change to what is signed breaks it.
        let mut tampered = signed.clone();
        tampered.manifest.version = "2".into();
        assert!(policy.check(&tampered).is_err());
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "abc").expect("write");
        assert!(read_key(&bad).is_err());
    }
}
