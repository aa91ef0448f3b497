//! The watch directory (Tomcat's `watchDir`), `[farm] watch_dir`: a file dropped there is
//! deployed to the whole cluster, a changed file is redeployed, a removed file undeployed.
//!
//! **Who acts**: only a node whose config sets `watch_dir` watches it (like Tomcat, where the
//! watchDir is on one node). Set it on one node; the deploy reaches every node through the farm.
//! Several nodes watching one shared directory would each deploy the same file (the farm makes
//! one win, the others get a conflict and log it), so do not.
//!
//! **Settle rule** (a file still being written is never picked up half-way): a file is deployed
//! once its size and mtime (and those of its sidecar) have been seen unchanged for `SETTLE`
//! (1 s) and no change event arrived meanwhile; every write changes mtime or size and restarts
//! the wait. A writer that stalls for longer than `SETTLE` mid-file would be picked up early, so
//! tools should write under a hidden or temporary name and rename into place (atomic): names
//! starting with `.` or ending with `.tmp`, `.part`, `.swp` or `~` are ignored.
//!
//! **What a file becomes**: name = the file name (files whose name the API would refuse are
//! skipped with a warning); version = `w<mtime in ms>`; kind = `plugin` for `*.wasm`, `file`
//! otherwise. A sidecar `<file>.meta` (lines `key=value`, `#` comments) gives the metadata; its
//! `kind = application|plugin|file` overrides the kind. Metadata `source = watch-dir` marks the
//! deployment as the watcher's: on start, such deployments whose file is gone are undeployed,
//! and a file whose sha256 is already the current version is not redeployed (a restart does not
//! bump generations).
//!
//! A deploy that fails is logged with the reason and retried only when the file changes again.
use super::{DeployRequest, Farm};
use shoal_farm::Kind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

/// How long size and mtime must stay unchanged before a file is taken.
pub const SETTLE: Duration = Duration::from_secs(1);
/// Rescan at least this often even without events (events can be lost on overflow).
const RESCAN: Duration = Duration::from_secs(30);
/// Metadata key/value marking deployments made by the watcher.
pub const SOURCE_KEY: &str = "source";
pub const SOURCE_WATCH: &str = "watch-dir";
const SIDECAR: &str = ".meta";

/// What a scan sees of one file: size and mtime of it and of its sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime: SystemTime,
    pub sidecar: Option<(u64, SystemTime)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Deploy(String),
    Undeploy(String),
}

/// The sans-io settle rule: scans in, actions out.
#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    /// Files not handled yet: fingerprint and since when it is unchanged.
    seen: BTreeMap<String, (Fingerprint, Instant)>,
    /// Files handled (deployed or failed) at this fingerprint; `None` = adopted from the
    /// catalog on start (deployed by an earlier run), fingerprint unknown.
    done: BTreeMap<String, Option<Fingerprint>>,
}

impl Settler {
    /// `adopted`: names the watcher deployed before (metadata `source = watch-dir`).
    pub fn new(settle: Duration, adopted: impl IntoIterator<Item = String>) -> Self {
        Settler {
            settle,
            seen: BTreeMap::new(),
            done: adopted.into_iter().map(|n| (n, None)).collect(),
        }
    }

    /// One scan of the directory at `now`: what to do, and when to look again at the latest
    /// (a file is settling).
    pub fn observe(
        &mut self,
        now: Instant,
        scan: &BTreeMap<String, Fingerprint>,
    ) -> (Vec<Action>, Option<Instant>) {
        let mut actions = Vec::new();
        let mut next: Option<Instant> = None;
        for (name, fp) in scan {
            if self.done.get(name) == Some(&Some(*fp)) {
                self.seen.remove(name);
                continue;
            }
            match self.seen.get(name) {
                Some((old, since)) if old == fp => {
                    let due = *since + self.settle;
                    if now >= due {
                        self.seen.remove(name);
                        self.done.insert(name.clone(), Some(*fp));
                        actions.push(Action::Deploy(name.clone()));
                    } else {
                        next = Some(next.map_or(due, |n| n.min(due)));
                    }
                }
                _ => {
                    self.seen.insert(name.clone(), (*fp, now));
                    let due = now + self.settle;
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        let gone: Vec<String> = self
            .done
            .keys()
            .filter(|n| !scan.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            self.done.remove(&name);
            actions.push(Action::Undeploy(name));
        }
        self.seen.retain(|n, _| scan.contains_key(n));
        (actions, next)
    }
}

/// Names the watcher never deploys: hidden, temporary, editor backups, sidecars.
pub fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(SIDECAR)
        || [".tmp", ".part", ".swp", "~"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// The regular files of `dir` that the watcher considers, with their fingerprints.
pub fn scan(dir: &Path) -> std::io::Result<BTreeMap<String, Fingerprint>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if ignored(&name) {
            continue;
        }
        // Gone between listing and stat: the next scan sees it gone.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let sidecar = std::fs::metadata(dir.join(format!("{name}{SIDECAR}")))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        out.insert(
            name,
            Fingerprint {
                size: meta.len(),
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                sidecar,
            },
        );
    }
    Ok(out)
}

/// Kind and metadata of `name` from its extension and sidecar; errors name the sidecar line.
pub fn describe(dir: &Path, name: &str) -> Result<(Kind, BTreeMap<String, String>), String> {
    let mut kind = if name.ends_with(".wasm") {
        Kind::Plugin
    } else {
        Kind::File
    };
    let mut meta = BTreeMap::new();
    let sidecar = dir.join(format!("{name}{SIDECAR}"));
    if let Ok(text) = std::fs::read_to_string(&sidecar) {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("{}:{}: give key=value", sidecar.display(), i + 1));
            };
            let (k, v) = (k.trim(), v.trim());
            if k == "kind" {
                kind = match v {
                    "plugin" => Kind::Plugin,
                    "application" => Kind::Application,
                    "file" => Kind::File,
                    other => {
                        return Err(format!(
                            "{}:{}: kind {other:?} is unknown: use plugin, application or file",
                            sidecar.display(),
                            i + 1
                        ))
                    }
                };
            } else {
                meta.insert(k.to_string(), v.to_string());
            }
        }
    }
    meta.insert(SOURCE_KEY.into(), SOURCE_WATCH.into());
    Ok((kind, meta))
}

/// Starts watching `dir` for `farm` (a Tokio task plus the notify watcher it owns). The task
/// ends when the farm is dropped.
pub fn start(dir: PathBuf, farm: Weak<Farm>) -> Result<(), String> {
    use notify::Watcher as _;
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("[farm] watch_dir {}: cannot create it ({e})", dir.display()))?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let w = wake.clone();
    let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        // Any event (or error) means "look again"; the scan decides.
        w.notify_one();
    })
    .map_err(|e| format!("[farm] watch_dir {}: cannot watch it ({e})", dir.display()))?;
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .map_err(|e| format!("[farm] watch_dir {}: cannot watch it ({e})", dir.display()))?;
    tokio::spawn(async move {
        let _watcher = watcher;
        run(dir, farm, wake).await;
    });
    Ok(())
}

async fn run(dir: PathBuf, farm: Weak<Farm>, wake: Arc<tokio::sync::Notify>) {
    let adopted: Vec<String> = {
        let Some(f) = farm.upgrade() else { return };
        // Deploys are refused until the node has converged; wait for it (bounded: the farm
        // reports ready after `ready_wait_secs` at the latest).
        let within = Duration::from_secs(f.settings().ready_wait_secs.max(1) + 5);
        if !f.wait_ready(within).await {
            tracing::warn!(
                "farm watch_dir {}: the node has not converged after {} s; watching anyway",
                dir.display(),
                within.as_secs()
            );
        }
        f.view()
            .catalog
            .iter()
            .filter_map(|s| s.current.manifest())
            .filter(|m| {
                m.manifest.metadata.get(SOURCE_KEY).map(String::as_str) == Some(SOURCE_WATCH)
            })
            .map(|m| m.manifest.name.clone())
            .collect()
    };
    tracing::info!("farm: watching {} for artifacts", dir.display());
    let mut settler = Settler::new(SETTLE, adopted);
    loop {
        let scan = match scan(&dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(
                    "farm watch_dir {}: cannot list it ({e}); retrying in {} s",
                    dir.display(),
                    RESCAN.as_secs()
                );
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(RESCAN) => {}
                }
                continue;
            }
        };
        let (actions, next) = settler.observe(Instant::now(), &scan);
        for action in actions {
            let Some(f) = farm.upgrade() else { return };
            execute(&f, &dir, action).await;
        }
        let wait = next
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(RESCAN);
        if farm.strong_count() == 0 {
            return;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn execute(farm: &Farm, dir: &Path, action: Action) {
    match action {
        Action::Deploy(name) => {
            let path = dir.join(&name);
            match deploy(farm, dir, &name).await {
                Ok(true) => tracing::info!("farm watch_dir: deployed {}", path.display()),
                Ok(false) => {
                    tracing::debug!("farm watch_dir: {} is already current", path.display())
                }
                Err(e) => tracing::error!(
                    "farm watch_dir: {} was not deployed: {e}; change the file to retry",
                    path.display()
                ),
            }
        }
        Action::Undeploy(name) => {
            let ours = farm
                .view()
                .slot(&name)
                .and_then(|s| s.current.manifest())
                .is_some_and(|m| {
                    m.manifest.metadata.get(SOURCE_KEY).map(String::as_str) == Some(SOURCE_WATCH)
                });
            if !ours {
                return;
            }
            match farm.undeploy(&name).await {
                Ok(()) => tracing::info!("farm watch_dir: {name} removed, undeployed"),
                Err(e) => tracing::error!("farm watch_dir: {name} removed, but the undeploy failed: {e}; undeploy it through the API"),
            }
        }
    }
}

/// Deploys `dir/name`; Ok(false) when its content is already the current version.
async fn deploy(farm: &Farm, dir: &Path, name: &str) -> Result<bool, String> {
    if let Err(e) = shoal_admin::rules::check_artifact_name(name) {
        return Err(format!("the file name is not a valid artifact name ({e})"));
    }
    let path = dir.join(name);
    let (kind, metadata) = describe(dir, name)?;
    let (sha, mtime) = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || hash(&p))
            .await
            .map_err(|e| format!("hashing stopped: {e}"))??
    };
    let current = farm
        .view()
        .slot(name)
        .and_then(|s| s.current.manifest().cloned());
    if let Some(cur) = current {
        if cur.manifest.sha256.0 == sha
            && cur.manifest.metadata == metadata
            && cur.manifest.kind == kind
        {
            return Ok(false);
        }
    }
    let version = format!(
        "w{}",
        mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| format!("cannot open it ({e})"))?;
    let body = Box::pin(futures::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), file)))
    }));
    let req = DeployRequest {
        name: name.to_string(),
        version: Some(version),
        kind,
        metadata,
        signature: None,
    };
    farm.deploy(req, body).await.map_err(|e| e.to_string())?;
    Ok(true)
}

fn hash(path: &Path) -> Result<([u8; 32], SystemTime), String> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open it ({e})"))?;
    let mtime = f
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let (mut h, mut buf) = (sha2::Sha256::new(), vec![0u8; 64 * 1024]);
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read it ({e})"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok((h.finalize().into(), mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(size: u64, t: u64) -> Fingerprint {
        Fingerprint {
            size,
            mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(t),
            sidecar: None,
        }
    }

    fn scan(files: &[(&str, Fingerprint)]) -> BTreeMap<String, Fingerprint> {
        files.iter().map(|(n, f)| (n.to_string(), *f)).collect()
    }

    #[test]
    fn a_file_is_taken_only_once_it_stopped_changing() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut s = Settler::new(SETTLE, []);
        // Written in chunks 400 ms apart: every scan sees a new size, nothing is taken.
        for (i, at) in [0u64, 400, 800, 1200].into_iter().enumerate() {
            let (a, next) = s.observe(ms(at), &scan(&[("a.bin", fp(i as u64 * 10, i as u64))]));
            assert!(a.is_empty(), "half-written file taken at {at} ms");
            assert_eq!(next, Some(ms(at + 1000)));
        }
        // Unchanged, but not for SETTLE yet.
        let (a, _) = s.observe(ms(2100), &scan(&[("a.bin", fp(30, 3))]));
        assert!(a.is_empty());
        let (a, next) = s.observe(ms(2200), &scan(&[("a.bin", fp(30, 3))]));
        assert_eq!(a, vec![Action::Deploy("a.bin".into())]);
        assert_eq!(next, None);
        // Seen again unchanged: nothing more.
        assert!(s
            .observe(ms(5000), &scan(&[("a.bin", fp(30, 3))]))
            .0
            .is_empty());
        // Changed: settles again, then redeployed.
        assert!(s
            .observe(ms(6000), &scan(&[("a.bin", fp(31, 6))]))
            .0
            .is_empty());
        assert_eq!(
            s.observe(ms(7000), &scan(&[("a.bin", fp(31, 6))])).0,
            vec![Action::Deploy("a.bin".into())]
        );
        // Removed: undeployed once.
        assert_eq!(
            s.observe(ms(8000), &scan(&[])).0,
            vec![Action::Undeploy("a.bin".into())]
        );
        assert!(s.observe(ms(9000), &scan(&[])).0.is_empty());
    }

    #[test]
    fn a_file_removed_before_it_settled_is_forgotten_and_adopted_ones_are_undeployed() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE, ["old.bin".to_string(), "kept.bin".to_string()]);
        let (a, _) = s.observe(t0, &scan(&[("new.bin", fp(1, 1)), ("kept.bin", fp(2, 1))]));
        assert_eq!(a, vec![Action::Undeploy("old.bin".into())]);
        let (a, _) = s.observe(t0 + SETTLE / 2, &scan(&[("kept.bin", fp(2, 1))]));
        assert!(a.is_empty(), "never deployed, nothing to undeploy: {a:?}");
        // The adopted file still present is re-checked once settled (deploy skips same digest).
        let (a, _) = s.observe(t0 + SETTLE, &scan(&[("kept.bin", fp(2, 1))]));
        assert_eq!(a, vec![Action::Deploy("kept.bin".into())]);
    }

    #[test]
    fn temporary_names_are_ignored_and_the_sidecar_sets_kind_and_metadata() {
        for n in [".hidden", "x.tmp", "x.part", "x.swp", "x~", "a.wasm.meta"] {
            assert!(ignored(n), "{n}");
        }
        assert!(!ignored("shop.wasm"));
        let dir = tempfile::tempdir().expect("tmp");
        let (k, m) = describe(dir.path(), "a.wasm").expect("no sidecar");
        assert_eq!(k, Kind::Plugin);
        assert_eq!(m.get(SOURCE_KEY).map(String::as_str), Some(SOURCE_WATCH));
        assert_eq!(describe(dir.path(), "a.txt").expect("file").0, Kind::File);
        std::fs::write(
            dir.path().join("a.wasm.meta"),
            "# app\nkind = application\ncontext = /shop\n",
        )
        .expect("write");
        let (k, m) = describe(dir.path(), "a.wasm").expect("sidecar");
        assert_eq!(k, Kind::Application);
        assert_eq!(m.get("context").map(String::as_str), Some("/shop"));
        std::fs::write(dir.path().join("a.wasm.meta"), "kind = war\n").expect("write");
        let e = describe(dir.path(), "a.wasm").expect_err("bad kind");
        assert!(e.contains("a.wasm.meta:1"), "{e}");
        let f = super::scan(dir.path()).expect("scan");
        assert!(f.is_empty(), "the sidecar alone is not an artifact: {f:?}");
    }
}
