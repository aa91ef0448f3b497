//! `ReloadingCert`: the server certificate, re-read when its files change on disk.
//!
//! Checked lazily, on a handshake, at most once per [`RELOAD_CHECK`]: the two files'
//! modification time, size and inode are compared with those of the last attempt, and a
//! change loads both again. A pair that does not load (a key written before its
//! certificate, a typo) keeps the previous certificate in service and logs a warning
//! naming the file; the next change is tried again. No watcher thread, and renames (the
//! way Kubernetes and certbot swap files) are seen like writes in place.
use crate::files::TlsFiles;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often a handshake may look at the files (two `stat` calls).
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode,
    })
}

#[derive(Debug)]
struct Check {
    at: Instant,
    /// The stamps of the last load attempted (successful or not).
    tried: (Option<Stamp>, Option<Stamp>),
}

#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    /// The config table, for log lines (`[http.tls]`).
    what: String,
    current: RwLock<Arc<CertifiedKey>>,
    check: Mutex<Check>,
}

impl ReloadingCert {
    /// Loads the pair once; an error here stops the node's start.
    pub fn load(files: TlsFiles, what: &str) -> Result<Self, crate::TlsError> {
        let tried = (stamp(&files.cert), stamp(&files.key));
        let key = files.load(what)?;
        Ok(ReloadingCert {
            files,
            what: what.into(),
            current: RwLock::new(Arc::new(key)),
            check: Mutex::new(Check {
                at: Instant::now(),
                tried,
            }),
        })
    }

    /// The certificate in service (after a reload check, if one is due).
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.reload_if_changed();
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn reload_if_changed(&self) {
        let Ok(mut check) = self.check.try_lock() else {
            return; // another handshake is checking right now
        };
        if check.at.elapsed() < RELOAD_CHECK {
            return;
        }
        if let Err(e) = self.check_files(&mut check) {
            tracing::warn!(
                "{e}; the previous certificate stays in service until the files change again"
            );
        }
    }

    /// Checks the files now, whenever the last check was: `Ok(true)` if a changed pair
    /// was loaded and is now served, `Ok(false)` if nothing changed; an error leaves the
    /// certificate in service as it was.
    pub fn reload_now(&self) -> Result<bool, crate::TlsError> {
        let mut check = match self.check.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.check_files(&mut check)
    }

    fn check_files(&self, check: &mut Check) -> Result<bool, crate::TlsError> {
        check.at = Instant::now();
        let now = (stamp(&self.files.cert), stamp(&self.files.key));
        if now == check.tried {
            return Ok(false);
        }
        check.tried = now;
        let key = self.files.load(&self.what)?;
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = Arc::new(key);
        tracing::info!(cert = %self.files.cert.display(), "{}: certificate reloaded", self.what);
        Ok(true)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
