//! `SessionRegistry`: one per node. Owns a `SessionService` per context, subscribes to the
//! cluster link and runs the pump task: incoming messages are decoded once and routed by
//! context (a context this node lacks answers GET_ALL_SESSIONS with NO_CONTEXT_MANAGER),
//! membership events go to every context, and a ticker drives sweepers and timeouts.
//! Contexts may be added and removed while the node runs ([`SessionRegistry::add_context`]).
use super::link::{ClusterLink, LinkEvent};
use super::persistent::PersistentService;
use super::service::SessionService;
use super::write_behind::WriteBehind;
use crate::factory::build_manager;
use crate::manager::{ManagerConfig, ManagerKind};
use crate::message::{self, SessionMessage};
use crate::persistent::CoreParams;
use crate::quorum::{Quorum, QuorumStatus};
use crate::token::TokenKey;
use rand::SeedableRng;
use shoal_store::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

pub struct SessionRegistry {
    link: Arc<dyn ClusterLink>,
    /// Read by the pump for every message; written only when a context is added or
    /// removed.
    services: Arc<RwLock<Services>>,
    pump: Mutex<Option<JoinHandle<()>>>,
    /// Split-brain protection: does this node see a majority of the expected members?
    /// Fed by the pump, read by every context with `partition = "majority"`.
    quorum: Arc<Mutex<Quorum>>,
    /// The key of the version tokens (read-your-writes), shared by every context; set once
    /// the node knows its cluster secret ([`Self::set_token_key`]). Without one no token is
    /// issued or accepted.
    token_key: Arc<RwLock<Option<TokenKey>>>,
}

impl SessionRegistry {
    /// Builds the managers and starts the pump (state transfers begin now). A persistent
    /// context also gets its store, whose check starts now ([`Self::check_stores`] waits
    /// for it). Fails on settings a persistent context cannot run with, naming the context
    /// and the key. Must run inside a tokio runtime.
    pub fn start(
        link: Arc<dyn ClusterLink>,
        contexts: &[(String, ManagerConfig)],
    ) -> Result<Arc<Self>, String> {
        Self::start_with_stores(link, contexts, &BTreeMap::new())
    }

    /// [`Self::start`], with the stores of some persistent contexts given rather than made
    /// from their `[store]` settings (tests pass the memory twin here).
    pub fn start_with_stores(
        link: Arc<dyn ClusterLink>,
        contexts: &[(String, ManagerConfig)],
        stores: &BTreeMap<String, Arc<dyn Store>>,
    ) -> Result<Arc<Self>, String> {
        let quorum = Arc::new(Mutex::new(Quorum::new(link.local().addr, &[], None)));
        let token_key = Arc::new(RwLock::new(None));
        let mut services = BTreeMap::new();
        for (ctx, cfg) in contexts {
            let service = build_service(&link, ctx, cfg, stores.get(ctx).cloned())?
                .with_quorum(quorum.clone())
                .with_token_key(token_key.clone());
            services.insert(ctx.clone(), Arc::new(service));
        }
        let services = Arc::new(RwLock::new(services));
        let events = link.subscribe();
        let members: Vec<_> = link.members().iter().map(|m| m.id).collect();
        for s in read(&services).values() {
            s.start(&members);
        }
        let tick = contexts
            .iter()
            .map(|(_, c)| c.sweep_interval_ms)
            .min()
            .unwrap_or(1000)
            .clamp(10, 1000);
        let pump = tokio::spawn(pump(
            link.clone(),
            services.clone(),
            quorum.clone(),
            events,
            Duration::from_millis(tick),
        ));
        Ok(Arc::new(SessionRegistry {
            link,
            services,
            pump: Mutex::new(Some(pump)),
            quorum,
            token_key,
        }))
    }

    /// The key every context signs and checks version tokens with (derived from the
    /// cluster secret, the same on every node).
    pub fn set_token_key(&self, key: TokenKey) {
        *self.token_key.write().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }

    /// Who this node expects in the cluster, for split-brain protection (see
    /// [`crate::quorum`]): the static members list (`[cluster.membership] members`, this
    /// node may be on it), else `expected_members`; with neither nothing is enforced. The
    /// members seen now count as seen.
    pub fn expect_members(&self, static_members: &[std::net::SocketAddr], expected: Option<usize>) {
        let mut q = Quorum::new(self.link.local().addr, static_members, expected);
        for m in self.link.members() {
            q.added(m.addr);
        }
        *self.quorum.lock().unwrap_or_else(|p| p.into_inner()) = q;
        for s in self.services() {
            s.update_partition();
        }
    }

    /// This node's view of the expected members now.
    pub fn quorum(&self) -> QuorumStatus {
        self.quorum
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .status()
    }

    /// Adds context `ctx` while the node runs (the farm deployer installing an
    /// application), or keeps it when it already runs with the same settings, so its
    /// sessions survive an application's redeploy. With other settings, the context gets a
    /// new manager (its sessions on this node are dropped; other nodes keep theirs and the
    /// new manager's state transfer fetches them back). A new manager starts its state
    /// transfer now: members that already run `ctx` send their sessions, the others answer
    /// NO_CONTEXT_MANAGER. Until a node adds `ctx`, its pump acknowledges and drops the
    /// context's messages, so a context installed on one node before another converges
    /// through that state transfer. `store` replaces the one the `[store]` settings
    /// describe (tests). The pump's tick stays the one chosen at start (the smallest
    /// `sweep_interval_ms` of the configured contexts, at most 1 s), so a context added
    /// later with a shorter sweep interval is swept at that tick. Returns the context's
    /// manager and whether it is new.
    pub fn add_context(
        &self,
        ctx: &str,
        cfg: &ManagerConfig,
        store: Option<Arc<dyn Store>>,
    ) -> Result<(Arc<SessionService>, bool), String> {
        let service = {
            // Under the write lock: two installs of one context at once make one manager.
            let mut services = write(&self.services);
            if let Some(s) = services.get(ctx) {
                if s.config() == cfg {
                    return Ok((s.clone(), false));
                }
                tracing::info!(context = %ctx, "session manager replaced (settings changed)");
            }
            let service = Arc::new(
                build_service(&self.link, ctx, cfg, store)?
                    .with_quorum(self.quorum.clone())
                    .with_token_key(self.token_key.clone()),
            );
            services.insert(ctx.to_string(), service.clone());
            service
        };
        let members: Vec<_> = self.link.members().iter().map(|m| m.id).collect();
        service.start(&members);
        Ok((service, true))
    }

    /// Removes context `ctx` (an application undeployed): its messages are dropped from
    /// now on, and a joining node asking for its sessions hears NO_CONTEXT_MANAGER. Returns
    /// the manager so the caller can flush its store ([`Self::stop_service_stores`]).
    pub fn remove_context(&self, ctx: &str) -> Option<Arc<SessionService>> {
        write(&self.services).remove(ctx)
    }

    /// Graceful stop of one removed context's store (see [`Self::stop_stores`]).
    pub async fn stop_service_stores(service: &SessionService, deadline: Duration) -> bool {
        let started = std::time::Instant::now();
        let mut all = true;
        if let Some(p) = service.persistent() {
            all &= p.stop(deadline).await;
        }
        if let Some(wb) = service.write_behind() {
            all &= wb.flush(deadline.saturating_sub(started.elapsed())).await;
        }
        all
    }

    /// Waits for the store check of every persistent context (and of every replicated
    /// context with a write-behind store): the first failure, naming
    /// the context, the store, the table or column and what to do.
    pub async fn check_stores(&self, timeout: Duration) -> Result<(), String> {
        for (ctx, s) in self.snapshot() {
            if let Some(p) = s.persistent() {
                p.wait_checked(timeout)
                    .await
                    .map_err(|e| format!("context `{ctx}`: {e}"))?;
            }
            if let Some(wb) = s.write_behind() {
                wb.wait_checked(timeout)
                    .await
                    .map_err(|e| format!("context `{ctx}`: {e}"))?;
            }
        }
        Ok(())
    }

    /// Graceful stop of the persistent contexts: requests are refused, unsaved changes
    /// saved, until every core is idle or `deadline` passes. Replicated contexts with a
    /// store flush their write-behind queues within the same deadline. False on the
    /// deadline.
    pub async fn stop_stores(&self, deadline: Duration) -> bool {
        let started = std::time::Instant::now();
        let mut all = true;
        let services = self.snapshot();
        for (_, s) in &services {
            if let Some(p) = s.persistent() {
                all &= p.stop(deadline).await;
            }
        }
        for (_, s) in &services {
            if let Some(wb) = s.write_behind() {
                all &= wb.flush(deadline.saturating_sub(started.elapsed())).await;
            }
        }
        all
    }

    pub fn service(&self, context: &str) -> Option<Arc<SessionService>> {
        read(&self.services).get(context).cloned()
    }

    /// The contexts' managers now (contexts may be added and removed while the node runs).
    pub fn services(&self) -> std::vec::IntoIter<Arc<SessionService>> {
        read(&self.services)
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn snapshot(&self) -> Vec<(String, Arc<SessionService>)> {
        read(&self.services)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn link(&self) -> &Arc<dyn ClusterLink> {
        &self.link
    }

    /// Waits until every context finished its state transfer; false on timeout.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        for s in self.services() {
            if !s.wait_ready(timeout).await {
                return false;
            }
        }
        true
    }

    /// Stops the pump (the node stops replicating; used for shutdown and crash tests).
    pub fn stop(&self) {
        if let Some(p) = self.pump.lock().unwrap_or_else(|p| p.into_inner()).take() {
            p.abort();
        }
    }
}

impl Drop for SessionRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

type Services = BTreeMap<String, Arc<SessionService>>;

fn read(s: &RwLock<Services>) -> std::sync::RwLockReadGuard<'_, Services> {
    s.read().unwrap_or_else(|p| p.into_inner())
}

fn write(s: &RwLock<Services>) -> std::sync::RwLockWriteGuard<'_, Services> {
    s.write().unwrap_or_else(|p| p.into_inner())
}

/// One context's manager, with its persistent core or write-behind store when its
/// settings ask for one (`store` replaces the one `[store]` describes).
fn build_service(
    link: &Arc<dyn ClusterLink>,
    ctx: &str,
    cfg: &ManagerConfig,
    store: Option<Arc<dyn Store>>,
) -> Result<SessionService, String> {
    let local = link.local();
    let rng = rand::rngs::StdRng::from_entropy();
    let manager = build_manager(ctx, local.id, &local.name, cfg.clone(), rng);
    let mut service = SessionService::new(manager, link.clone());
    let open = |store: Option<Arc<dyn Store>>| match store {
        Some(s) => Ok(s),
        None => cfg
            .store_config()
            .open()
            .map_err(|e| format!("context `{ctx}` [session.store]: {e}")),
    };
    if cfg.manager == ManagerKind::Persistent {
        cfg.persistent
            .validate(cfg.max_inactive_secs)
            .map_err(|e| format!("context `{ctx}` [session.persistent]: {e}"))?;
        let store = open(store)?;
        let params = CoreParams {
            app: ctx.to_string(),
            node: local.id,
            route: local.name.clone(),
            store: store.describe(),
            max_inactive_secs: cfg.max_inactive_secs,
            limits: cfg.limits.clone(),
        };
        let p = PersistentService::start(params, cfg.persistent.clone(), store, link.clone());
        service = service.with_persistent(p);
    } else if cfg.store.is_some() {
        let store = open(store)?;
        let wb = WriteBehind::start(ctx, &local.name, store, cfg.write_behind.clone());
        service = service.with_write_behind(wb);
    }
    Ok(service)
}

/// A membership change: the quorum first for removals (a context that lost the majority
/// stops serving before it reacts), the managers first for additions (a partitioned
/// manager greets the member before the majority comes back, so it waits for its state).
fn membership(
    services: &RwLock<Services>,
    quorum: &Mutex<Quorum>,
    m: &shoal_cluster::Member,
    added: bool,
    graceful: bool,
) {
    let q = || quorum.lock().unwrap_or_else(|p| p.into_inner());
    if !added {
        q().removed(m.addr, graceful);
    }
    read(services)
        .values()
        .for_each(|s| s.on_member(m.id, added));
    if added {
        q().added(m.addr);
    }
    read(services).values().for_each(|s| s.update_partition());
}

async fn pump(
    link: Arc<dyn ClusterLink>,
    services: Arc<RwLock<Services>>,
    quorum: Arc<Mutex<Quorum>>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<LinkEvent>,
    tick: Duration,
) {
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => return,
                Some(LinkEvent::MemberAdded(m)) => membership(&services, &quorum, &m, true, false),
                Some(LinkEvent::MemberRemoved(m)) => membership(&services, &quorum, &m, false, false),
                Some(LinkEvent::MemberLeft(m)) => membership(&services, &quorum, &m, false, true),
                Some(LinkEvent::Message(inc)) => {
                    let env = match message::decode(&inc.payload) {
                        Ok(env) => env,
                        Err(e) => {
                            tracing::warn!(from = ?inc.from, "dropping session message: {e}");
                            if let Some(d) = inc.done { d.complete(Err(e.to_string())) }
                            continue;
                        }
                    };
                    let service = read(&services).get(&env.context).cloned();
                    match service {
                        Some(s) => s.on_message(inc.from, env.msg, inc.done),
                        None => {
                            if let SessionMessage::GetAllSessions { request } = env.msg {
                                let reply = message::encode(&env.context, &SessionMessage::NoContextManager { request });
                                tokio::spawn(link.send(&[inc.from], reply, false));
                            }
                            // Nothing to keep for a context we do not run.
                            if let Some(d) = inc.done { d.complete(Ok(())) }
                        }
                    }
                }
            },
            _ = ticker.tick() => read(&services).values().for_each(|s| s.tick()),
        }
    }
}
