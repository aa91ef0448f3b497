//! Starting a node: channel → plugins → sessions + HTTP contexts → demultiplexer.
//! Everything is injected (listeners, config, interceptor stack) so tests run nodes on
//! port 0 in-process and the binary runs the same code.
use crate::admin::{NodeBackend, NodeView};
use crate::apps::AppHosts;
use crate::farm::{Applications, Farm, FarmSettings};
use crate::link::ChannelLink;
use crate::plugins::{ControlOp, PluginEntry, Plugins};
use crate::url_filters::WasmUrlFilters;
use crate::wasm_valves::WasmValves;
use anyhow::{Context, Result};
use shoal_cluster::InterceptorStack;
use shoal_http::{HttpConfig, HttpNode, UrlFilter, Valve};
use shoal_net::{Channel, ChannelSettings, Incoming, MembershipEvent};
use shoal_plugin_host::{
    ClusterFacts, EngineOptions, HttpAppHost, MemberFact, PluginRegistry, PluginWorld, SharedFacts,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What a node is made of, resolved from the config file and flags by the caller.
pub struct NodeParts {
    pub settings: ChannelSettings,
    pub stack: InterceptorStack,
    pub http: HttpConfig,
    pub plugins: Vec<PluginEntry>,
    /// Directory of the config file (relative plugin paths).
    pub config_dir: Option<PathBuf>,
    /// The admin API (tokens); served when `start` is given an admin listener.
    pub admin: Option<shoal_admin::AdminConfig>,
    /// `[farm]`; `None` (embedded nodes, tests): defaults with a fresh directory under the
    /// system temp dir, so nothing survives the process.
    pub farm: Option<crate::farm::FarmSettings>,
}

/// A running node. Dropping it does not stop it: call [`RunningNode::shutdown`].
pub struct RunningNode {
    pub channel: Channel,
    pub link: Arc<ChannelLink>,
    pub http: Arc<HttpNode>,
    pub plugins: Arc<Plugins>,
    pub facts: Arc<SharedFacts>,
    /// The farm deployer (deployments reach every node verified, live everywhere or nowhere).
    pub farm: Arc<Farm>,
    pub http_addr: std::net::SocketAddr,
    /// The admin backend (also when no admin listener was given: embedders may mount it).
    pub admin: Arc<NodeBackend>,
    pub admin_addr: Option<std::net::SocketAddr>,
    /// The drain trigger the admin API pulls (`POST /api/v1/cluster/drain`); whoever runs
    /// the node waits on [`crate::drain::Drain::requested`] and then drains it with
    /// [`crate::drain::run`] (the binary does, the same path as SIGTERM).
    pub drain: crate::drain::Drain,
    stop_http: tokio::sync::watch::Sender<bool>,
    temp_farm_dir: Option<PathBuf>,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
    admin_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Starts a node on `http_listener`; with `admin_listener`, also serves the admin API on it
/// (tokens from `parts.admin`, defaults when absent: every data endpoint then answers 401).
/// `[http.tls]` / `[admin.tls]` make the listeners serve HTTPS; their files are read here,
/// before anything starts, so a missing or mismatched certificate stops the start.
pub async fn start(
    mut parts: NodeParts,
    http_listener: TcpListener,
    admin_listener: Option<TcpListener>,
) -> Result<RunningNode> {
    let dir = parts.config_dir.clone();
    let http_tls = server_tls(parts.http.tls.as_ref(), dir.as_deref(), "[http.tls]")?;
    let admin_tls = match (&admin_listener, &parts.admin) {
        (Some(_), Some(a)) => server_tls(a.tls.as_ref(), dir.as_deref(), "[admin.tls]")?,
        _ => None,
    };
    let http_listener = shoal_tls::Listener::new(http_listener, http_tls)?;
    let admin_listener = admin_listener
        .map(|l| shoal_tls::Listener::new(l, admin_tls))
        .transpose()?;
    let facts = SharedFacts::new(MemberFact::default());
    let node_facts = Arc::new(NodeFacts {
        shared: facts.clone(),
        http: std::sync::OnceLock::new(),
    });
    let registry = Arc::new(
        PluginRegistry::new(EngineOptions::default(), node_facts.clone())
            .context("cannot start the Wasm plugin engine")?,
    );
    let plugins = Plugins::new(registry);
    for entry in &parts.plugins {
        load_entry(&plugins, entry, parts.config_dir.as_deref())?;
    }

    let stack = attach_interceptors(parts.stack, &plugins, &parts.plugins)?;
    // Members with role `node` run the farm deployer (balancers set their own role).
    parts
        .settings
        .meta
        .entry(crate::roles::META_ROLE.into())
        .or_insert_with(|| crate::roles::ROLE_NODE.into());
    // The stack moves into the channel's driver: keep its description for the admin API.
    let layers = stack.describe();
    let ack_timeout_ms = parts.settings.node.ack_timeout.as_millis() as u64;
    // Split-brain protection counts the static list (or `expected_members`).
    let (expected_static, expected_count) = expected_members(&parts.settings.membership);
    // Version tokens (read-your-writes) are signed with a key every node derives alike.
    let token_key =
        shoal_session::TokenKey::new(parts.settings.node.secret.derive(b"session-version-token"));
    let (channel, incoming) = Channel::start(parts.settings, stack)
        .await
        .context("cannot start the cluster channel")?;
    // From here on, interceptor plugins loaded / unloaded / reordered change the live stack.
    plugins.attach_channel(channel.clone());
    facts.set_local(MemberFact::from(channel.local()));
    // Subscribed before the session registry starts, so no membership change is missed.
    let membership = channel.subscribe();
    wait_for_first_member(&channel, JOIN_WAIT).await;
    // Members seen before the subscription produce no event for `follow_membership`.
    facts.set_members(channel.members().iter().map(MemberFact::from).collect());
    let link = ChannelLink::new(channel.clone());
    // Without `[farm]` (embedded nodes, tests) the farm lives in a temporary directory,
    // removed by `shutdown`.
    let temp_farm_dir = parts.farm.is_none().then(|| {
        // Unique per node of this process: in-process nodes of one name may start within
        // one millisecond (same incarnation).
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        std::env::temp_dir().join(format!(
            "shoal-farm-{}-{}-{}-{}",
            channel.local().name,
            std::process::id(),
            channel.local().incarnation,
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    });
    let farm_settings = match (parts.farm.take(), &temp_farm_dir) {
        (Some(s), _) => s,
        (None, dir) => FarmSettings {
            dir: dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::farm::NODE_DIR)),
            ..FarmSettings::default()
        },
    };

    let drain = crate::drain::Drain::new();
    let mut valves: BTreeMap<String, Vec<Arc<dyn Valve>>> = BTreeMap::new();
    for ctx in &parts.http.contexts {
        let v: Arc<dyn Valve> = Arc::new(WasmValves {
            registry: plugins.registry.clone(),
            context: ctx.path.clone(),
            placement: plugins.placement.clone(),
        });
        // The drain mark goes on every response (static balancers read it in their probes).
        valves.insert(ctx.path.clone(), vec![drain.valve(), v]);
    }
    let mut url_filters: BTreeMap<String, Arc<dyn UrlFilter>> = BTreeMap::new();
    for ctx in &parts.http.contexts {
        let f: Arc<dyn UrlFilter> = Arc::new(WasmUrlFilters {
            registry: plugins.registry.clone(),
            context: ctx.path.clone(),
            placement: plugins.placement.clone(),
        });
        url_filters.insert(ctx.path.clone(), f);
    }
    let http = HttpNode::builder(parts.http, link.clone())
        .valves(valves)
        .url_filters(url_filters)
        .start()
        .context("invalid [http] configuration")?;
    let _ = node_facts.http.set(Arc::downgrade(&http));
    http.registry().set_token_key(token_key);
    http.registry()
        .expect_members(&expected_static, expected_count);
    // A persistent context whose store cannot be reached, or whose table lacks a column,
    // stops the node here: the error names the store, the table or column and what to do.
    http.registry()
        .check_stores(STORE_CHECK_WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("session store check failed: {e}"))?;
    // After the HTTP node: `application` deployments install contexts in it.
    let apps = Applications::new(
        AppHosts {
            plugins: plugins.registry.clone(),
            http: HttpAppHost::new().context("cannot start the wasi:http application engine")?,
        },
        http.clone(),
        plugins.clone(),
        drain.clone(),
    );
    let farm = Farm::start(farm_settings, channel.clone(), plugins.clone(), apps)
        .map_err(|e| anyhow::anyhow!("farm deployer: {e}"))?;

    let http_addr = http_listener.local_addr()?;
    // Before the demultiplexer: plugin operations from other members become admin events.
    let admin = NodeBackend::start(NodeView {
        channel: channel.clone(),
        http: http.clone(),
        plugins: plugins.clone(),
        layers,
        ack_timeout_ms,
        http_addr,
        drain: drain.clone(),
        farm: farm.clone(),
    });
    tokio::spawn(demultiplex(
        incoming,
        link.clone(),
        plugins.clone(),
        admin.clone(),
        farm.clone(),
    ));
    tokio::spawn(follow_membership(
        membership,
        link.clone(),
        channel.clone(),
        facts.clone(),
    ));

    // A node serves (and reports ready) only once it holds the cluster's deployments: a
    // rejoining node converges first.
    let ready_wait = std::time::Duration::from_secs(farm.settings().ready_wait_secs);
    if !farm.wait_ready(ready_wait).await {
        tracing::warn!(
            "farm: not converged with the cluster's deployments after {} s ([farm] ready_wait_secs); serving anyway, the readiness check stays false until it does",
            ready_wait.as_secs()
        );
    }

    let (stop_http, mut stopped) = tokio::sync::watch::channel(false);
    let http_task = tokio::spawn(shoal_http::serve(http_listener, http.clone(), async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let (admin_addr, admin_task) = match admin_listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let mut stopped = stop_http.subscribe();
            let task = tokio::spawn(shoal_admin::serve(
                listener,
                admin.clone(),
                parts.admin.unwrap_or_default(),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            ));
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    tracing::info!(
        node = %channel.local().name,
        http = %http_addr,
        admin = ?admin_addr,
        receiver = %channel.local().addr,
        "node started"
    );
    Ok(RunningNode {
        channel,
        link,
        http,
        plugins,
        facts,
        farm,
        http_addr,
        admin,
        admin_addr,
        drain,
        stop_http,
        temp_farm_dir,
        http_task,
        admin_task,
    })
}

/// Loads a listener's certificate (paths relative to the config file's directory).
fn server_tls(
    files: Option<&shoal_tls::TlsFiles>,
    dir: Option<&std::path::Path>,
    what: &str,
) -> Result<Option<shoal_tls::ServerTls>> {
    let Some(files) = files else {
        return Ok(None);
    };
    let files = match dir {
        Some(d) => files.clone().relative_to(d),
        None => files.clone(),
    };
    Ok(Some(shoal_tls::ServerTls::load(&files, what)?))
}

/// What plugins see of the cluster (`host.local-member`, `members`, `active-sessions`):
/// members as the channel reports them, sessions counted live over every context (the
/// HTTP node is set once started; plugins loaded before see 0).
struct NodeFacts {
    shared: Arc<SharedFacts>,
    http: std::sync::OnceLock<std::sync::Weak<HttpNode>>,
}

impl ClusterFacts for NodeFacts {
    fn local_member(&self) -> MemberFact {
        self.shared.local_member()
    }
    fn members(&self) -> Vec<MemberFact> {
        self.shared.members()
    }
    fn active_sessions(&self) -> u64 {
        let Some(http) = self.http.get().and_then(|w| w.upgrade()) else {
            return 0;
        };
        let sessions = http
            .registry()
            .services()
            .map(|s| s.stats().active_sessions);
        sessions.sum()
    }
}

/// Channel-interceptor plugins of the config join the bottom of the stack (closest to the
/// network), in config order, before the channel starts. Once it runs, the driver owns the
/// stack and `Plugins` changes it through the channel (`Plugins::attach_channel`): a plugin
/// loaded later joins at the bottom, an unloaded one leaves, a reorder moves the `wasm:`
/// layers among themselves.
fn attach_interceptors(
    mut stack: InterceptorStack,
    plugins: &Plugins,
    entries: &[PluginEntry],
) -> Result<InterceptorStack> {
    for entry in entries {
        let info = plugins.registry.info(&entry.name)?;
        if info.world != PluginWorld::ChannelInterceptor {
            continue;
        }
        let layer = plugins.registry.interceptor(&entry.name)?;
        stack.push(Box::new(layer)).with_context(|| {
            format!(
                "[[plugin]] {}: cannot join the interceptor stack",
                entry.name
            )
        })?;
    }
    Ok(stack)
}

/// How long a stopping node lets its persistent contexts save what they hold.
const STORE_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a starting node waits for its persistent contexts' store checks.
const STORE_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a starting node waits for the cluster to answer before it decides it is alone
/// (Tomcat's McastService waits similarly). Without it, a node whose HTTP port answers before
/// its channel has found the others starts its session managers "alone" and answers
/// `no-session` for sessions the cluster holds: users would be logged out by a join.
pub const JOIN_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Returns once a member is known or `wait` has passed. Members found later still bring
/// their state (DeltaManager asks the first member that appears), but requests served in
/// the meantime would not see it.
async fn wait_for_first_member(channel: &Channel, wait: std::time::Duration) {
    let has_peer = || channel.members().iter().any(crate::roles::serves_sessions);
    if has_peer() {
        return;
    }
    let mut rx = channel.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if has_peer() {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => {
                tracing::info!(
                    "no member answered within {} ms: starting as the first node of the cluster",
                    wait.as_millis()
                );
                return;
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
            Ok(_) => {}
        }
    }
}

fn load_entry(plugins: &Plugins, entry: &PluginEntry, dir: Option<&std::path::Path>) -> Result<()> {
    let path = crate::plugins::resolve_path(entry, dir)
        .map_err(|e| anyhow::anyhow!("[[plugin]] {}: {e}", entry.name))?;
    let bytes = std::fs::read(&path)
        .with_context(|| format!("[[plugin]] {}: cannot read {}", entry.name, path.display()))?;
    let spec = crate::plugins::spec(entry);
    let op = ControlOp::Load {
        name: entry.name.clone(),
        bytes,
        config: spec.config,
        limits: spec.limits,
        policy: spec.policy,
        world: spec.world,
        contexts: entry.contexts.clone(),
    };
    plugins
        .apply_local(&op)
        .with_context(|| format!("[[plugin]] {} ({})", entry.name, path.display()))?;
    if !entry.enabled {
        plugins.apply_local(&ControlOp::SetEnabled {
            name: entry.name.clone(),
            enabled: false,
        })?;
    }
    Ok(())
}

/// Hands each received message to its consumer by its magic prefix.
async fn demultiplex(
    mut incoming: Incoming,
    link: Arc<ChannelLink>,
    plugins: Arc<Plugins>,
    admin: Arc<NodeBackend>,
    farm: Arc<Farm>,
) {
    while let Some(msg) = incoming.recv().await {
        if shoal_session::is_session_payload(&msg.payload) {
            link.deliver(msg);
        } else if crate::farm::is_farm(&msg.payload) {
            farm.deliver(msg.from, msg.payload);
            if let Some(c) = msg.completion {
                c.complete();
            }
        } else if ControlOp::is_control(&msg.payload) {
            let result = ControlOp::decode(&msg.payload).and_then(|op| {
                let r = plugins
                    .apply_local(&op)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                admin.remote_operation(&op, msg.from, &r);
                r
            });
            if let Err(e) = &result {
                tracing::warn!("control operation from a member failed here: {e}");
            }
            if let Some(c) = msg.completion {
                match result {
                    Ok(()) => c.complete(),
                    Err(e) => c.fail(e),
                }
            }
        } else {
            tracing::warn!(len = msg.payload.len(), "dropped a message of unknown kind");
            if let Some(c) = msg.completion {
                c.fail("unknown message kind (run the same shoal version on all nodes)");
            }
        }
    }
}

/// The members split-brain protection expects: the static list's addresses (names
/// resolved now; one that does not resolve is logged and not counted), or the
/// `expected_members` count for multicast and DNS membership.
fn expected_members(m: &shoal_net::MembershipConfig) -> (Vec<std::net::SocketAddr>, Option<usize>) {
    use std::net::ToSocketAddrs;
    if m.provider != shoal_net::Provider::Static {
        return (Vec::new(), m.expected_members);
    }
    let mut addrs = Vec::new();
    for s in &m.members {
        match s.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => addrs.push(a),
            _ => tracing::warn!(
                member = %s,
                "[cluster.membership] members: cannot resolve {s}; split-brain protection does not count it"
            ),
        }
    }
    (addrs, None)
}

async fn follow_membership(
    mut rx: tokio::sync::broadcast::Receiver<MembershipEvent>,
    link: Arc<ChannelLink>,
    channel: Channel,
    facts: Arc<SharedFacts>,
) {
    loop {
        match rx.recv().await {
            Ok(ev) => {
                link.membership(&ev);
                facts.set_members(channel.members().iter().map(MemberFact::from).collect());
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::error!(
                    "{n} membership events were missed; sessions may lag until the next change"
                );
            }
            Err(_) => return,
        }
    }
}

impl RunningNode {
    /// Stops serving HTTP, leaves the cluster and stops the channel.
    pub async fn shutdown(self) {
        let _ = self.stop_http.send(true);
        let _ = self.http_task.await;
        if let Some(t) = self.admin_task {
            let _ = t.await;
        }
        // HTTP no longer takes requests and the running ones ended: persistent contexts save
        // what they hold (`save_on_restart`, compare-and-set) before the node goes.
        if !self.http.registry().stop_stores(STORE_STOP_WAIT).await {
            tracing::warn!(
                "session stores: unsaved changes remain after {} s (each is logged with its session)",
                STORE_STOP_WAIT.as_secs()
            );
        }
        // Leave before the session managers stop: members drop this node first, so none
        // sends it a replication it would no longer process (their writes would 503).
        self.channel.leave().await;
        self.http.stop();
        self.channel.shutdown().await;
        if let Some(dir) = &self.temp_farm_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
