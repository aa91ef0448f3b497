//! `SessionRegistry`: one per node. Owns a `SessionService` per context, subscribes to the
//! cluster link and runs the pump task: incoming messages are decoded once and routed by
//! context (a context this node lacks answers GET_ALL_SESSIONS with NO_CONTEXT_MANAGER),
//! membership events go to every context, and a ticker drives sweepers and timeouts.
use super::link::{ClusterLink, LinkEvent};
use super::service::SessionService;
use crate::factory::build_manager;
use crate::manager::ManagerConfig;
use crate::message::{self, SessionMessage};
use rand::SeedableRng;
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
    /// Builds the managers and starts the pump (state transfers begin now). Must run inside
    /// a tokio runtime.
    pub fn start(link: Arc<dyn ClusterLink>, contexts: &[(String, ManagerConfig)]) -> Arc<Self> {
        let local = link.local();
        let mut services = BTreeMap::new();
        for (ctx, cfg) in contexts {
            let rng = rand::rngs::StdRng::from_entropy();
            let manager = build_manager(ctx, local.id, &local.name, cfg.clone(), rng);
            services.insert(
                ctx.clone(),
                Arc::new(SessionService::new(manager, link.clone())),
            );
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
        Arc::new(SessionRegistry {
            link,
            services,
            pump: Mutex::new(Some(pump)),
        })
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
