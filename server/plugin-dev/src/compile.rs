//! `shoal plugin build [dir]`: `cargo build --release --target wasm32-unknown-unknown`, then
//! the module becomes a component with `wit-component` (as the host's build does for the
//! examples: no wasm-tools), then a registry loads it as a node would, so a wrong world, an
//! unsupported WIT version or a missing export is reported here and not at load time.
use crate::project::{Project, TARGET};
use anyhow::{anyhow, bail, Context as _};
use shoal_plugin_host::{PluginError, PluginInfo, PluginWorld};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a build produced.
pub(crate) struct Built {
    pub component: PathBuf,
    pub info: PluginInfo,
    pub size: u64,
}

pub(crate) fn build(project: &Project, cargo_args: &[String]) -> anyhow::Result<Built> {
    check_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&project.dir)
        .args(["build", "--release", "--target", TARGET])
        // The artifacts' paths on stdout: the module is found wherever the target
        // directory is (CARGO_TARGET_DIR, build.target-dir of a .cargo/config.toml).
        .arg("--message-format=json-render-diagnostics")
        .args(cargo_args);
    // Flags meant for a host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd
        .output()
        .with_context(|| format!("cannot run {cargo}: is Rust installed (rustup.rs)?"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("{}", cargo_failure(&project.name, &stderr));
    }
    let module = built_module(&String::from_utf8_lossy(&output.stdout), &project.name)
        .unwrap_or_else(|| project.module());
    let bytes = std::fs::read(&module).with_context(|| {
        format!(
            "cargo built {} but {} is missing: is it a library with crate-type = [\"cdylib\"]?",
            project.name,
            module.display()
        )
    })?;
    let (component, info) = to_plugin(&project.name, &bytes, project.world)?;
    let out = project.component();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&out, &component).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Built {
        size: component.len() as u64,
        component: out,
        info,
    })
}

/// The `.wasm` file cargo reports for the library of package `name` (its JSON messages).
fn built_module(messages: &str, name: &str) -> Option<PathBuf> {
    let lib = name.replace('-', "_");
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == lib.as_str())
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}

/// Fails with what to run when the Rust target for plugins is not installed.
fn check_target() -> anyhow::Result<()> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| format!("cannot run {rustc}: is Rust installed (rustup.rs)?"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if out.status.success() && !lib.is_dir() {
        bail!("{}", missing_target_hint());
    }
    Ok(())
}

fn missing_target_hint() -> String {
    format!("the Rust target {TARGET} is not installed: run `rustup target add {TARGET}` (once), then build again")
}

/// The error for a failed cargo build: the end of its output, and what to do when the
/// cause is known.
fn cargo_failure(name: &str, stderr: &str) -> String {
    let hint = if stderr.contains("target may not be installed")
        || stderr.contains("can't find crate for `core`")
        || stderr.contains("can't find crate for `std`")
    {
        format!(" ({})", missing_target_hint())
    } else if stderr.contains("failed to get `shoal-plugin-sdk`")
        || stderr.contains("failed to load manifest for dependency `shoal-plugin-sdk`")
    {
        " (the SDK path in Cargo.toml does not point to a shoal checkout's plugins/sdk: fix the path)".to_owned()
    } else {
        String::new()
    };
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("building plugin {name} failed{hint}:\n{}", tail.join("\n"))
}

/// Module -> component, then loaded as a node would: the component and its facts. A
/// module that cannot become a component, or a component exporting no plugin world (no
/// export macro called), fails with the macro to call.
pub(crate) fn to_plugin(
    name: &str,
    module: &[u8],
    world: Option<PluginWorld>,
) -> anyhow::Result<(Vec<u8>, PluginInfo)> {
    let component = componentize(name, module, world)?;
    let info = crate::offline::check_loads(name, &component, world).map_err(|e| match e
        .downcast_ref::<PluginError>()
    {
        Some(PluginError::UnknownWorld { .. }) => anyhow!("{e:#}; {}", missing_export_hint(world)),
        _ => e,
    })?;
    Ok((component, info))
}

/// Module -> component with the world description the SDK's bindings embed.
pub(crate) fn componentize(
    name: &str,
    module: &[u8],
    world: Option<PluginWorld>,
) -> anyhow::Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            anyhow!(
                "plugin {name}: the module cannot become a component ({e:#}); {}",
                missing_export_hint(world)
            )
        })
}

fn missing_export_hint(world: Option<PluginWorld>) -> String {
    let export = match world {
        Some(PluginWorld::Valve) => "shoal_plugin_sdk::export_valve!(YourType)",
        Some(PluginWorld::UrlFilter) => "shoal_plugin_sdk::export_url_filter!(YourType)",
        Some(PluginWorld::ChannelInterceptor) => "shoal_plugin_sdk::export_interceptor!(YourType)",
        Some(PluginWorld::DeployHook) => "shoal_plugin_sdk::export_deploy_hook!(YourType)",
        None => "the export macro of its world",
    };
    format!("does src/lib.rs call {export}, and does Cargo.toml enable exactly one world feature of shoal-plugin-sdk?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_target_says_what_to_run() {
        let stderr = "error[E0463]: can't find crate for `core`\n  = note: the `wasm32-unknown-unknown` target may not be installed";
        let msg = cargo_failure("hello", stderr);
        assert!(
            msg.contains("rustup target add wasm32-unknown-unknown"),
            "{msg}"
        );
        assert!(msg.starts_with("building plugin hello failed"), "{msg}");
    }

    #[test]
    fn the_module_is_where_cargo_says() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"shoal_plugin_sdk"},"filenames":["/t/wasm32-unknown-unknown/release/deps/libshoal_plugin_sdk.rlib"]}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"my_valve"},"filenames":["/elsewhere/wasm32-unknown-unknown/release/my_valve.wasm"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            built_module(messages, "my-valve"),
            Some(PathBuf::from(
                "/elsewhere/wasm32-unknown-unknown/release/my_valve.wasm"
            ))
        );
        assert_eq!(built_module("not json", "my-valve"), None);
    }

    #[test]
    fn a_module_without_a_world_names_the_export_macro() {
        // A valid core module with no component-type section: no SDK export in it.
        let module = wat::parse_str("(module)").expect("wat");
        let err =
            to_plugin("hello", &module, Some(PluginWorld::Valve)).expect_err("no world in it");
        let err = format!("{err:#}");
        assert!(err.contains("export_valve!"), "{err}");
    }
}
