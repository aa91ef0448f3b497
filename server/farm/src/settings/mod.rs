//! `[farm]` in the node's config file: where the farm deployer keeps its content and
//! catalog, who may sign artifacts, and the transfer and upload limits; and the
//! [`FarmConfig`] of the core they give. Here, not in the node, so that the node's config
//! (shoal-config) reads `[farm]` without linking the node's runtime.
//! - `faults.rs`: `[farm.faults]`, fault injection for the multi-process fault tests (off).
mod faults;

pub use faults::{FarmFaults, HoldAt};

use crate::{FarmConfig, TrustPolicy};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FarmSettings {
    /// Content-addressed artifacts, staging files, the catalog and `files/<name>`; relative
    /// paths are relative to the working directory (like `data/sessions.db`). Each node
    /// needs its own.
    pub dir: PathBuf,
    /// Refuse unsigned artifacts (and always refuse badly signed ones).
    pub require_signatures: bool,
    /// ed25519 public keys (64 hex digits each) whose signatures are trusted.
    pub trusted_keys: Vec<String>,
    /// A rollout starts only on a node that sees this many members (itself included); set
    /// it to a majority of the cluster.
    pub min_members: usize,
    /// Bytes per chunk on the channel (1 byte ..= 1 MiB).
    pub chunk_bytes: u64,
    /// Chunks in flight per receiver (flow control: keeps session replication moving).
    pub window: u64,
    /// Pacing: MiB per second sent to each receiver (a token bucket of 4 chunks or 10 ms at
    /// the rate, whichever is more), so a deploy
    /// cannot take the link or the CPUs that session replication needs; 0 = unpaced.
    /// Tomcat's FarmWarDeployer has no such setting (it sends as fast as it can write).
    pub transfer_rate_mib_s: u64,
    /// Largest artifact accepted by `PUT /api/v1/deployments/{name}` (413 above).
    pub max_upload_bytes: u64,
    /// A rollout whose members have not all staged by then is aborted everywhere.
    pub stage_deadline_secs: u64,
    /// How long a starting node waits to converge with the cluster's deployments before it
    /// reports ready anyway (logged; the readiness check stays false until it converges).
    pub ready_wait_secs: u64,
    /// A directory this node watches (Tomcat's watchDir): files dropped there are deployed to
    /// the cluster, removed ones undeployed (see `watch_dir.rs` for the settle rule). Set it on
    /// one node only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_dir: Option<PathBuf>,
    /// Fault injection for tests only (`[farm.faults]`, see `faults.rs`); off by default.
    #[serde(skip_serializing_if = "FarmFaults::is_off")]
    pub faults: FarmFaults,
    /// Most files the static-file bundle of one application may hold (see `bundle.rs`).
    pub static_max_files: u64,
    /// Most bytes the files of one bundle may unpack to.
    pub static_max_bytes: u64,
}

impl Default for FarmSettings {
    fn default() -> Self {
        let core = FarmConfig::default();
        FarmSettings {
            dir: PathBuf::from(NODE_DIR),
            require_signatures: false,
            trusted_keys: Vec::new(),
            min_members: core.min_members,
            chunk_bytes: core.chunk_size,
            window: core.window,
            transfer_rate_mib_s: DEFAULT_TRANSFER_RATE_MIB_S,
            max_upload_bytes: 256 << 20,
            stage_deadline_secs: core.stage_deadline.as_secs(),
            ready_wait_secs: 60,
            watch_dir: None,
            faults: FarmFaults::default(),
            static_max_files: 10_000,
            static_max_bytes: 256 << 20,
        }
    }
}

/// The default pacing: a 10 MiB artifact reaches 3 nodes in well under 1 s on loopback
/// (about 0.3 s of transfer), while a 50 MiB one takes about 1.6 s instead of a CPU-saturating
/// burst that multiplies the latency of replicated requests.
pub const DEFAULT_TRANSFER_RATE_MIB_S: u64 = 32;

/// The default `[farm] dir`: one directory per node name, so that nodes started from one
/// working directory (`shoal demo`, a local cluster) never share one.
pub const NODE_DIR: &str = "data/farm/{node}";

impl FarmSettings {
    /// `dir` with `{node}` replaced by this node's member name (characters other than
    /// letters, digits, `.`, `-` and `_` become `_`), so one config file serves every node.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        let safe: String = node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // `.`, `..` or nothing would name another directory.
        let safe = if safe.chars().all(|c| c == '.') {
            format!("_{safe}")
        } else {
            safe
        };
        PathBuf::from(self.dir.to_string_lossy().replace("{node}", &safe))
    }

    /// The core's configuration; errors name the `[farm]` key.
    pub fn core_config(&self, incarnation: u64) -> Result<FarmConfig, String> {
        let mut keys = Vec::new();
        for (i, k) in self.trusted_keys.iter().enumerate() {
            let bytes = hex::decode(k.trim()).map_err(|e| {
                format!("[farm] trusted_keys[{i}]: not hex ({e}); give the 64 hex digits of an ed25519 public key")
            })?;
            let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                format!(
                    "[farm] trusted_keys[{i}]: {} bytes, an ed25519 public key is 32 (64 hex digits)",
                    b.len()
                )
            })?;
            keys.push(key);
        }
        if self.require_signatures && keys.is_empty() {
            return Err(
                "[farm] require_signatures = true needs at least one key in trusted_keys".into(),
            );
        }
        if self.min_members == 0 {
            return Err("[farm] min_members must be at least 1".into());
        }
        if self.static_max_files == 0 || self.static_max_bytes == 0 {
            return Err(
                "[farm] static_max_files and static_max_bytes must be greater than 0".into(),
            );
        }
        if self.max_upload_bytes == 0 {
            return Err("[farm] max_upload_bytes must be greater than 0".into());
        }
        let stage_deadline = Duration::from_secs(self.stage_deadline_secs.max(1));
        let transfer_rate = match self.transfer_rate_mib_s {
            0 => None,
            mib if mib > 1 << 20 => {
                return Err(format!(
                    "[farm] transfer_rate_mib_s = {mib} is more than 1 TiB/s; use 0 for unpaced"
                ))
            }
            mib => Some(mib << 20),
        };
        let cfg = FarmConfig {
            incarnation,
            chunk_size: self.chunk_bytes,
            window: self.window,
            transfer_rate,
            // Four chunks, or 10 ms at the rate if that is more: small chunks are released
            // in batches (the driver wakes at most every millisecond), not one per wake-up.
            transfer_burst: self
                .chunk_bytes
                .saturating_mul(4)
                .max(transfer_rate.unwrap_or(0) / 100),
            stage_deadline,
            reservation_ttl: stage_deadline + stage_deadline / 2,
            min_members: self.min_members,
            // The incarnation is the start time in ms: the origin of activation instants.
            clock_origin_ms: incarnation,
            trust: TrustPolicy {
                require_signatures: self.require_signatures,
                trusted_keys: keys,
            },
            ..FarmConfig::default()
        };
        cfg.validate().map_err(|e| format!("[farm] {e}"))?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_dir_is_one_per_node_name() {
        let s = FarmSettings::default();
        assert_eq!(s.node_dir("node1"), PathBuf::from("data/farm/node1"));
        assert_ne!(s.node_dir("node1"), s.node_dir("node2"));
        assert_eq!(s.node_dir("../x y"), PathBuf::from("data/farm/.._x_y"));
        assert_eq!(s.node_dir(".."), PathBuf::from("data/farm/_.."));
        let fixed = FarmSettings {
            dir: PathBuf::from("/srv/farm"),
            ..FarmSettings::default()
        };
        assert_eq!(fixed.node_dir("node1"), PathBuf::from("/srv/farm"));
    }

    #[test]
    fn defaults_are_valid_and_bad_keys_are_named() {
        assert!(FarmSettings::default().core_config(1).is_ok());
        let s = FarmSettings {
            trusted_keys: vec!["zz".into()],
            ..FarmSettings::default()
        };
        let e = s.core_config(1).expect_err("bad hex");
        assert!(e.contains("trusted_keys[0]"), "{e}");
        let s = FarmSettings {
            require_signatures: true,
            ..FarmSettings::default()
        };
        assert!(s
            .core_config(1)
            .expect_err("no keys")
            .contains("trusted_keys"));
        let s = FarmSettings {
            chunk_bytes: 0,
            ..FarmSettings::default()
        };
        assert!(s.core_config(1).expect_err("chunk").contains("[farm]"));
        let paced = FarmSettings::default().core_config(1).expect("defaults");
        assert_eq!(paced.transfer_rate, Some(DEFAULT_TRANSFER_RATE_MIB_S << 20));
        let unpaced = FarmSettings {
            transfer_rate_mib_s: 0,
            ..FarmSettings::default()
        };
        assert_eq!(unpaced.core_config(1).expect("0").transfer_rate, None);
    }
}
