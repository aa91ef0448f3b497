//! `shoal plugin …`: write, build and try a Wasm plugin with the `shoal` binary alone.
//!
//! - `new <kind> <dir>` (`scaffold.rs`): a crate for one kind of plugin (valve, app,
//!   url-filter, interceptor, deploy-hook) that builds outside this repository, with the
//!   SDK of this checkout as a path dependency and a README of its own.
//! - `build [dir]` (`compile.rs`): cargo for `wasm32-unknown-unknown`, module → component
//!   with `wit-component` (no wasm-tools), then loaded once as a node would to catch a wrong
//!   world or WIT version before deployment.
//! - `test [dir]` (`offline.rs`): the component run here against sample requests, messages
//!   or artifacts with a fake session and node, printing what it did.
//!
//! `project.rs` reads a plugin crate (name, kind, target dir); `world.rs` maps kinds to
//! worlds. Loading it into a running cluster is `shoal ctl plugins load` (shoal-ctl).
#![warn(unreachable_pub)]

mod compile;
mod offline;
mod project;
mod scaffold;
mod world;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

pub use world::Kind;

/// `shoal plugin <command>`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Write a new plugin crate into DIR (created; must be empty): Cargo.toml, src/lib.rs,
    /// README.md. It builds anywhere (the SDK is a path dependency to this checkout).
    New {
        /// What the plugin is.
        #[arg(value_enum)]
        kind: Kind,
        dir: PathBuf,
        /// Crate and plugin name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// The shoal-plugin-sdk crate to depend on (default: this checkout's plugins/sdk).
        #[arg(long, value_name = "PATH", env = "SHOAL_PLUGIN_SDK")]
        sdk: Option<PathBuf>,
    },
    /// Build the plugin in DIR (default: .) into target/NAME.component.wasm: cargo for
    /// wasm32-unknown-unknown, then module -> component; checks a node would load it.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// More arguments for `cargo build` (after `--`), e.g. `-- --offline`.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run the built component offline against sample requests (valves, URL filters),
    /// messages (interceptors) or artifacts (deploy hooks), with a fake session and node,
    /// and print what it did. Fails when a call fails (for CI).
    Test {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The component to run (default: DIR's target/NAME.component.wasm).
        #[arg(long, value_name = "FILE")]
        component: Option<PathBuf>,
        /// `METHOD /path?query`, repeatable, in order (one browser: the session carries).
        #[arg(long = "request", value_name = "REQUEST")]
        requests: Vec<String>,
        /// `name: value`, added to every request.
        #[arg(long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        /// A payload (text) an interceptor sends and receives back; repeatable.
        #[arg(long = "message", value_name = "TEXT")]
        messages: Vec<String>,
        /// `NAME:SIZE` offered to a deploy hook; repeatable.
        #[arg(long = "artifact", value_name = "NAME:SIZE")]
        artifacts: Vec<String>,
        /// `key=value` given to the plugin through `host.config`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
}

/// Runs one `shoal plugin` command, printing to stdout.
pub fn run(cmd: PluginCommand) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::New {
            kind,
            dir,
            name,
            sdk,
        } => {
            let w = scaffold::new_plugin(kind, &dir, name.as_deref(), sdk.as_deref())?;
            println!(
                "wrote {} plugin {} in {}:",
                kind.name(),
                w.name,
                w.dir.display()
            );
            for f in &w.files {
                println!("  {}", f.display());
            }
            println!(
                "next: cd {} && shoal plugin build && shoal plugin test (see its README.md)",
                w.dir.display()
            );
            Ok(())
        }
        PluginCommand::Build { dir, cargo_args } => {
            let project = project::Project::open(&dir)?;
            let started = std::time::Instant::now();
            let built = compile::build(&project, &cargo_args)?;
            println!(
                "built {} ({} bytes, world {}, shoal:plugin@{}) in {:.1} s",
                built.component.display(),
                built.size,
                built.info.world.wit_name(),
                built.info.wit_version,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        PluginCommand::Test {
            dir,
            component,
            requests,
            headers,
            messages,
            artifacts,
            config,
        } => {
            let project = project::Project::open(&dir)?;
            let path = component.unwrap_or_else(|| project.component());
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read {}: build it first with `shoal plugin build {}`",
                    path.display(),
                    dir.display()
                )
            })?;
            let mut pairs = Vec::new();
            for c in config {
                let (k, v) = c
                    .split_once('=')
                    .with_context(|| format!("--config {c:?}: write key=value"))?;
                pairs.push((k.to_owned(), v.to_owned()));
            }
            let samples = offline::Samples {
                requests,
                headers,
                messages,
                artifacts,
                config: pairs,
            };
            let report = offline::run(&project.name, &bytes, project.world, &samples)?;
            print!("{report}");
            Ok(())
        }
    }
}
