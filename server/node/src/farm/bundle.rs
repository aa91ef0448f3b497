//! The static-file bundle of an `application` artifact.
//!
//! **Format**: the artifact is either the bare component (it starts with `\0asm`), or a
//! tar archive (ustar or GNU, uncompressed) holding `component.wasm` at its top level and
//! the static files under `static/` (served at `<context path>/<path under static/>`).
//! One artifact, so one sha256, one signature, one transfer, one staged copy: component
//! and files are verified together, activate together (the context's pipeline is swapped
//! in one step) and roll back together (the previous slot names the previous tar), with no
//! new protocol. `shoal ctl deploy --static DIR` packs one.
//!
//! **Unpacking** happens when the artifact is admitted (before `staged`), into
//! `<farm dir>/static/<sha256>/` (content-addressed: written under a temporary name,
//! renamed in once complete, so a directory under its digest is always whole). Refused,
//! each with an error naming the entry: an absolute path, a `..` component, a link
//! (symbolic or hard: either could lead out of the directory), a device or other special
//! file, an entry neither `component.wasm` nor under `static/`, an entry that appears
//! twice, more than `[farm] static_max_files` files or `static_max_bytes` bytes.
//! A refusal is that node's `failed: <reason>`, so nobody activates.
use shoal_farm::Digest;
use shoal_http::StaticFiles;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The component's name inside a bundle.
pub const COMPONENT: &str = "component.wasm";
/// The folder of the static files inside a bundle.
pub const STATIC: &str = "static";

/// Bounds on what one bundle may unpack to (`[farm] static_max_files`, `static_max_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_files: u64,
    pub max_bytes: u64,
}

/// An application artifact opened: its component, and its static files if it is a bundle.
pub struct Opened {
    pub component: Vec<u8>,
    pub static_files: Option<StaticFiles>,
}

/// Where bundles are unpacked (`<farm dir>/static`), and their limits.
pub struct Bundles {
    root: PathBuf,
    limits: Limits,
}

/// Whether `head` (the first bytes of an artifact) is a tar archive: `ustar` at 257.
pub fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar".as_slice())
}

impl Bundles {
    /// `root` is created; leftovers of an unpack cut short (`.*.tmp`) are removed.
    pub fn open(root: PathBuf, limits: Limits) -> Result<Bundles, String> {
        fs::create_dir_all(&root).map_err(|e| {
            format!(
                "[farm] dir: cannot create {} ({e}); set [farm] dir to a writable directory",
                root.display()
            )
        })?;
        if let Ok(entries) = fs::read_dir(&root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with('.') {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(Bundles { root, limits })
    }

    /// The directory the bundle `digest` unpacks to.
    pub fn dir_of(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.to_string())
    }

    /// Opens the application artifact at `content` (sha256 `digest`): a bare component,
    /// or a bundle whose files are unpacked (once: an existing directory under the digest
    /// is complete) and indexed. The error names the entry at fault.
    pub fn open_app(&self, content: &Path, digest: &Digest) -> Result<Opened, String> {
        let read_err = |e: std::io::Error| format!("cannot read {}: {e}", content.display());
        let mut f = File::open(content).map_err(read_err)?;
        let mut head = Vec::with_capacity(512);
        (&mut f)
            .take(512)
            .read_to_end(&mut head)
            .map_err(read_err)?;
        if !is_tar(&head) {
            return Ok(Opened {
                component: fs::read(content).map_err(read_err)?,
                static_files: None,
            });
        }
        let dest = self.dir_of(digest);
        let unpack_to = if dest.is_dir() {
            None
        } else {
            Some(
                self.root
                    .join(format!(".{digest}.{}.tmp", std::process::id())),
            )
        };
        let result = (|| -> Result<Vec<u8>, String> {
            let f = File::open(content).map_err(read_err)?;
            if let Some(tmp) = &unpack_to {
                let _ = fs::remove_dir_all(tmp);
                fs::create_dir_all(tmp)
                    .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
            }
            let component = unpack(f, unpack_to.as_deref(), &self.limits)?;
            if let Some(tmp) = &unpack_to {
                fs::rename(tmp, &dest).map_err(|e| {
                    format!("cannot move {} to {}: {e}", tmp.display(), dest.display())
                })?;
            }
            Ok(component)
        })();
        let component = match result {
            Ok(c) => c,
            Err(e) => {
                if let Some(tmp) = &unpack_to {
                    let _ = fs::remove_dir_all(tmp);
                }
                return Err(format!("bundle: {e}"));
            }
        };
        let static_files = StaticFiles::scan(&dest).map_err(|e| format!("bundle: {e}"))?;
        Ok(Opened {
            component,
            static_files: Some(static_files),
        })
    }

    /// Removes unpacked bundles whose artifact no slot or rollout references any more.
    pub fn collect_garbage(&self, referenced: &std::collections::BTreeSet<Digest>) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let keep = referenced.iter().any(|d| d.to_string() == name);
            if !keep && !name.starts_with('.') {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Reads every entry of the tar `input`: returns `component.wasm`'s bytes, and writes the
/// files under `static/` to `dest` (when given; `None` only checks and reads the component).
fn unpack(input: impl Read, dest: Option<&Path>, limits: &Limits) -> Result<Vec<u8>, String> {
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a readable tar archive: {e}"))?;
    let mut component: Option<Vec<u8>> = None;
    let (mut files, mut bytes) = (0u64, 0u64);
    for (i, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| format!("entry #{i}: unreadable ({e})"))?;
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let at = |what: &str| format!("entry `{shown}`: {what}");
        let rel = relative(&entry.path_bytes()).map_err(|e| at(&e))?;
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        match kind {
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            T::Symlink | T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                return Err(at(&format!(
                    "a link (to `{target}`); a bundle holds regular files and directories only, \
                     since a link could lead out of it (put the file itself in the bundle)"
                )));
            }
            T::Directory => {
                if rel.is_empty() || (rel.len() == 1 && rel[0] == STATIC) {
                    continue;
                }
                if rel[0] != STATIC {
                    return Err(at(
                        "not under static/ (a bundle holds component.wasm and static/…)",
                    ));
                }
                if let Some(d) = dest {
                    let p = join(d, &rel[1..]);
                    fs::create_dir_all(&p)
                        .map_err(|e| at(&format!("cannot create {}: {e}", p.display())))?;
                }
                continue;
            }
            T::Regular | T::Continuous => {}
            other => {
                return Err(at(&format!(
                    "a {other:?} entry; a bundle holds regular files and directories only"
                )))
            }
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| at(&format!("bad size ({e})")))?;
        if rel.len() == 1 && rel[0] == COMPONENT {
            if component.is_some() {
                return Err(at("appears twice"));
            }
            let mut buf = Vec::with_capacity(size.min(64 << 20) as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(|e| at(&format!("cannot read ({e})")))?;
            component = Some(buf);
            continue;
        }
        if rel.len() < 2 || rel[0] != STATIC {
            return Err(at("neither component.wasm nor under static/ (a bundle holds component.wasm and static/…)"));
        }
        files += 1;
        bytes = bytes.saturating_add(size);
        if files > limits.max_files {
            return Err(at(&format!(
                "the bundle has more than {} files ([farm] static_max_files)",
                limits.max_files
            )));
        }
        if bytes > limits.max_bytes {
            return Err(at(&format!(
                "the bundle's files exceed {} bytes ([farm] static_max_bytes)",
                limits.max_bytes
            )));
        }
        let Some(d) = dest else { continue };
        let p = join(d, &rel[1..]);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| at(&format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut out = File::create_new(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                at("appears twice")
            } else {
                at(&format!("cannot create {}: {e}", p.display()))
            }
        })?;
        let copied = std::io::copy(&mut (&mut entry).take(size), &mut out)
            .map_err(|e| at(&format!("cannot write {}: {e}", p.display())))?;
        if copied != size {
            return Err(at(&format!("{copied} of its {size} bytes in the archive")));
        }
    }
    component.ok_or_else(|| {
        format!("no {COMPONENT} at the top level (a bundle holds {COMPONENT} and {STATIC}/…)")
    })
}

/// The entry's path as plain components; absolute paths and `..` are refused.
fn relative(raw: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "a path that is not UTF-8".to_string())?;
    let mut out = Vec::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err("`..` in its path would lead out of the bundle".into())
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(
                    "an absolute path; bundle entries are relative (component.wasm, static/…)"
                        .into(),
                )
            }
        }
    }
    if out.iter().any(|s| s.contains('\\')) {
        return Err("a `\\` in its path; use `/` between folders".into());
    }
    Ok(out)
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for s in parts {
        p.push(s);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x0d\0\x01\0component";

    /// A tar whose entries are written with raw names (so `..` and `/abs` can be made).
    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_ustar();
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                h.set_size(0);
                h.as_old_mut().linkname[..data.len()].copy_from_slice(data);
                h.set_cksum();
                b.append(&h, std::io::empty())
                    .unwrap_or_else(|e| panic!("{e}"));
            } else {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        b.into_inner().unwrap_or_else(|e| panic!("{e}"))
    }

    fn bundles(dir: &Path) -> Bundles {
        let limits = Limits {
            max_files: 3,
            max_bytes: 100,
        };
        Bundles::open(dir.join("static"), limits).unwrap_or_else(|e| panic!("{e}"))
    }

    fn open(b: &Bundles, dir: &Path, bytes: &[u8]) -> Result<Opened, String> {
        let p = dir.join("artifact");
        fs::write(&p, bytes).unwrap_or_else(|e| panic!("{e}"));
        b.open_app(&p, &Digest::of(bytes))
    }

    const F: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn a_bundle_unpacks_under_its_digest_and_a_bare_component_is_itself() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let b = bundles(dir.path());
        let bare = open(&b, dir.path(), WASM).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bare.component, WASM);
        assert!(bare.static_files.is_none());
        let t = tar_of(&[
            ("./component.wasm", F, WASM),
            ("static/", tar::EntryType::Directory, b""),
            ("static/index.html", F, b"<h1>hi</h1>"),
            ("static/css/site.css", F, b"body{}"),
        ]);
        let o = open(&b, dir.path(), &t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.component, WASM);
        let files = o.static_files.unwrap_or_else(|| panic!("static files"));
        assert_eq!(files.len(), 2);
        let d = b.dir_of(&Digest::of(&t));
        assert_eq!(files.root(), d);
        assert_eq!(
            fs::read(d.join("css/site.css")).ok().as_deref(),
            Some(b"body{}".as_slice())
        );
        // Opened again (a restart): the directory is reused, the component read again.
        let again = open(&b, dir.path(), &t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.component, WASM);
        b.collect_garbage(&Default::default());
        assert!(!d.exists(), "unreferenced bundles are removed");
    }

    #[test]
    fn bad_entries_are_refused_by_name_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let b = bundles(dir.path());
        let refused = |entries: &[(&str, tar::EntryType, &[u8])]| {
            let e = open(&b, dir.path(), &tar_of(entries))
                .err()
                .unwrap_or_default();
            let left: Vec<_> = fs::read_dir(dir.path().join("static"))
                .map(|r| r.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{e}: left {left:?}");
            e
        };
        let c = ("component.wasm", F, WASM);
        let e = refused(&[c, ("static/../../etc/evil", F, b"x")]);
        assert!(
            e.contains("entry `static/../../etc/evil`") && e.contains(".."),
            "{e}"
        );
        let e = refused(&[c, ("/etc/passwd", F, b"x")]);
        assert!(
            e.contains("entry `/etc/passwd`") && e.contains("absolute"),
            "{e}"
        );
        let e = refused(&[c, ("static/up", tar::EntryType::Symlink, b"../../x")]);
        assert!(e.contains("entry `static/up`") && e.contains("link"), "{e}");
        let e = refused(&[c, ("static/a", F, b"1"), ("static/a", F, b"2")]);
        assert!(e.contains("entry `static/a`: appears twice"), "{e}");
        let many: Vec<String> = (0..4).map(|i| format!("static/f{i}")).collect();
        let mut entries = vec![c];
        entries.extend(many.iter().map(|n| (n.as_str(), F, b"x".as_slice())));
        let e = refused(&entries);
        assert!(
            e.contains("entry `static/f3`") && e.contains("static_max_files"),
            "{e}"
        );
        let big = vec![1u8; 101];
        let e = refused(&[c, ("static/big", F, &big)]);
        assert!(
            e.contains("entry `static/big`") && e.contains("static_max_bytes"),
            "{e}"
        );
        let e = refused(&[c, ("other.txt", F, b"x")]);
        assert!(
            e.contains("entry `other.txt`") && e.contains("static/"),
            "{e}"
        );
        let e = refused(&[("static/a", F, b"x")]);
        assert!(e.contains("no component.wasm"), "{e}");
    }
}
