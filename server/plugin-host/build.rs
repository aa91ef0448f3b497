//! Builds the example plugins in `plugins/` from source for wasm32-unknown-unknown and turns
//! each module into a component, so tests, benches and the node find them at
//! `plugins/target/components/<name>.component.wasm` (exported as `SHOAL_PLUGIN_COMPONENTS`).
//!
//! The wasm32 standard library is installed with `rustup target add` when it is missing, so
//! the README's first command gives the whole demo on a fresh machine. (A `rust-toolchain.toml`
//! naming the target does not do it: rustup 1.29 ignores its `targets` for a toolchain that is
//! already installed, and with `RUSTUP_AUTO_INSTALL=1` it updated `stable` to a newer release.)
//! The target's directory in the sysroot is watched: a build while it is missing runs this
//! script again (cargo reruns a script whose watched path does not exist), and once it
//! appears the examples are built, instead of replaying a cached "target missing" warning.
//!
//! A failure does not fail this crate's build (the server works without the examples):
//! it is passed on as `SHOAL_PLUGIN_BUILD_ERROR`, and every test needing the examples fails
//! with it. `SHOAL_SKIP_PLUGIN_BUILD=1` skips the step.
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");
    let plugins = root.join("plugins");
    for watched in [
        "wit",
        "plugins/sdk",
        "plugins/examples",
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=SHOAL_SKIP_PLUGIN_BUILD");
    let out = plugins.join("target/components");
    println!("cargo:rustc-env=SHOAL_PLUGIN_COMPONENTS={}", out.display());
    let result = if std::env::var("SHOAL_SKIP_PLUGIN_BUILD").is_ok_and(|v| v == "1") {
        Err(
            "skipped: SHOAL_SKIP_PLUGIN_BUILD=1 was set when shoal-plugin-host was built"
                .to_string(),
        )
    } else {
        ensure_target().and_then(|()| build_all(&plugins, &out))
    };
    let error = match result {
        Ok(()) => String::new(),
        Err(e) => {
            println!("cargo:warning=example plugins not built: {e}");
            e
        }
    };
    // One line: rustc-env values cannot hold newlines.
    println!(
        "cargo:rustc-env=SHOAL_PLUGIN_BUILD_ERROR={}",
        error.replace('\n', " | ")
    );
}

/// Makes sure the wasm32 standard library of the toolchain building us is installed: watches
/// its directory, and installs it with rustup (which knows the toolchain from
/// `RUSTUP_TOOLCHAIN`, set by its cargo proxy) when it is missing.
fn ensure_target() -> Result<(), String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run {rustc} --print sysroot: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    let dir = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    println!("cargo:rerun-if-changed={}", dir.display());
    if dir.is_dir() {
        return Ok(());
    }
    let output = Command::new("rustup")
        .args(["target", "add", TARGET])
        .output()
        .map_err(|e| {
            format!(
                "the {TARGET} target is missing from {sysroot} and rustup cannot be run ({e}): \
                 install that target's standard library for this toolchain"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed (offline?): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    println!("cargo:warning=installed the {TARGET} target with rustup, for the example plugins");
    Ok(())
}

fn build_all(plugins: &Path, out: &Path) -> Result<(), String> {
    let examples = plugins.join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&examples)
        .map_err(|e| format!("cannot read {}: {e}", examples.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for name in &names {
        cargo_build(plugins, name)?;
        let module = plugins
            .join("target")
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        componentize(&module, &out.join(format!("{name}.component.wasm")))?;
    }
    Ok(())
}

/// One cargo run per plugin: each enables a different world feature of the SDK, and cargo
/// would merge the features of plugins built together.
fn cargo_build(plugins: &Path, name: &str) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins)
        .args(["build", "--release", "--target", TARGET, "-p", name])
        .env("CARGO_TARGET_DIR", plugins.join("target"));
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hint = if stderr.contains("target may not be installed")
        || stderr.contains("can't find crate for `core`")
    {
        " (the wasm32 target is missing: run `rustup target add wasm32-unknown-unknown`, or source scripts/prereqs.sh)"
    } else {
        ""
    };
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "building plugin {name} failed{hint}: {}",
        tail.join("\n")
    ))
}

fn componentize(module: &Path, component: &Path) -> Result<(), String> {
    let bytes =
        std::fs::read(module).map_err(|e| format!("cannot read {}: {e}", module.display()))?;
    let encoded = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| format!("cannot turn {} into a component: {e:#}", module.display()))?;
    std::fs::write(component, encoded)
        .map_err(|e| format!("cannot write {}: {e}", component.display()))
}
