//! `shoal ctl deploy`: streams a file to `PUT /api/v1/deployments/{name}` (read in 64 KiB
//! pieces, never whole in memory) with an upload progress bar, then follows the rollout by
//! polling `GET /api/v1/rollouts`: a progress bar per node (bytes received of the size, then
//! staged / active / failed; `progress.rs`). Ends when the PUT answers: the rollout is over,
//! everywhere or nowhere; then one state line per node from `GET /api/v1/deployments/{name}`,
//! and on failure the error names each failed node and its reason.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use shoal_admin::dto::{DeployState, Deployment, NodeDeployState, Rollout};
use shoal_farm::{Kind, Manifest};

use crate::client::{self, Client};
use crate::progress::{self, NodeProgress};
use crate::sign;

/// What `shoal ctl deploy` was asked for.
pub struct DeployArgs<'a> {
    pub file: &'a Path,
    pub name: String,
    pub version: Option<String>,
    pub kind: Kind,
    pub metadata: BTreeMap<String, String>,
    pub sign_key: Option<&'a Path>,
}

/// `key=value` pairs of `--meta` as a map; the error names the bad pair.
pub fn parse_meta(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => bail!("--meta {p:?}: give key=value (e.g. --meta contexts=/app)"),
        }
    }
    Ok(out)
}

pub fn kind_param(kind: Kind) -> &'static str {
    match kind {
        Kind::Plugin => "plugin",
        Kind::Application => "application",
        Kind::File => "file",
    }
}

/// The query of the PUT. The file is hashed first so the rollout lines can be told apart from
/// the previous version's, and so a signature can cover sha256 and size.
fn query(
    args: &DeployArgs<'_>,
    sha256: &shoal_farm::Digest,
    size: u64,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut q = vec![("kind".to_string(), kind_param(args.kind).to_string())];
    // The node's default version is the first 12 hex digits of the sha256; a signature must
    // cover the version the node will build, so it is spelled out when signing.
    let version = args.version.clone().filter(|v| !v.is_empty());
    if let Some(key_file) = args.sign_key {
        let key = sign::read_key(key_file)?;
        let manifest = Manifest {
            name: args.name.clone(),
            version: version
                .clone()
                .unwrap_or_else(|| sha256.to_string()[..12].to_string()),
            kind: args.kind,
            sha256: *sha256,
            size,
            metadata: args.metadata.clone(),
        };
        q.push(("version".into(), manifest.version.clone()));
        q.push(("signature".into(), sign::sign(&manifest, &key)));
    } else if let Some(v) = version {
        q.push(("version".into(), v));
    }
    for (k, v) in &args.metadata {
        q.push((format!("meta.{k}"), v.clone()));
    }
    Ok(q)
}

/// Deploys and follows the rollout; Ok with the final deployment when it is active everywhere.
pub async fn run(client: &Client, args: DeployArgs<'_>, quiet: bool) -> anyhow::Result<Deployment> {
    let (sha256, size) = sign::digest_file(args.file)?;
    let sha_hex = sha256.to_string();
    let query = query(&args, &sha256, size)?;
    let path = format!("/api/v1/deployments/{}", client::segment(&args.name));

    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("uploading {}", args.name));
    let file = tokio::fs::File::open(args.file)
        .await
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let body = file_stream(file, bar.clone());
    let query_ref: Vec<(&str, String)> =
        query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let put = client.put_stream(&path, &query_ref, size, body);
    tokio::pin!(put);

    // Follow the rollout while the PUT is open: a progress bar (or line) per node.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut nodes = NodeProgress::new(tty, quiet);
    let mut seen: BTreeMap<String, (DeployState, Option<String>)> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = loop {
        tokio::select! {
            r = &mut put => break r,
            _ = tick.tick() => {
                // Until every byte is sent the bar is the progress.
                if bar.position() < size {
                    continue;
                }
                if !bar.is_finished() {
                    bar.finish_and_clear();
                    if !quiet {
                        eprintln!("uploaded {} ({size} bytes, sha256 {}); rollout:", args.name, &sha_hex[..12]);
                    }
                }
                if let Ok(rs) = client.get::<Vec<Rollout>>("/api/v1/rollouts", &[]).await {
                    if let Some(r) = progress::find(&rs, &args.name, &sha_hex) {
                        nodes.update(r);
                    }
                }
            }
        }
    };
    bar.finish_and_clear();
    if let Ok(rs) = client.get::<Vec<Rollout>>("/api/v1/rollouts", &[]).await {
        if let Some(r) = progress::find(&rs, &args.name, &sha_hex) {
            nodes.update(r);
        }
    }
    nodes.finish();
    let final_state = client.get::<Deployment>(&path, &[]).await.ok();
    if let Some(d) = &final_state {
        report(&d.nodes, &sha_hex, &mut seen, quiet);
    }
    match result {
        Ok(d) => Ok(d),
        Err(e) => {
            let failed: Vec<String> = final_state
                .iter()
                .flat_map(|d| d.nodes.iter())
                .filter(|n| n.state == DeployState::Failed)
                .map(|n| format!("{}: {}", n.node, n.detail.as_deref().unwrap_or("failed")))
                .collect();
            if failed.is_empty() {
                Err(e.context(format!("deploy of {} failed", args.name)))
            } else {
                Err(e.context(format!(
                    "deploy of {} failed on {}",
                    args.name,
                    failed.join("; ")
                )))
            }
        }
    }
}

/// Prints the nodes whose state changed (only lines about this upload's content, or failures).
fn report(
    nodes: &[NodeDeployState],
    sha_hex: &str,
    seen: &mut BTreeMap<String, (DeployState, Option<String>)>,
    quiet: bool,
) {
    for n in nodes {
        let ours = n.digest.as_deref() == Some(sha_hex);
        if !ours && n.state != DeployState::Failed {
            continue;
        }
        let key = (n.state, n.detail.clone());
        if seen.get(&n.node) == Some(&key) {
            continue;
        }
        seen.insert(n.node.clone(), key);
        if !quiet {
            eprintln!("{}", node_line(n));
        }
    }
}

/// `  node-a     staged    1.2.0` (and the reason when failed).
pub fn node_line(n: &NodeDeployState) -> String {
    let state = serde_json::to_value(n.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut line = format!(
        "  {:<16} {:<8} {}",
        n.node,
        state,
        n.version.as_deref().unwrap_or("-")
    );
    if let Some(d) = &n.detail {
        line.push_str(&format!("  ({d})"));
    }
    line
}

/// The file as a body stream of 64 KiB pieces; each piece advances the bar.
fn file_stream(
    file: tokio::fs::File,
    bar: ProgressBar,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    use tokio::io::AsyncReadExt as _;
    futures::stream::try_unfold((file, bar), |(mut file, bar)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        bar.inc(n as u64);
        Ok(Some((buf, (file, bar))))
    })
}
