//! Vetoes deployments of artifacts over a size limit or not signed by a configured key.
//!
//! Config: `max-size` (bytes; absent = no limit) and `public-key` (64 hex digits of an
//! ed25519 public key; absent = signatures not required). The uploader signs the artifact's
//! lowercase hex SHA-256 digest (the ASCII text) and sends the signature as metadata
//! `signature` (128 hex digits). Counts `vetoed`, `deployed` and `undeployed` (metrics
//! `plugin.<name>.<counter>`), so tests see the after-calls on every node.
use ed25519_compact::{PublicKey, Signature};
use shoal_plugin_sdk::deploy::{Artifact, Decision, DeployHook};
use shoal_plugin_sdk::host;

struct DeployGuard;

impl DeployHook for DeployGuard {
    fn before_deploy(artifact: Artifact) -> Decision {
        match check(
            &artifact,
            host::config_get("max-size"),
            host::config_get("public-key"),
        ) {
            Ok(()) => Decision::Allow,
            Err(reason) => {
                host::counter_add("vetoed", 1);
                host::log_warn(&format!("vetoing {}: {reason}", artifact.name));
                Decision::Veto(reason)
            }
        }
    }

    fn after_deploy(artifact: Artifact) {
        host::counter_add("deployed", 1);
        host::log_info(&format!(
            "deployed {} ({} bytes, sha256 {})",
            artifact.name, artifact.size, artifact.digest
        ));
    }

    fn after_undeploy(name: String) {
        host::counter_add("undeployed", 1);
        host::log_info(&format!("undeployed {name}"));
    }
}

fn check(a: &Artifact, max_size: Option<String>, public_key: Option<String>) -> Result<(), String> {
    if let Some(max) = max_size {
        // A limit that does not parse must not silently allow everything.
        let max: u64 = max
            .trim()
            .parse()
            .map_err(|_| format!("config max-size `{max}` is not a number of bytes"))?;
        if a.size > max {
            return Err(format!(
                "{} is {} bytes, over the limit of {max} bytes",
                a.name, a.size
            ));
        }
    }
    let Some(key_hex) = public_key else {
        return Ok(());
    };
    let key = decode_hex(key_hex.trim())
        .and_then(|b| PublicKey::from_slice(&b).ok())
        .ok_or_else(|| "config public-key is not 64 hex digits of an ed25519 key".to_string())?;
    let sig_hex = a
        .meta("signature")
        .ok_or_else(|| format!("{} is not signed (no `signature` metadata)", a.name))?;
    let sig = decode_hex(sig_hex.trim())
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| "metadata signature is not 128 hex digits".to_string())?;
    key.verify(a.digest.as_bytes(), &sig).map_err(|_| {
        format!(
            "the signature of {} does not match its digest and the configured key",
            a.name
        )
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

shoal_plugin_sdk::export_deploy_hook!(DeployGuard);

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_compact::{KeyPair, Seed};

    fn artifact(size: u64, sig: Option<String>) -> Artifact {
        Artifact {
            name: "shop.war".into(),
            digest: "ab".repeat(32),
            size,
            metadata: sig
                .map(|s| vec![("signature".to_string(), s)])
                .unwrap_or_default(),
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn size_and_signature() {
        let kp = KeyPair::from_seed(Seed::new([7; 32]));
        let sig = hex(kp.sk.sign("ab".repeat(32).as_bytes(), None).as_ref());
        let pk = Some(hex(kp.pk.as_ref()));
        assert!(check(&artifact(10, None), Some("5".into()), None).is_err());
        assert!(check(
            &artifact(10, Some(sig.clone())),
            Some("50".into()),
            pk.clone()
        )
        .is_ok());
        assert!(check(&artifact(10, None), None, pk.clone()).is_err());
        let bad = hex(kp.sk.sign(b"other", None).as_ref());
        assert!(check(&artifact(10, Some(bad)), None, pk).is_err());
    }
}
