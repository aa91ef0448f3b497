//! `shoal config import server.xml [context.xml …]`: a Tomcat cluster configuration turned into
//! a shoal node's TOML file.
//!
//! Reads the `<Cluster>` (SimpleTcpCluster with its Manager template, Channel, Membership,
//! Receiver, Sender, Interceptors, Valves, Deployer, ClusterListeners), `<Engine jvmRoute>`,
//! and the `<Manager>`/`<Store>` of contexts (PersistentManager with FileStore or JDBCStore).
//! Elements are found wherever they sit, so a fragment (seed 000's lone
//! `<Interceptor>` or `<Manager>`) converts as well as a whole `server.xml`.
//!
//! The output is a node file: every key says which Tomcat attribute it comes from, a key
//! whose meaning changed says how (`CHANGED:`), and a closing list names what has no
//! equivalent and why. An element of unknown `className` is a warning naming it, not a
//! failure. The mapping itself is in [`tomcat`]; the file it writes in [`toml_out`].
mod tomcat;
mod toml_out;

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCmd {
    /// Turn Tomcat's server.xml / context.xml cluster settings into a shoal node file.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Tomcat files: server.xml, context.xml, or fragments holding <Cluster>, <Manager> …
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the node file here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Import(a) => import(a),
    }
}

fn import(a: ImportArgs) -> Result<()> {
    let mut texts = Vec::new();
    for f in &a.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        texts.push((f.display().to_string(), text));
    }
    let imported = convert(&texts)?;
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    let text = imported.render();
    match &a.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Converts `(file name, text)` pairs, in order (later files win on the same key).
pub fn convert(texts: &[(String, String)]) -> Result<tomcat::Imported> {
    let mut docs = Vec::new();
    for (name, text) in texts {
        let doc = roxmltree::Document::parse(text).map_err(|e| {
            anyhow::anyhow!(
                "{name}: not well-formed XML: {e} (Tomcat refuses it too; in an attribute, write `&` as `&amp;` and `<` as `&lt;`)"
            )
        })?;
        docs.push((name.as_str(), doc));
    }
    Ok(tomcat::import(&docs))
}

#[cfg(test)]
mod tests;
