//! `shoal ctl …`: the admin API from a terminal. Every command is one or two REST calls; the
//! output is a plain table, or the API's JSON with `--json`. Its own crate so that a node
//! (shoal-admin, shoal-node) links no HTTP client and no progress bars.
//!
//! Module map (data flows from the command line to a node's admin API and back to stdout):
//! - `lib.rs`: [`Ctl`] and its subcommands (clap), and [`run`], one arm per command.
//! - `client.rs`: the HTTP client (reqwest, plain HTTP): bearer token, problem+json errors
//!   as [`shoal_admin::ApiError`], the SSE event stream, an upload progress bar.
//! - `deploy.rs`: `shoal ctl deploy`: the file streamed with a progress bar, then the
//!   rollout followed until it ends, then a state line per node.
//! - `progress.rs`: the rollout's progress per node (`GET /api/v1/rollouts`): bars redrawn
//!   in place on a terminal, plain periodic lines otherwise.
//! - `bundle.rs`: `deploy --static DIR`: an application's component and static files packed
//!   into one reproducible tar.
//! - `sign.rs`: `shoal ctl keygen` and `deploy --sign-key` (ed25519 over the manifest, as the
//!   nodes verify it).
//! - `drain.rs`: `shoal ctl drain`: starts a node's drain and follows it until its admin API
//!   stops answering.
//! - `print.rs`: tables from the API's DTOs ([`shoal_admin::dto`]).
//!
//! The `shoal` binary mounts [`Ctl`] as its `ctl` subcommand and calls [`run`].

mod bundle;
mod client;
mod deploy;
mod drain;
mod print;
mod progress;
mod sign;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use client::Client;
use shoal_admin::dto::*;

/// Options and command of `shoal ctl`.
#[derive(Debug, Args)]
pub struct Ctl {
    /// Admin API of any node (plugin and deploy operations apply to the whole cluster).
    #[arg(
        long,
        env = "SHOAL_ADMIN_URL",
        default_value = "http://127.0.0.1:19081",
        global = true
    )]
    pub url: String,
    /// Bearer token (admin, or read-only for reads).
    #[arg(long, env = "SHOAL_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM file of the CA that signed the admin API's certificate (an `https://` --url);
    /// without it, the system's trusted roots are used.
    #[arg(long, env = "SHOAL_ADMIN_CA", value_name = "FILE", global = true)]
    pub ca: Option<std::path::PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Local node, health, readiness and members at a glance.
    Status,
    /// Members with state, since when and why.
    Members,
    /// Browse, inspect and expire sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// List and manage Wasm plugins (applied on every node).
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Deploy an artifact to every node (everywhere or nowhere): the file is streamed with a
    /// progress bar, then each node's state is shown until the rollout ends.
    Deploy {
        file: PathBuf,
        /// Artifact name (default: the file name).
        #[arg(long)]
        name: Option<String>,
        /// Version label (default: the first 12 hex digits of the sha256).
        #[arg(long)]
        version: Option<String>,
        #[arg(long, value_enum, default_value_t = DeployKind::Plugin)]
        kind: DeployKind,
        /// Metadata `key=value` (repeat), e.g. `--meta contexts=/app`.
        #[arg(long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
        /// Sign the manifest with this key (written by `shoal ctl keygen`).
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        /// With `--kind application`: serve the files of DIR under the context path. The
        /// component and DIR are packed into one bundle (a tar: `component.wasm`, `static/…`)
        /// deployed, verified and activated as one artifact.
        #[arg(long = "static", value_name = "DIR")]
        static_dir: Option<PathBuf>,
    },
    /// Undeploy an artifact from every node.
    Undeploy { name: String },
    /// Make the previous version of a deployment current again on every node.
    Rollback { name: String },
    /// Write an ed25519 key pair for signing artifacts into a directory: `farm-signing.key`
    /// (secret, for --sign-key) and `farm-signing.pub` (for `[farm] trusted_keys`).
    Keygen { dir: PathBuf },
    /// Deployed artifacts and their state per node.
    Deployments,
    /// Contexts with manager, replication mode, pipeline and session store status; `contexts
    /// pipeline CONTEXT [--set a,b,c]` shows or changes one context's pipeline order.
    Contexts {
        #[command(subcommand)]
        command: Option<ContextsCommand>,
    },
    /// A context's manager and valve counters and its session store (state, queue, lag,
    /// latency, conflicts).
    Stats { context: String },
    /// Drain a node for a rolling deploy, as SIGTERM does (no new sessions, balancers told,
    /// sessions handed over, process exits), and follow it until the node is gone.
    Drain {
        /// Admin API of the node to drain (default: --url).
        #[arg(long, value_name = "URL")]
        node: Option<String>,
        /// Stop following after this many seconds (the drain itself goes on).
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Follow cluster events (membership, deploy, plugins) until interrupted.
    Events {
        /// Stop after this many events (default: follow forever).
        #[arg(long)]
        count: Option<u64>,
    },
}

/// What a deployed artifact becomes on each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeployKind {
    Plugin,
    Application,
    File,
}

impl From<DeployKind> for shoal_farm::Kind {
    fn from(k: DeployKind) -> Self {
        match k {
            DeployKind::Plugin => shoal_farm::Kind::Plugin,
            DeployKind::Application => shoal_farm::Kind::Application,
            DeployKind::File => shoal_farm::Kind::File,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ContextsCommand {
    /// A context's pipeline in request order; with --set, the new order of its stages
    /// (every stage named once; only plugin stages move, between ReplicationValve and app).
    Pipeline {
        /// Context name (`app` for `/app`).
        context: String,
        /// The new order, comma-separated, e.g. `--set SessionValve,UrlFilter,ReplicationValve,hello,bench-app,app`.
        #[arg(long, value_delimiter = ',', value_name = "STAGE,STAGE,...")]
        set: Option<Vec<String>>,
    },
}

/// Failure policy of a plugin (`--policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    FailOpen,
    FailClosed,
    Reload,
}

impl PolicyArg {
    fn query_value(self) -> &'static str {
        match self {
            PolicyArg::FailOpen => "fail-open",
            PolicyArg::FailClosed => "fail-closed",
            PolicyArg::Reload => "reload",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions of a context (paged and filtered).
    List {
        context: String,
        #[arg(long)]
        prefix: Option<String>,
        /// Only sessions whose primary or a backup is on this node.
        #[arg(long)]
        node: Option<String>,
        /// Only sessions idle for at least this many seconds.
        #[arg(long)]
        min_idle: Option<u64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// One session with its attributes.
    Show { context: String, id: String },
    /// Expire one session, or all of the context with --all.
    Expire {
        context: String,
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

// Parsed once per process: the size of `Load` (every flag of a load) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Plugins with generation, WIT version, world, state and failures.
    List,
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
    /// New instances from the same component (clears a failed state).
    Reload {
        name: String,
    },
    Unload {
        name: String,
    },
    /// Load a component file on every node (or replace one with --replace).
    ///
    /// A valve goes first among its context's plugins, so it runs before the context's
    /// application (also a Wasm one); --before/--after choose another place. With
    /// --replace, every option given applies (the others keep their current value).
    Load {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// channel-interceptor, valve, url-filter or deploy-hook.
        #[arg(long)]
        world: String,
        /// Context name, or `channel` for an interceptor.
        #[arg(long)]
        attach: Option<String>,
        /// Place it just before this pipeline stage (a plugin, or `app` for last).
        #[arg(long, value_name = "STAGE", conflicts_with = "after")]
        before: Option<String>,
        /// Place it just after this pipeline stage (a plugin, or `ReplicationValve` for first).
        #[arg(long, value_name = "STAGE")]
        after: Option<String>,
        /// Configuration as a JSON object.
        #[arg(long)]
        config: Option<String>,
        /// What a failure of the plugin does [default on load: fail-closed].
        #[arg(long, value_enum)]
        policy: Option<PolicyArg>,
        /// Memory limit per instance in MiB [default on load: 16].
        #[arg(long, value_name = "MIB")]
        memory_mib: Option<u32>,
        /// Time limit per call in milliseconds [default on load: 100].
        #[arg(long, value_name = "MS")]
        call_timeout_ms: Option<u64>,
        /// Instances at most [default on load: 4].
        #[arg(long, value_name = "N")]
        max_instances: Option<u32>,
        /// A label of your choosing shown next to the name (e.g. a build id).
        #[arg(long)]
        label: Option<String>,
        /// Replace a loaded plugin of the same name (hot reload, no restart).
        #[arg(long)]
        replace: bool,
    },
}

/// Runs one `shoal ctl` command against `ctl.url`.
pub async fn run(ctl: Ctl) -> anyhow::Result<()> {
    let client = Client::new(&ctl.url, ctl.token.clone(), ctl.ca.as_deref())?;
    let json = ctl.json;
    match ctl.command {
        CtlCommand::Status => status(&client, json).await,
        CtlCommand::Members => {
            let members: Vec<Member> = client.get("/api/v1/cluster/members", &[]).await?;
            print::output(json, &members, print::members)
        }
        CtlCommand::Sessions(cmd) => sessions(&client, json, cmd).await,
        CtlCommand::Plugins(cmd) => plugins(&client, json, cmd).await,
        CtlCommand::Deploy {
            file,
            name,
            version,
            kind,
            meta,
            sign_key,
            static_dir,
        } => {
            let name = match name {
                Some(n) => n,
                None => file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_owned)
                    .with_context(|| {
                        format!("{}: give the artifact a name with --name", file.display())
                    })?,
            };
            // A bundle is packed to a temporary file, removed when the deploy ends.
            let bundle = match &static_dir {
                None => None,
                Some(_) if kind != DeployKind::Application => {
                    anyhow::bail!("--static needs --kind application (static files are served under an application's context)")
                }
                Some(dir) => {
                    let out = std::env::temp_dir()
                        .join(format!("shoal-bundle-{}-{name}.tar", std::process::id()));
                    let n = bundle::pack(&file, dir, &out)?;
                    if !json {
                        eprintln!(
                            "packed {} and {n} static files of {} into one bundle",
                            file.display(),
                            dir.display()
                        );
                    }
                    Some(TempFile(out))
                }
            };
            let file = bundle.as_ref().map_or(file, |b| b.0.clone());
            let args = deploy::DeployArgs {
                file: &file,
                name,
                version,
                kind: kind.into(),
                metadata: deploy::parse_meta(&meta)?,
                sign_key: sign_key.as_deref(),
            };
            let d = deploy::run(&client, args, json).await?;
            print::output(json, &d, print::deployment)
        }
        CtlCommand::Rollback { name } => {
            let path = format!("/api/v1/deployments/{}/rollback", client::segment(&name));
            let d: Deployment = client.call(reqwest::Method::POST, &path).await?;
            print::output(json, &d, print::deployment)
        }
        CtlCommand::Keygen { dir } => {
            let (secret, public) = sign::keygen(&dir)?;
            let pk = std::fs::read_to_string(&public)
                .with_context(|| format!("cannot read {}", public.display()))?;
            println!(
                "secret key {} (keep it off the nodes; pass it to --sign-key)",
                secret.display()
            );
            println!("public key {}", public.display());
            println!(
                "add to every node's config:\n[farm]\ntrusted_keys = [\"{}\"]",
                pk.trim()
            );
            Ok(())
        }
        CtlCommand::Undeploy { name } => {
            client
                .send(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/deployments/{}", client::segment(&name)),
                )
                .await?;
            println!("{name} undeployed from every node");
            Ok(())
        }
        CtlCommand::Drain { node, timeout_secs } => {
            let target = match node {
                Some(url) => Client::new(&url, ctl.token.clone(), ctl.ca.as_deref())?,
                None => client,
            };
            drain::run(&target, json, std::time::Duration::from_secs(timeout_secs)).await
        }
        CtlCommand::Contexts {
            command: Some(ContextsCommand::Pipeline { context, set }),
        } => pipeline(&client, json, &context, set).await,
        CtlCommand::Contexts { command: None } => {
            let list: Vec<Context> = client.get("/api/v1/contexts", &[]).await?;
            if json {
                return print::output(json, &list, |_| String::new());
            }
            // One stats call per context for its store line.
            let mut stores = Vec::with_capacity(list.len());
            for c in &list {
                let stats = manager_stats(&client, &c.name).await?;
                stores.push(stats.store);
            }
            println!("{}", print::contexts(&list, &stores));
            Ok(())
        }
        CtlCommand::Stats { context } => {
            let stats = manager_stats(&client, &context).await?;
            print::output(json, &stats, print::stats)
        }
        CtlCommand::Events { count } => {
            client
                .follow_events(count, |e| {
                    if json {
                        println!("{}", serde_json::to_string(e).unwrap_or_default());
                    } else {
                        println!(
                            "{} {:<14} {}",
                            rfc3339(e.at_ms),
                            print::kind(e.kind),
                            e.message
                        );
                    }
                })
                .await
        }
        CtlCommand::Deployments => {
            let list: Vec<Deployment> = client.get("/api/v1/deployments", &[]).await?;
            print::output(json, &list, |l| {
                l.iter()
                    .map(print::deployment)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

async fn manager_stats(client: &Client, context: &str) -> anyhow::Result<ManagerStats> {
    let path = format!("/api/v1/contexts/{}/stats", client::segment(context));
    client.get(&path, &[]).await
}

fn read(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

async fn status(client: &Client, json: bool) -> anyhow::Result<()> {
    let local: LocalNode = client.get("/api/v1/cluster/local", &[]).await?;
    let health: Health = client.get("/api/v1/health", &[]).await?;
    let ready: Readiness = client.get_any_status("/api/v1/ready").await?;
    let members: Vec<Member> = client.get("/api/v1/cluster/members", &[]).await?;
    if json {
        let all = serde_json::json!({"local": local, "health": health, "ready": ready, "members": members});
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "node     {} ({}), shoal {}",
        local.member.name, local.member.address, local.version
    );
    println!("contexts {}", local.contexts.join(", "));
    println!("health   {}", health.status);
    let waits: Vec<_> = ready
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.detail.as_str())
        .collect();
    println!(
        "ready    {}{}",
        ready.ready,
        if waits.is_empty() {
            String::new()
        } else {
            format!(" ({})", waits.join("; "))
        }
    );
    println!("\n{}", print::members(&members));
    Ok(())
}

async fn sessions(client: &Client, json: bool, cmd: SessionsCommand) -> anyhow::Result<()> {
    match cmd {
        SessionsCommand::List {
            context,
            prefix,
            node,
            min_idle,
            limit,
            offset,
        } => {
            let mut query = vec![("limit", limit.to_string()), ("offset", offset.to_string())];
            query.extend(prefix.map(|p| ("prefix", p)));
            query.extend(node.map(|n| ("node", n)));
            query.extend(min_idle.map(|m| ("min_idle_secs", m.to_string())));
            let path = format!("/api/v1/contexts/{}/sessions", client::segment(&context));
            let page: SessionPage = client.get(&path, &query).await?;
            print::output(json, &page, print::sessions)
        }
        SessionsCommand::Show { context, id } => {
            let path = format!(
                "/api/v1/contexts/{}/sessions/{}",
                client::segment(&context),
                client::segment(&id)
            );
            let s: SessionDetail = client.get(&path, &[]).await?;
            print::output(json, &s, print::session)
        }
        SessionsCommand::Expire { context, id, all } => {
            let ctx = client::segment(&context);
            if all {
                let n: ExpiredCount = client
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/api/v1/contexts/{ctx}/sessions"),
                    )
                    .await?;
                println!("{} sessions of {context} expired", n.expired);
            } else if let Some(id) = id {
                client
                    .send(
                        reqwest::Method::DELETE,
                        &format!("/api/v1/contexts/{ctx}/sessions/{}", client::segment(&id)),
                    )
                    .await?;
                println!("session {id} expired");
            }
            Ok(())
        }
    }
}

async fn plugins(client: &Client, json: bool, cmd: PluginsCommand) -> anyhow::Result<()> {
    let action =
        |name: &str, verb: &str| format!("/api/v1/plugins/{}/{verb}", client::segment(name));
    let plugin: Plugin = match cmd {
        PluginsCommand::List => {
            let list: Vec<Plugin> = client.get("/api/v1/plugins", &[]).await?;
            warn_placement(&list);
            return print::output(json, &list, print::plugins);
        }
        PluginsCommand::Enable { name } => {
            client
                .call(reqwest::Method::POST, &action(&name, "enable"))
                .await?
        }
        PluginsCommand::Disable { name } => {
            client
                .call(reqwest::Method::POST, &action(&name, "disable"))
                .await?
        }
        PluginsCommand::Reload { name } => {
            client
                .call(reqwest::Method::POST, &action(&name, "reload"))
                .await?
        }
        PluginsCommand::Unload { name } => {
            client
                .send(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/plugins/{}", client::segment(&name)),
                )
                .await?;
            println!("plugin {name} unloaded from every node");
            return Ok(());
        }
        PluginsCommand::Load {
            file,
            name,
            world,
            attach,
            before,
            after,
            config,
            policy,
            memory_mib,
            call_timeout_ms,
            max_instances,
            label,
            replace,
        } => {
            let mut query = vec![
                ("name", name),
                ("world", world),
                ("replace", replace.to_string()),
            ];
            query.extend(attach.map(|a| ("attach", a)));
            query.extend(before.map(|b| ("before", b)));
            query.extend(after.map(|a| ("after", a)));
            query.extend(config.map(|c| ("config", c)));
            query.extend(policy.map(|p| ("policy", p.query_value().to_owned())));
            query.extend(memory_mib.map(|m| ("memory_mib", m.to_string())));
            query.extend(call_timeout_ms.map(|t| ("call_timeout_ms", t.to_string())));
            query.extend(max_instances.map(|n| ("max_instances", n.to_string())));
            query.extend(label.map(|l| ("label", l)));
            client
                .upload(
                    reqwest::Method::POST,
                    "/api/v1/plugins",
                    &query,
                    read(&file)?,
                )
                .await?
        }
    };
    warn_placement(std::slice::from_ref(&plugin));
    print::output(json, &vec![plugin], print::plugins)
}

/// Warnings of the node about where plugins are placed, on stderr (so `--json` output
/// stays parseable).
fn warn_placement(plugins: &[Plugin]) {
    for w in plugins.iter().flat_map(|p| &p.warnings) {
        eprintln!("warning: {w}");
    }
}

/// `ctl contexts pipeline CONTEXT [--set ...]`.
async fn pipeline(
    client: &Client,
    json: bool,
    context: &str,
    set: Option<Vec<String>>,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/contexts/{}", client::segment(context));
    let ctx: Context = match set {
        None => client.get(&path, &[]).await?,
        Some(order) => {
            let order: Vec<String> = order.into_iter().map(|s| s.trim().to_owned()).collect();
            client
                .put_json(&format!("{path}/pipeline"), &ReorderRequest { order })
                .await?
        }
    };
    let plugins: Vec<Plugin> = client.get("/api/v1/plugins", &[]).await?;
    let here: Vec<Plugin> = plugins
        .into_iter()
        .filter(|p| {
            ctx.pipeline
                .iter()
                .any(|s| s.plugin.as_ref() == Some(&p.name))
        })
        .collect();
    warn_placement(&here);
    print::output(json, &ctx, print::pipeline)
}

/// A file removed when dropped (the packed bundle of `deploy --static`).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
