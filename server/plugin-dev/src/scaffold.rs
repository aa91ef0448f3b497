//! `shoal plugin new <kind> <dir>`: a plugin crate that builds outside this repository,
//! with the SDK of this checkout as a path dependency and a README of its own.
use crate::world::Kind;
use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.in");
const README: &str = include_str!("../templates/README.md.in");
const VALVE: &str = include_str!("../templates/valve.rs");
const APP: &str = include_str!("../templates/app.rs");
const URL_FILTER: &str = include_str!("../templates/url-filter.rs");
const INTERCEPTOR: &str = include_str!("../templates/interceptor.rs");
const DEPLOY_HOOK: &str = include_str!("../templates/deploy-hook.rs");

/// The SDK of the checkout this binary was built from.
pub(crate) fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk")
}

/// What was written, for the caller to print.
pub(crate) struct Written {
    pub dir: PathBuf,
    pub name: String,
    pub files: Vec<PathBuf>,
}

/// Writes the crate into `dir` (created; must be empty or absent). `name` defaults to the
/// directory's name; `sdk` to [`default_sdk`].
pub(crate) fn new_plugin(
    kind: Kind,
    dir: &Path,
    name: Option<&str>,
    sdk: Option<&Path>,
) -> anyhow::Result<Written> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .with_context(|| format!("{}: give the plugin a name with --name", dir.display()))?,
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        bail!(
            "plugin name {name:?} is not usable as a crate and plugin name: use lowercase letters, digits, `-` or `_`, starting with a letter (--name NAME)"
        );
    }
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: give a new directory (nothing is overwritten)",
                dir.display()
            );
        }
    }
    let sdk = sdk.map_or_else(default_sdk, Path::to_path_buf);
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the plugin SDK is not at {}: pass --sdk PATH to a shoal checkout's plugins/sdk",
            sdk.display()
        )
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!(
            "{} has no Cargo.toml: pass --sdk PATH to a shoal checkout's plugins/sdk",
            sdk.display()
        );
    }
    let world = kind.host_world().wit_name();
    let (test_args, attach) = match kind {
        Kind::Valve => ("--request 'GET /app/hello'", " --attach app"),
        Kind::App => (
            "--request 'GET /app/visits' --request 'GET /app/visits'",
            " --attach app --after ReplicationValve",
        ),
        Kind::UrlFilter => (
            "--request 'GET /app/site.css' --request 'GET /app/cart'",
            " --attach app",
        ),
        Kind::Interceptor => ("--message 'hello'", ""),
        Kind::DeployHook => ("--artifact shop.war:2048 --config max-size=1024", ""),
    };
    let fill = |t: &str| {
        t.replace("{{name}}", &name)
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{feature}}", kind.sdk_feature())
            .replace("{{kind}}", kind.name())
            .replace("{{world}}", world)
            .replace("{{test_args}}", test_args)
            .replace("{{attach}}", attach)
    };
    let source = match kind {
        Kind::Valve => VALVE,
        Kind::App => APP,
        Kind::UrlFilter => URL_FILTER,
        Kind::Interceptor => INTERCEPTOR,
        Kind::DeployHook => DEPLOY_HOOK,
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("README.md", fill(README)),
        ("src/lib.rs", fill(source)),
        (".gitignore", "/target\n".to_owned()),
    ];
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    // The SDK's workspace lock: the scaffold resolves to the crates this checkout builds
    // with (already in cargo's cache, so a first build works offline).
    let lock = sdk.join("../Cargo.lock");
    if lock.is_file() {
        let to = dir.join("Cargo.lock");
        std::fs::copy(&lock, &to).with_context(|| format!("cannot write {}", to.display()))?;
        written.push(to);
    }
    Ok(Written {
        dir: dir.to_path_buf(),
        name,
        files: written,
    })
}
