//! A plugin crate on disk as `shoal plugin build` and `test` see it: its name, its kind
//! (`[package.metadata.shoal] kind`, or the SDK's world feature), and where cargo puts
//! what it builds.
use crate::world::{world_of_feature, Kind};
use anyhow::{bail, Context as _};
use shoal_plugin_host::PluginWorld;
use std::path::{Path, PathBuf};

/// The Rust target plugins are built for.
pub(crate) const TARGET: &str = "wasm32-unknown-unknown";

pub(crate) struct Project {
    pub dir: PathBuf,
    /// The package name (`my-valve`); the component is `<target>/<name>.component.wasm`.
    pub name: String,
    /// The world it declares (`[package.metadata.shoal] kind`, or the SDK dependency's
    /// feature; `None`: it does not say, any world is accepted).
    pub world: Option<PluginWorld>,
    /// cargo's target directory for this crate (`CARGO_TARGET_DIR`, or `<dir>/target`).
    pub target_dir: PathBuf,
}

impl Project {
    /// Reads `<dir>/Cargo.toml`.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Project> {
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).with_context(|| {
            format!(
                "{}: no Cargo.toml here; give the plugin's directory, or write one with `shoal plugin new valve DIR`",
                dir.display()
            )
        })?;
        let doc: toml::Table = text
            .parse()
            .with_context(|| format!("{} is not valid TOML", manifest.display()))?;
        let package = doc.get("package").and_then(|p| p.as_table());
        let Some(name) = package.and_then(|p| p.get("name")).and_then(|n| n.as_str()) else {
            bail!(
                "{}: no [package] name; a plugin is a library crate",
                manifest.display()
            );
        };
        let kind_name = package
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("shoal"))
            .and_then(|s| s.get("kind"))
            .and_then(|k| k.as_str());
        let kind = match kind_name {
            Some(k) => Some(Kind::from_name(k).with_context(|| {
                format!(
                    "{}: [package.metadata.shoal] kind = {k:?} is not one of valve, app, url-filter, interceptor, deploy-hook",
                    manifest.display()
                )
            })?),
            None => None,
        };
        let sdk_world = doc
            .get("dependencies")
            .and_then(|d| d.get("shoal-plugin-sdk"))
            .and_then(|s| s.get("features"))
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find_map(world_of_feature);
        let world = kind.map(Kind::host_world).or(sdk_world);
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) => PathBuf::from(t),
            None => dir.join("target"),
        };
        Ok(Project {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            world,
            target_dir,
        })
    }

    /// The core module cargo writes.
    pub(crate) fn module(&self) -> PathBuf {
        self.target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", self.name.replace('-', "_")))
    }

    /// The component `shoal plugin build` writes and `test` runs.
    pub(crate) fn component(&self) -> PathBuf {
        self.target_dir
            .join(format!("{}.component.wasm", self.name))
    }
}
