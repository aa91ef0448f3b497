//! Sessions as files: `<directory>/app-<escaped app>/<id>.session`, one file per session in
//! the format of [`format`]. A save writes `<id>.session.tmp.<random>`, fsyncs it, renames it
//! over the old file and fsyncs the directory, so a reader sees the old or the new file,
//! never a mix, and a crash leaves at most a temporary file (removed by `check`).
//!
//! Compare-and-set holds the id's lock ([`locks`]: an async mutex of this process, then an
//! exclusive `flock` on one of 256 lock files under `<directory>/.locks`) while it reads the
//! stored version and renames, so several processes (two nodes in per-request mode) can
//! share one directory: no two of them interleave a compare and a rename of one id. Reads
//! take no lock (a rename is atomic: a reader sees the old or the new file).
//!
//! Ids pass [`crate::check_id`] (`[A-Za-z0-9_-]{1,128}`) and app names are escaped into one
//! path component, so no key can name a path outside the directory.
mod format;
mod locks;

use crate::error::StoreError;
use crate::record::{check_app, check_id, check_write, Cas, Expect, StoredSession};
use crate::store::Store;
use async_trait::async_trait;
use locks::KeyLocks;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use format::FORMAT as FILE_FORMAT;

const SUFFIX: &str = ".session";
const TMP: &str = ".tmp.";

/// A directory of session files.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    label: String,
    locks: KeyLocks,
}

impl FileStore {
    /// A store over `dir` (created by `check`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir: PathBuf = dir.into();
        let label = format!("file store {}", dir.display());
        Self {
            inner: Arc::new(Inner {
                locks: KeyLocks::new(&dir),
                dir,
                label,
            }),
        }
    }

    fn label(&self) -> &str {
        &self.inner.label
    }

    fn app_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        check_app(self.label(), app)?;
        Ok(self.inner.dir.join(app_component(app)))
    }

    fn path(&self, app: &str, id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.app_dir(app)?;
        check_id(self.label(), id)?;
        Ok(dir.join(format!("{id}{SUFFIX}")))
    }

    fn io(&self, op: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            store: self.label().to_owned(),
            op,
            path: path.display().to_string(),
            source,
        }
    }

    fn corrupt(&self, path: &Path, detail: String) -> StoreError {
        StoreError::Corrupt {
            store: self.label().to_owned(),
            location: path.display().to_string(),
            detail,
        }
    }

    /// Run blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FileStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| StoreError::Backend {
                store: self.label().to_owned(),
                op: "run file task",
                location: self.inner.dir.display().to_string(),
                detail: e.to_string(),
            })?
    }

    /// The cross-process lock of (app, id) (see [`locks`]), held until the file is dropped.
    fn lock_file(&self, app: &str, id: &str) -> Result<File, StoreError> {
        self.inner
            .locks
            .lock_file(app, id)
            .map(|(f, _)| f)
            .map_err(|e| self.io("lock", &self.inner.locks.file_path(app, id), e))
    }

    /// The metadata only (no data read), or `None` when there is no file.
    fn read_meta(&self, path: &Path) -> Result<Option<StoredSession>, StoreError> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("open", path, e)),
        };
        let mut prefix = [0u8; format::PREFIX_LEN];
        f.read_exact(&mut prefix)
            .map_err(|e| self.corrupt(path, format!("header unreadable: {e}")))?;
        let meta_len = format::decode_prefix(&prefix).map_err(|d| self.corrupt(path, d))?;
        let mut meta = vec![0u8; meta_len];
        f.read_exact(&mut meta)
            .map_err(|e| self.corrupt(path, format!("metadata unreadable: {e}")))?;
        format::decode_meta(&meta)
            .map(Some)
            .map_err(|d| self.corrupt(path, d))
    }

    fn read_all(&self, path: &Path) -> Result<Option<StoredSession>, StoreError> {
        match fs::read(path) {
            Ok(bytes) => format::decode(&bytes)
                .map(Some)
                .map_err(|d| self.corrupt(path, d)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read", path, e)),
        }
    }

    /// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync the directory.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(&self.inner.dir);
        fs::create_dir_all(dir).map_err(|e| self.io("create directory", dir, e))?;
        let tmp = PathBuf::from(format!(
            "{}{TMP}{:016x}",
            path.display(),
            rand::random::<u64>()
        ));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| self.io("create", &tmp, e))?;
            f.write_all(bytes).map_err(|e| self.io("write", &tmp, e))?;
            f.sync_all().map_err(|e| self.io("fsync", &tmp, e))?;
            fs::rename(&tmp, path).map_err(|e| self.io("rename into place", path, e))?;
            sync_dir(dir).map_err(|e| self.io("fsync directory", dir, e))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn delete(&self, path: &Path) -> Result<(), StoreError> {
        fs::remove_file(path).map_err(|e| self.io("remove", path, e))?;
        let dir = path.parent().unwrap_or(&self.inner.dir);
        sync_dir(dir).map_err(|e| self.io("fsync directory", dir, e))
    }

    /// The session files of an app (ids whose names pass the id rule; others are ignored).
    fn list(&self, app: &str) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let dir = self.app_dir(app)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io("list", &dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            if check_id(self.label(), id).is_ok() {
                out.push((id.to_owned(), entry.path()));
            }
        }
        Ok(out)
    }

    /// Create the directory, prove it is writable, and remove temporary files a crash left.
    fn prepare(&self) -> Result<(), StoreError> {
        let dir = &self.inner.dir;
        fs::create_dir_all(dir).map_err(|e| self.io("create directory", dir, e))?;
        let probe = dir.join(format!(".probe{TMP}{:016x}", rand::random::<u64>()));
        fs::write(&probe, b"probe")
            .map_err(|e| self.io("write (is the directory writable?)", &probe, e))?;
        let _ = fs::remove_file(&probe);
        for app_dir in fs::read_dir(dir).map_err(|e| self.io("list", dir, e))? {
            let app_dir = app_dir.map_err(|e| self.io("list", dir, e))?.path();
            if !app_dir.is_dir() {
                continue;
            }
            for f in fs::read_dir(&app_dir).map_err(|e| self.io("list", &app_dir, e))? {
                let f = f.map_err(|e| self.io("list", &app_dir, e))?.path();
                // Only a crash's leftovers: another process sharing the directory may be
                // writing a temporary file right now.
                if f.to_str().is_some_and(|n| n.contains(TMP)) && is_stale(&f) {
                    let _ = fs::remove_file(&f);
                }
            }
        }
        Ok(())
    }
}

/// One path component per app: `app-` then the name with every byte outside
/// `[A-Za-z0-9_-]` written `%XX`, so `/shop` is `app-%2Fshop` and `..` is `app-%2E%2E`.
fn app_component(app: &str) -> String {
    let mut out = String::with_capacity(4 + app.len());
    out.push_str("app-");
    for b in app.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A temporary file older than [`STALE_TMP`]: no save takes that long, so a crash left it.
fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= STALE_TMP)
}

/// Age after which `check` removes a temporary file.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(60);

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl Store for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }

    fn describe(&self) -> String {
        format!("{} (format {})", self.label(), format::FORMAT)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.blocking(|s| s.prepare()).await
    }

    async fn load(&self, app: &str, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let path = self.path(app, id)?;
        self.blocking(move |s| s.read_all(&path)).await
    }

    async fn version(&self, app: &str, id: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(app, id)?;
        self.blocking(move |s| Ok(s.read_meta(&path)?.map(|m| m.version)))
            .await
    }

    async fn save(&self, session: &StoredSession, expect: Expect) -> Result<Cas, StoreError> {
        check_write(self.label(), session, expect)?;
        let path = self.path(&session.app, &session.id)?;
        let _held = self.inner.locks.lock(&session.app, &session.id).await;
        let bytes = format::encode(session);
        let (app, id) = (session.app.clone(), session.id.clone());
        self.blocking(move |s| {
            let _file_lock = s.lock_file(&app, &id)?;
            let current = s.read_meta(&path)?.map(|m| m.version);
            let matches = match expect {
                Expect::Absent => current.is_none(),
                Expect::Version(v) => current == Some(v),
            };
            if !matches {
                return Ok(Cas::Conflict { current });
            }
            s.write_atomic(&path, &bytes)?;
            Ok(Cas::Done)
        })
        .await
    }

    async fn remove(&self, app: &str, id: &str, version: u64) -> Result<Cas, StoreError> {
        let path = self.path(app, id)?;
        let _held = self.inner.locks.lock(app, id).await;
        let (app, id) = (app.to_owned(), id.to_owned());
        self.blocking(move |s| {
            let _file_lock = s.lock_file(&app, &id)?;
            match s.read_meta(&path)?.map(|m| m.version) {
                Some(v) if v == version => s.delete(&path).map(|()| Cas::Done),
                current => Ok(Cas::Conflict { current }),
            }
        })
        .await
    }

    async fn touch(
        &self,
        app: &str,
        id: &str,
        version: u64,
        last_access_ms: i64,
    ) -> Result<Cas, StoreError> {
        let path = self.path(app, id)?;
        let _held = self.inner.locks.lock(app, id).await;
        let (app, id) = (app.to_owned(), id.to_owned());
        self.blocking(move |s| {
            let _file_lock = s.lock_file(&app, &id)?;
            match s.read_all(&path)? {
                Some(mut rec) if rec.version == version => {
                    if last_access_ms > rec.last_access_ms {
                        rec.last_access_ms = last_access_ms;
                        s.write_atomic(&path, &format::encode(&rec))?;
                    }
                    Ok(Cas::Done)
                }
                other => Ok(Cas::Conflict {
                    current: other.map(|r| r.version),
                }),
            }
        })
        .await
    }

    async fn keys(&self, app: &str) -> Result<Vec<String>, StoreError> {
        let app = app.to_owned();
        self.blocking(move |s| Ok(s.list(&app)?.into_iter().map(|(id, _)| id).collect()))
            .await
    }

    async fn count(&self, app: &str) -> Result<u64, StoreError> {
        Ok(self.keys(app).await?.len() as u64)
    }

    async fn expired(
        &self,
        app: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let app = app.to_owned();
        self.blocking(move |s| {
            let mut out = Vec::new();
            for (id, path) in s.list(&app)? {
                // A file removed since the listing is simply gone; a damaged one is reported.
                if let Some(m) = s.read_meta(&path)? {
                    if m.is_expired(now_ms) {
                        out.push((m.expires_at_ms(), id, m.version));
                    }
                }
            }
            out.sort();
            Ok(out
                .into_iter()
                .take(limit)
                .map(|(_, id, v)| (id, v))
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::app_component;

    #[test]
    fn app_names_stay_one_component() {
        assert_eq!(app_component("/shop"), "app-%2Fshop");
        assert_eq!(app_component(".."), "app-%2E%2E");
        assert_eq!(app_component(""), "app-");
        assert_eq!(app_component("a%2F"), "app-a%252F");
    }
}
