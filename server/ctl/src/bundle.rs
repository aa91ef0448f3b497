//! `shoal ctl deploy --static DIR`: an application's component and a directory of static
//! files packed into one bundle (the format a node reads, `server/node/src/farm/bundle.rs`):
//! a ustar archive with `component.wasm` at its top level and the files under `static/`.
//!
//! The archive is **reproducible**: entries sorted by path, mtime 0, mode 0644/0755, no
//! owner, so the same component and files give the same sha256 (a redeploy of unchanged
//! content is recognised as such and not transferred again). Symbolic links in DIR are
//! followed (the file they point at is packed) since a node refuses links in a bundle;
//! anything else that is not a file or a directory is an error naming it.
use anyhow::{bail, Context as _};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes the bundle of `component` and the files under `dir` to `out`; returns how many
/// static files it holds.
pub fn pack(component: &Path, dir: &Path, out: &Path) -> anyhow::Result<usize> {
    if !dir.is_dir() {
        bail!("--static {}: not a directory", dir.display());
    }
    let mut files = Vec::new();
    walk(dir, String::new(), &mut files, 0)?;
    files.sort();
    let f = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.mode(tar::HeaderMode::Deterministic);
    append_file(&mut b, "component.wasm", component)?;
    for (rel, path) in &files {
        append_file(&mut b, &format!("static/{rel}"), path)?;
    }
    let mut w = b
        .into_inner()
        .with_context(|| format!("cannot write {}", out.display()))?;
    w.flush()
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(files.len())
}

fn append_file<W: Write>(b: &mut tar::Builder<W>, name: &str, path: &Path) -> anyhow::Result<()> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, &mut f)
        .with_context(|| format!("cannot pack {} as {name}", path.display()))
}

/// Files under `dir` as (`a/b.css`, path), following links; depth-bounded against cycles.
fn walk(
    dir: &Path,
    prefix: String,
    out: &mut Vec<(String, PathBuf)>,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > 32 {
        bail!(
            "--static: {} is more than 32 folders deep (a link cycle?)",
            dir.display()
        );
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            bail!("--static: {} has a name that is not UTF-8", path.display());
        };
        let meta = std::fs::metadata(&path).with_context(|| {
            format!(
                "--static: cannot stat {} (a dangling link?)",
                path.display()
            )
        })?;
        let rel = format!("{prefix}{name}");
        if meta.is_dir() {
            walk(&path, format!("{rel}/"), out, depth + 1)?;
        } else if meta.is_file() {
            out.push((rel, path));
        } else {
            bail!(
                "--static: {} is neither a file nor a directory",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_reproducible_and_holds_the_component_and_the_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("css")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(site.join("index.html"), "<h1>hi</h1>").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(site.join("css/site.css"), "body{}").unwrap_or_else(|e| panic!("{e}"));
        let wasm = dir.path().join("app.wasm");
        std::fs::write(&wasm, b"\0asm").unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        assert_eq!(pack(&wasm, &site, &a).unwrap_or_else(|e| panic!("{e}")), 2);
        pack(&wasm, &site, &b).unwrap_or_else(|e| panic!("{e}"));
        let (ba, bb) = (
            std::fs::read(&a).unwrap_or_default(),
            std::fs::read(&b).unwrap_or_default(),
        );
        assert_eq!(ba, bb, "same inputs, same bytes");
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(ba.as_slice());
        for e in ar.entries().unwrap_or_else(|e| panic!("{e}")) {
            let e = e.unwrap_or_else(|e| panic!("{e}"));
            names.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
        }
        assert_eq!(
            names,
            ["component.wasm", "static/css/site.css", "static/index.html"]
        );
        let e = pack(&wasm, &dir.path().join("nope"), &a)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("nope")));
    }
}
