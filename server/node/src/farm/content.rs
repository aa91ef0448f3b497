//! The farm's directory on disk: content-addressed artifacts, staging files, the durable
//! catalog and the `files/<name>` links of `file` deployments.
//!
//! Layout under `[farm] dir`:
//! - `staging/<sha256>`: a transfer or an upload in progress (removed at start: a partial
//!   transfer resumes from the cluster); `staging/upload-*`: an upload being received.
//! - `content/<sha256>`: verified content (size and sha256 checked, fsynced, renamed in; an
//!   upload's sha256 is the one computed as it was received).
//! - `catalog.bin`: the slots last applied (written to a temporary file, fsynced, renamed).
//! - `files/<name>`: a symlink to the current content of a `file` deployment (swapped by rename).
//! - `static/<sha256>/`: the unpacked static files of an application bundle (`bundle.rs`).
use sha2::{Digest as _, Sha256};
use shoal_farm::{Catalog, Digest, Slot};
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct ContentStore {
    dir: PathBuf,
    /// Staging files being written by a transfer.
    open: HashMap<Digest, File>,
    /// Staging files of this node's uploads, hashed as they were received: their size and
    /// sha256 are known, `check` does not read them again (a 50 MiB sha256 saved per deploy).
    vouched: HashMap<Digest, u64>,
    /// `<dir>/lock`, locked for as long as this node runs: a second node given the same
    /// dir would clear this one's staging files and overwrite its catalog.
    _lock: File,
}

fn hex_of(d: &Digest) -> String {
    d.to_string()
}

fn parse_digest(name: &str) -> Option<Digest> {
    let bytes = hex::decode(name).ok()?;
    bytes.try_into().ok().map(Digest)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// sha256 and length of a file, read in bounded pieces.
pub fn hash_file(path: &Path) -> std::io::Result<(Digest, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((Digest(h.finalize().into()), len))
}

impl ContentStore {
    /// Opens (creating) `dir`; leftover staging files of a previous run are removed.
    pub fn open(dir: &Path) -> Result<ContentStore, String> {
        for sub in ["content", "staging", "files"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| {
                format!(
                    "[farm] dir: cannot create {} ({e}); set [farm] dir to a writable directory",
                    p.display()
                )
            })?;
        }
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(|e| {
            format!(
                "[farm] dir: cannot create {} ({e}); set [farm] dir to a writable directory",
                lock_path.display()
            )
        })?;
        if let Err(e) = lock.try_lock() {
            return Err(format!(
                "[farm] dir {} is in use by another running node ({e}): give each node its own \
                 dir (the default, data/farm/{{node}}, is one per node name)",
                dir.display()
            ));
        }
        if let Ok(entries) = fs::read_dir(dir.join("staging")) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(ContentStore {
            dir: dir.to_path_buf(),
            open: HashMap::new(),
            vouched: HashMap::new(),
            _lock: lock,
        })
    }

    fn staging(&self, d: &Digest) -> PathBuf {
        self.dir.join("staging").join(hex_of(d))
    }

    pub fn content_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("content").join(hex_of(d))
    }

    fn catalog_path(&self) -> PathBuf {
        self.dir.join("catalog.bin")
    }

    /// Digests with verified content on disk.
    pub fn verified(&self) -> Vec<Digest> {
        let Ok(entries) = fs::read_dir(self.dir.join("content")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| parse_digest(&e.file_name().to_string_lossy()))
            .collect()
    }

    /// The persisted catalog (empty on first start); a damaged file is an error naming it.
    pub fn load_catalog(&self) -> Result<Catalog, String> {
        let path = self.catalog_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let (slots, _): (Vec<Slot>, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).map_err(
                |e| {
                    format!(
                        "{} is damaged ({e}); move it away to start with an empty catalog (the node then converges from its peers)",
                        path.display()
                    )
                },
            )?;
        Ok(Catalog::from_slots(slots))
    }

    /// Writes the catalog durably (temporary file, fsync, rename, fsync of the directory).
    pub fn save_catalog(&self, catalog: &Catalog) -> Result<(), String> {
        let slots: Vec<&Slot> = catalog.slots().collect();
        let bytes = bincode::serde::encode_to_vec(&slots, bincode::config::standard())
            .map_err(|e| format!("cannot encode the farm catalog: {e}"))?;
        let path = self.catalog_path();
        let tmp = self.dir.join("catalog.bin.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir);
            Ok(())
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// `StageBegin`: create or truncate the staging file of `digest`.
    pub fn stage_begin(&mut self, digest: Digest) -> Result<(), String> {
        // A transfer writes this file now: it is no longer the upload that was hashed.
        self.vouched.remove(&digest);
        let path = self.staging(&digest);
        let f =
            File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        self.open.insert(digest, f);
        Ok(())
    }

    /// `WriteChunk`: bytes at `offset` of the staging file.
    pub fn write_chunk(&mut self, digest: Digest, offset: u64, bytes: &[u8]) -> Result<(), String> {
        self.vouched.remove(&digest);
        let path = self.staging(&digest);
        let f = match self.open.entry(digest) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                v.insert(f)
            }
        };
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.write_all(bytes))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// `Verify`, first half: the staging file (or verified content) of `digest` is exactly
    /// `size` bytes with that sha256. Returns where the bytes are. A mismatching staging
    /// file is removed.
    pub fn check(&mut self, digest: Digest, size: u64) -> Result<PathBuf, String> {
        self.open.remove(&digest);
        let done = self.content_path(&digest);
        if done.exists() {
            return Ok(done);
        }
        let path = self.staging(&digest);
        if self.vouched.remove(&digest) == Some(size)
            && fs::metadata(&path).is_ok_and(|m| m.len() == size)
        {
            return Ok(path);
        }
        let (found, len) =
            hash_file(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let err = if len != size {
            Some(format!("size {len} bytes, the manifest says {size}"))
        } else if found != digest {
            Some(format!(
                "sha256 {found} does not match the manifest's {digest}"
            ))
        } else {
            None
        };
        if let Some(e) = err {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(path)
    }

    /// `Verify`, second half: the checked staging file becomes content under its digest
    /// (fsync, rename, fsync of the directory).
    pub fn commit(&mut self, digest: Digest) -> Result<(), String> {
        let done = self.content_path(&digest);
        if done.exists() {
            return Ok(());
        }
        let path = self.staging(&digest);
        let run = || -> std::io::Result<()> {
            File::open(&path)?.sync_all()?;
            fs::rename(&path, &done)?;
            sync_dir(&self.dir.join("content"));
            Ok(())
        };
        run().map_err(|e| format!("cannot move {} to {}: {e}", path.display(), done.display()))
    }

    /// The staging file of `digest` is an upload received and hashed here (`upload.rs`):
    /// its next `check` only compares the size, unless a transfer writes the file first.
    pub fn vouch(&mut self, digest: Digest, size: u64) {
        if self.vouched.len() >= 64 {
            self.vouched.clear();
        }
        self.vouched.insert(digest, size);
    }

    /// Drops a staging file (a refused artifact).
    pub fn discard(&mut self, digest: Digest) {
        self.open.remove(&digest);
        let _ = fs::remove_file(self.staging(&digest));
    }

    /// `ReadChunk`: `len` bytes at `offset` of verified content.
    pub fn read_chunk(&self, digest: Digest, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        let path = self.content_path(&digest);
        let mut f =
            File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| format!("cannot seek {}: {e}", path.display()))?;
        let mut buf = Vec::with_capacity(len as usize);
        f.take(len)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if buf.len() as u64 != len {
            return Err(format!(
                "{} has {} bytes at offset {offset}, {len} were asked",
                path.display(),
                buf.len()
            ));
        }
        Ok(buf)
    }

    /// Deletes verified content no slot or rollout references any more.
    pub fn collect_garbage(&self, referenced: &BTreeSet<Digest>) {
        for d in self.verified() {
            if !referenced.contains(&d) {
                let _ = fs::remove_file(self.content_path(&d));
            }
        }
    }

    /// `files/<name>` now points at the content `digest` (atomic swap by rename).
    pub fn link_file(&self, name: &str, digest: &Digest) -> Result<PathBuf, String> {
        let files = self.dir.join("files");
        let link = files.join(name);
        let tmp = files.join(format!(".{name}.tmp"));
        let _ = fs::remove_file(&tmp);
        let target = fs::canonicalize(self.content_path(digest))
            .map_err(|e| format!("content of {name} missing: {e}"))?;
        let run = || -> std::io::Result<()> {
            #[cfg(unix)]
            std::os::unix::fs::symlink(&target, &tmp)?;
            #[cfg(not(unix))]
            fs::copy(&target, &tmp).map(|_| ())?;
            fs::rename(&tmp, &link)?;
            sync_dir(&files);
            Ok(())
        };
        run().map_err(|e| format!("cannot link {}: {e}", link.display()))?;
        Ok(link)
    }

    pub fn unlink_file(&self, name: &str) {
        let _ = fs::remove_file(self.dir.join("files").join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_serves_one_running_node_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ContentStore::open(dir.path()).expect("open");
        let second = ContentStore::open(dir.path()).err().unwrap_or_default();
        assert!(
            second.contains("in use by another running node"),
            "{second}"
        );
        drop(first);
        ContentStore::open(dir.path()).expect("free again once the first node is gone");
    }

    #[test]
    fn staged_content_is_verified_moved_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = ContentStore::open(dir.path()).expect("open");
        let data = b"hello farm".to_vec();
        let d = Digest::of(&data);
        s.stage_begin(d).expect("begin");
        s.write_chunk(d, 0, &data[..4]).expect("w1");
        s.write_chunk(d, 4, &data[4..]).expect("w2");
        s.check(d, data.len() as u64).expect("verifies");
        s.commit(d).expect("commit");
        assert_eq!(s.verified(), vec![d]);
        assert_eq!(s.read_chunk(d, 6, 4).expect("read"), b"farm");
        assert!(s.read_chunk(d, 6, 10).is_err());
        let link = s.link_file("greeting", &d).expect("link");
        assert_eq!(fs::read(link).expect("via link"), data);

        let bad = Digest::of(b"other");
        s.stage_begin(bad).expect("begin");
        s.write_chunk(bad, 0, b"tampered").expect("w");
        let e = s.check(bad, 8).expect_err("mismatch");
        assert!(e.contains("sha256"), "{e}");
        assert!(!dir.path().join("staging").join(bad.to_string()).exists());
        let e = s.check(Digest::of(b"x"), 1).expect_err("missing");
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn a_vouched_upload_is_checked_by_size_only_and_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = ContentStore::open(dir.path()).expect("open");
        // Bytes that do not hash to the digest: only a vouched upload passes unread.
        let d = Digest::of(b"uploaded");
        fs::write(dir.path().join("staging").join(d.to_string()), b"uploadeD").expect("write");
        s.vouch(d, 7);
        assert!(
            s.check(d, 8).is_err(),
            "a size other than the vouched one is hashed"
        );
        fs::write(dir.path().join("staging").join(d.to_string()), b"uploadeD").expect("write");
        s.vouch(d, 8);
        s.check(d, 8).expect("vouched: the size matches");
        assert!(s.check(d, 8).is_err(), "vouching holds for one check");
        // A transfer that writes the staging file afterwards is hashed again.
        s.vouch(d, 8);
        s.stage_begin(d).expect("begin");
        s.write_chunk(d, 0, b"uploadeD").expect("w");
        assert!(
            s.check(d, 8).is_err(),
            "a transfer's bytes are always hashed"
        );
    }

    #[test]
    fn catalog_survives_a_reopen_and_staging_is_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ContentStore::open(dir.path()).expect("open");
        assert_eq!(s.load_catalog().expect("empty"), Catalog::default());
        s.save_catalog(&Catalog::default()).expect("save");
        fs::write(dir.path().join("staging/leftover"), b"x").expect("write");
        drop(s); // the node stops
        let s = ContentStore::open(dir.path()).expect("reopen");
        assert!(!dir.path().join("staging/leftover").exists());
        assert_eq!(s.load_catalog().expect("load"), Catalog::default());
        fs::write(dir.path().join("catalog.bin"), b"\xff\xff\xff").expect("damage");
        let e = s.load_catalog().expect_err("damaged");
        assert!(e.contains("catalog.bin"), "{e}");
    }
}
