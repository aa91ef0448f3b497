//! `shoal balancer`: the sticky-by-route reverse proxy of `shoal-balancer` in front of the nodes.
//!
//! Backends come from `--backend route=host:port` flags, from `--config balancer.toml`, or,
//! with `--join`, from the cluster's membership: the balancer joins the channel as a member
//! with `role = "balancer"` (session managers ignore it) and follows the nodes' `http` meta.
//! A node's ready notice (sent once its sessions are ready, and to every balancer that joins
//! later) → `add_backend` at its `http` address; a member gone → `remove_backend`; a node's
//! drain notice → `mark_draining`.
use anyhow::{anyhow, bail, Context, Result};
use shoal_balancer::{Backend, Balancer, BalancerConfig};
use shoal_cluster::{InterceptorStack, Member};
use shoal_net::{Channel, Incoming, MembershipEvent};
use shoal_node::roles::{DRAIN_NOTICE, META_HTTP, META_ROLE, READY_NOTICE, ROLE_BALANCER};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BalancerArgs {
    /// Address to listen on (overrides `listen` of the config file).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A node: `route=host:port` (route = the node's name); repeatable. Replaces the file's
    /// `[[backends]]`.
    #[arg(long = "backend")]
    pub backends: Vec<String>,
    /// The balancer's TOML file (server/balancer/balancer.example.toml lists every key).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Learn the nodes from the cluster membership (needs --member and the cluster secret).
    #[arg(long)]
    pub join: bool,
    /// Member name of the balancer in the cluster.
    #[arg(long, default_value = "balancer")]
    pub name: String,
    /// Receiver port of the balancer's channel member (0 = any).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Static member `host:port` to join; repeatable.
    #[arg(long = "member")]
    pub members: Vec<String>,
    /// Cluster secret (prefer SHOAL_CLUSTER_SECRET: flags are visible in `ps`).
    #[arg(long)]
    pub secret: Option<String>,
    /// PEM file of the CA the backends' certificates chain to: the balancer then speaks
    /// HTTPS to every backend (overrides `backend_ca` of the config file).
    #[arg(long, value_name = "FILE")]
    pub backend_ca: Option<PathBuf>,
}

pub async fn run(a: BalancerArgs) -> Result<()> {
    // Installed before "ready": a SIGTERM from then on stops the balancer gracefully.
    let mut signals = crate::node::Signals::install()?;
    let mut cfg = match &a.config {
        Some(p) => {
            BalancerConfig::load(p).with_context(|| format!("balancer config {}", p.display()))?
        }
        None => BalancerConfig {
            backends: Vec::new(),
            ..BalancerConfig::default()
        },
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(ca) = &a.backend_ca {
        cfg.backend_ca = Some(ca.clone());
    }
    if !a.backends.is_empty() {
        cfg.backends = a
            .backends
            .iter()
            .map(|b| parse_backend(b))
            .collect::<Result<_>>()?;
    }
    if cfg.backends.is_empty() && !a.join {
        bail!("no backends: give --backend route=host:port, a --config file with [[backends]], or --join with --member");
    }
    let balancer = Balancer::new(cfg.clone()).context("invalid balancer configuration")?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen / listen)", cfg.listen))?;
    let channel = if a.join {
        Some(join(&a, balancer.clone()).await?)
    } else {
        None
    };
    tracing::info!(listen = %cfg.listen, backends = cfg.backends.len(), join = a.join, "balancer started");
    println!(
        "{}",
        serde_json::json!({"event": "ready", "listen": listener.local_addr()?.to_string()})
    );
    balancer.serve(listener, signals.wait()).await?;
    if let Some(ch) = channel {
        ch.shutdown().await;
    }
    Ok(())
}

/// `node1=127.0.0.1:18081` → a backend with route `node1`.
fn parse_backend(s: &str) -> Result<Backend> {
    let (route, addr) = s.split_once('=').ok_or_else(|| {
        anyhow!("--backend {s:?}: expected route=host:port, e.g. node1=127.0.0.1:18081")
    })?;
    if route.is_empty() || addr.is_empty() {
        bail!("--backend {s:?}: expected route=host:port, e.g. node1=127.0.0.1:18081");
    }
    Ok(Backend::new(route, addr))
}

/// Joins the cluster as a member that serves no sessions and follows its membership.
async fn join(a: &BalancerArgs, balancer: Balancer) -> Result<Channel> {
    if a.members.is_empty() {
        bail!("--join needs at least one --member host:port of the cluster");
    }
    let mut cc = shoal_net::ClusterConfig {
        name: a.name.clone(),
        ..Default::default()
    };
    cc.receiver.port = a.port;
    cc.membership.members = a.members.clone();
    cc.meta.insert(META_ROLE.into(), ROLE_BALANCER.into());
    let secret = a.secret.clone().or_else(|| cc.resolve_secret());
    let settings = cc.settings(secret).context("balancer cluster settings")?;
    let (ch, incoming) = Channel::start(settings, InterceptorStack::default())
        .await
        .context("cannot join the cluster channel")?;
    // Nodes announce themselves (READY_NOTICE) when they see this member join.
    let events = ch.subscribe();
    tokio::spawn(follow(events, balancer.clone()));
    tokio::spawn(receive(incoming, ch.clone(), balancer));
    Ok(ch)
}

fn added(b: &Balancer, m: &Member) {
    let Some(http) = m.meta.get(META_HTTP) else {
        return; // a balancer or a channel-only member: nothing to send requests to
    };
    match b.add_backend(Backend::new(m.name.clone(), http.clone())) {
        Ok(()) => tracing::info!(node = %m.name, %http, "backend added (member joined)"),
        Err(e) => tracing::warn!(node = %m.name, "member's http address {http:?} refused: {e}"),
    }
}

async fn follow(mut rx: tokio::sync::broadcast::Receiver<MembershipEvent>, b: Balancer) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match rx.recv().await {
            Ok(MembershipEvent::Added(m)) => {
                tracing::debug!(node = %m.name, "member joined; a backend once it says ready");
            }
            Ok(MembershipEvent::Disappeared { member, reason }) => {
                if b.remove_backend(&member.name) {
                    tracing::info!(node = %member.name, %reason, "backend removed (member gone)");
                }
            }
            Ok(MembershipEvent::Suspected { .. }) => {}
            Err(RecvError::Lagged(n)) => tracing::warn!("{n} membership events missed"),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Ready notices add their sender, drain notices mark it draining; anything else (session or plugin traffic sent
/// to every member) is acknowledged and ignored: a balancer holds no state.
async fn receive(mut incoming: Incoming, ch: Channel, b: Balancer) {
    while let Some(msg) = incoming.recv().await {
        let from = ch.members().into_iter().find(|m| m.id == msg.from);
        match (from, msg.payload.as_slice()) {
            (Some(m), DRAIN_NOTICE) => {
                b.mark_draining(&m.name);
                tracing::info!(node = %m.name, "node draining: no new sessions sent to it");
            }
            (Some(m), READY_NOTICE) => added(&b, &m),
            _ => {}
        }
        if let Some(c) = msg.completion {
            c.complete();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_backend;

    #[test]
    fn backend_flag() {
        let b = parse_backend("node1=127.0.0.1:18081").expect("valid flag");
        assert_eq!(
            (b.route.as_str(), b.addr.as_str()),
            ("node1", "127.0.0.1:18081")
        );
        for bad in ["node1", "=127.0.0.1:1", "node1=", ""] {
            let e = parse_backend(bad).expect_err(bad).to_string();
            assert!(e.contains("route=host:port"), "{bad}: {e}");
        }
    }
}
