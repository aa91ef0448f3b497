//! The admin API of a running node: [`NodeBackend`] implements [`shoal_admin::AdminBackend`]
//! by translating between the node's concepts (channel, HTTP contexts and their session
//! services, plugins, [`crate::drain`], [`crate::farm`]) and the API's DTOs. No node
//! behaviour lives here; the rules every backend shares come from `shoal_admin::rules`.
//!
//! Data flow: an API call → `backend.rs` (the trait, one line per method) → the file of its
//! concept below → the node's crates; changes come back as DTOs and as events
//! ([`shoal_admin::rules::EventLog`]).
//! - `members.rs`: membership history (alive / suspect / gone, since, why), health, readiness.
//! - `sessions.rs`: contexts, pipelines, sessions, expiry, counts.
//! - `stats.rs`: manager and valve statistics, reset (a baseline kept here).
//! - `channel.rs`: interceptor stack, send options, per-peer traffic.
//! - `plugins.rs`: plugin operations, always applied on every node.
//! - `drain.rs`: the drain's status and the `drain` event ([`crate::drain`] does the drain).
//! - `deploy.rs`: deployments as DTOs and events ([`crate::farm`] does the deploying).
//! - `metrics.rs`: Prometheus text.
//! - `backend.rs`: the trait implementation, delegating to the above.
//!
//! Reads describe this node's view; every change goes through
//! [`crate::plugins::Plugins::apply_everywhere`] or the session managers' own replication.
mod backend;
mod channel;
mod deploy;
mod drain;
mod members;
mod metrics;
mod plugins;
mod sessions;
mod stats;

use crate::plugins::Plugins;
use members::MemberBook;
use shoal_admin::dto::{now_ms, EventKind};
use shoal_admin::rules::EventLog;
use shoal_cluster::LayerInfo;
use shoal_http::HttpNode;
use shoal_net::Channel;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How long a member that left stays listed as `gone`.
pub const GONE_KEPT: Duration = Duration::from_secs(600);

/// What the backend needs of a node; built by [`crate::start`].
pub struct NodeView {
    pub channel: Channel,
    pub http: Arc<HttpNode>,
    pub plugins: Arc<Plugins>,
    /// The interceptor stack as configured at start: shown if the channel has stopped
    /// (live counters come from `Channel::interceptors`).
    pub layers: Vec<LayerInfo>,
    pub ack_timeout_ms: u64,
    pub http_addr: std::net::SocketAddr,
    /// The drain trigger, shared with whoever runs the drain (the binary).
    pub drain: crate::drain::Drain,
    /// The farm deployer (deployments).
    pub farm: Arc<crate::farm::Farm>,
}

/// The admin backend of one node.
pub struct NodeBackend {
    node: NodeView,
    started_ms: u64,
    state: Mutex<State>,
    events: EventLog,
}

#[derive(Default)]
struct State {
    book: MemberBook,
    /// Operator-facing facts about plugins the registry does not keep.
    plugin_meta: HashMap<String, plugins::PluginMeta>,
    /// Counters at the last reset, per context path.
    baselines: HashMap<String, sessions::Baseline>,
}

impl NodeBackend {
    /// Creates the backend and starts following membership changes (the task ends when
    /// the backend is dropped or the channel stops).
    pub fn start(node: NodeView) -> Arc<NodeBackend> {
        let rx = node.channel.subscribe();
        let backend = Arc::new(NodeBackend {
            started_ms: now_ms(),
            state: Mutex::new(State::default()),
            events: EventLog::new(),
            node,
        });
        {
            let mut s = backend.lock();
            for m in backend.node.channel.members() {
                s.book
                    .added(&m, now_ms(), "member when the admin API started");
            }
        }
        tokio::spawn(members::follow(Arc::downgrade(&backend), rx));
        tokio::spawn(deploy::follow(
            Arc::downgrade(&backend),
            backend.node.farm.clone(),
        ));
        tokio::spawn(drain::announce(
            Arc::downgrade(&backend),
            backend.node.drain.clone(),
        ));
        backend
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn local_name(&self) -> String {
        self.node.channel.local().name.clone()
    }

    /// Records and broadcasts an event.
    fn emit(&self, kind: EventKind, subject: &str, message: String) {
        self.events.emit(kind, subject, message);
    }
}

/// Lets the membership task stop once the backend is gone.
fn upgrade(w: &Weak<NodeBackend>) -> Option<Arc<NodeBackend>> {
    w.upgrade()
}
