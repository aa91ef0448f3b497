//! Per-key write locks for the file store, held across a compare and the rename that follows
//! it, in two layers picked by one stable hash of (app, id) into [`STRIPES`] stripes:
//!
//! 1. an async mutex per stripe in this process, so tasks of one process queue without
//!    tying up blocking threads;
//! 2. an exclusive `flock` on the stripe's lock file `<directory>/.locks/<stripe>.lock`,
//!    so that every *process* (and every other [`super::FileStore`] of this process) using
//!    the directory waits too: two nodes sharing one directory never interleave a compare
//!    and a rename of one id. `flock` locks belong to the open file, so two opens in one
//!    process exclude each other as two processes do; the kernel drops the lock when the
//!    file is closed, also when the process is killed (no stale lock after `kill -9`).
//!
//! A fixed set of lock files, never removed: removing a per-id lock file would race with a
//! process that has it open and is about to lock it. Two ids may share a stripe (they then
//! wait for each other); one id always maps to the same stripe, in every process and every
//! build (FNV-1a, not std's hasher, whose output may change between Rust versions).
//!
//! Local filesystems honour `flock` between processes; on NFS, Linux emulates it with
//! byte-range locks (NFSv4 or `lockd`), which a share must support for nodes to share it.
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::{Mutex, MutexGuard};

/// Lock stripes per directory (and lock files in `.locks`).
pub(crate) const STRIPES: usize = 256;
/// The directory of lock files under the store's directory.
pub(crate) const LOCK_DIR: &str = ".locks";

#[derive(Debug)]
pub(crate) struct KeyLocks {
    stripes: Vec<Mutex<()>>,
    dir: PathBuf,
}

/// The stripe of (app, id): FNV-1a over the app, a 0 byte and the id.
pub(crate) fn stripe(app: &str, id: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in app.bytes().chain([0]).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

impl KeyLocks {
    /// Locks for the store directory `store_dir`.
    pub(crate) fn new(store_dir: &Path) -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            dir: store_dir.join(LOCK_DIR),
        }
    }

    /// This process's lock of the stripe of (app, id). Take it before [`Self::lock_file`].
    pub(crate) async fn lock(&self, app: &str, id: &str) -> MutexGuard<'_, ()> {
        self.stripes[stripe(app, id)].lock().await
    }

    /// The path of the stripe's lock file.
    pub(crate) fn file_path(&self, app: &str, id: &str) -> PathBuf {
        self.dir.join(format!("{:02x}.lock", stripe(app, id)))
    }

    /// The cross-process lock of the stripe of (app, id), blocking until it is free: held
    /// until the returned file is dropped. Call from a blocking thread.
    pub(crate) fn lock_file(&self, app: &str, id: &str) -> Result<(File, PathBuf), io::Error> {
        let path = self.file_path(app, id);
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        };
        let f = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.dir)?;
                open()?
            }
            Err(e) => return Err(e),
        };
        f.lock()?;
        Ok((f, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_are_stable_and_spread() {
        // Pinned: another build or another process must pick the same lock file.
        assert_eq!(stripe("/app", "ABC"), stripe("/app", "ABC"));
        assert_ne!(stripe("/app", "ABC"), stripe("/app", "ABD"));
        let used: std::collections::HashSet<_> = (0..4096)
            .map(|i| stripe("/app", &format!("{i:X}")))
            .collect();
        assert_eq!(used.len(), STRIPES, "every stripe is used");
    }

    #[test]
    fn two_opens_of_one_stripe_exclude_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (KeyLocks::new(dir.path()), KeyLocks::new(dir.path()));
        let (held, path) = a.lock_file("/app", "X").expect("lock");
        assert!(path.starts_with(dir.path().join(LOCK_DIR)), "{path:?}");
        let other = OpenOptions::new().write(true).open(&path).expect("open");
        assert!(
            matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "a second open file of the stripe must wait"
        );
        drop(held);
        let (_again, _) = b
            .lock_file("/app", "X")
            .expect("free once the first is closed");
    }
}
