//! `SessionRegistry`: one per node. Owns a `SessionService` per context, subscribes to the
//! cluster link and runs the pump task: incoming messages are decoded once and routed by
//! context (a context this node lacks answers GET_ALL_SESSIONS with NO_CONTEXT_MANAGER),
//! membership events go to every context, and a ticker drives sweepers and timeouts.
use super::link::{ClusterLink, LinkEvent};
use super::persistent::PersistentService;
use super::service::SessionService;
use super::write_behind::WriteBehind;
use crate::factory::build_manager;
use crate::manager::{ManagerConfig, ManagerKind};
use crate::message::{self, SessionMessage};
use crate::persistent::CoreParams;
use rand::SeedableRng;
use shoal_store::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

pub struct SessionRegistry {
    link: Arc<dyn ClusterLink>,
    services: Arc<BTreeMap<String, Arc<SessionService>>>,
    pump: Mutex<Option<JoinHandle<()>>>,
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
        let local = link.local();
        let mut services = BTreeMap::new();
        for (ctx, cfg) in contexts {
            let rng = rand::rngs::StdRng::from_entropy();
            let manager = build_manager(ctx, local.id, &local.name, cfg.clone(), rng);
            let mut service = SessionService::new(manager, link.clone());
            if cfg.manager == ManagerKind::Persistent {
                cfg.persistent
                    .validate(cfg.max_inactive_secs)
                    .map_err(|e| format!("context `{ctx}` [session.persistent]: {e}"))?;
                let store = match stores.get(ctx) {
                    Some(s) => s.clone(),
                    None => cfg
                        .store_config()
                        .open()
                        .map_err(|e| format!("context `{ctx}` [session.store]: {e}"))?,
                };
                let params = CoreParams {
                    app: ctx.clone(),
                    node: local.id,
                    route: local.name.clone(),
                    store: store.describe(),
                    max_inactive_secs: cfg.max_inactive_secs,
                    limits: cfg.limits.clone(),
                };
                let p =
                    PersistentService::start(params, cfg.persistent.clone(), store, link.clone());
                service = service.with_persistent(p);
            } else if cfg.store.is_some() {
                let store = match stores.get(ctx) {
                    Some(s) => s.clone(),
                    None => cfg
                        .store_config()
                        .open()
                        .map_err(|e| format!("context `{ctx}` [session.store]: {e}"))?,
                };
                let wb = WriteBehind::start(ctx, &local.name, store, cfg.write_behind.clone());
                service = service.with_write_behind(wb);
            }
            services.insert(ctx.clone(), Arc::new(service));
        }
        let services = Arc::new(services);
        let events = link.subscribe();
        let members: Vec<_> = link.members().iter().map(|m| m.id).collect();
        for s in services.values() {
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
            events,
            Duration::from_millis(tick),
        ));
        Ok(Arc::new(SessionRegistry {
            link,
            services,
            pump: Mutex::new(Some(pump)),
        }))
    }

    /// Waits for the store check of every persistent context (and of every replicated
    /// context with a write-behind store): the first failure, naming
    /// the context, the store, the table or column and what to do.
    pub async fn check_stores(&self, timeout: Duration) -> Result<(), String> {
        for (ctx, s) in self.services.iter() {
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
        for s in self.services.values() {
            if let Some(p) = s.persistent() {
                all &= p.stop(deadline).await;
            }
        }
        for s in self.services.values() {
            if let Some(wb) = s.write_behind() {
                all &= wb.flush(deadline.saturating_sub(started.elapsed())).await;
            }
        }
        all
    }

    pub fn service(&self, context: &str) -> Option<Arc<SessionService>> {
        self.services.get(context).cloned()
    }

    pub fn services(&self) -> impl Iterator<Item = &Arc<SessionService>> {
        self.services.values()
    }

    pub fn link(&self) -> &Arc<dyn ClusterLink> {
        &self.link
    }

    /// Waits until every context finished its state transfer; false on timeout.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        for s in self.services.values() {
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

async fn pump(
    link: Arc<dyn ClusterLink>,
    services: Arc<BTreeMap<String, Arc<SessionService>>>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<LinkEvent>,
    tick: Duration,
) {
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => return,
                Some(LinkEvent::MemberAdded(m)) => services.values().for_each(|s| s.on_member(m.id, true)),
                Some(LinkEvent::MemberRemoved(m)) => services.values().for_each(|s| s.on_member(m.id, false)),
                Some(LinkEvent::Message(inc)) => {
                    let env = match message::decode(&inc.payload) {
                        Ok(env) => env,
                        Err(e) => {
                            tracing::warn!(from = ?inc.from, "dropping session message: {e}");
                            if let Some(d) = inc.done { d.complete(Err(e.to_string())) }
                            continue;
                        }
                    };
                    match services.get(&env.context) {
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
            _ = ticker.tick() => services.values().for_each(|s| s.tick()),
        }
    }
}
