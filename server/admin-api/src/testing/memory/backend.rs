//! The [`AdminBackend`] implementation of [`MemoryBackend`]: each call takes the lock, does
//! its (synchronous) work and returns a ready future.

use tokio::sync::broadcast;

use super::{data, done, ops, MemoryBackend};
use crate::{
    backend::{AdminBackend, ArtifactBody, BackendError, BackendResult},
    dto::*,
    rules,
};
impl AdminBackend for MemoryBackend {
    fn local_node(&self) -> BackendResult<'_, LocalNode> {
        let s = self.lock();
        let member = s.members.iter().find(|m| m.local).cloned();
        let contexts = s.contexts.iter().map(|c| c.context.name.clone()).collect();
        done(
            member
                .map(|member| LocalNode {
                    member,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    started_ms: s.started_ms,
                    contexts,
                })
                .ok_or_else(|| {
                    BackendError::Internal("no local member in the fake cluster".into())
                }),
        )
    }

    fn members(&self) -> BackendResult<'_, Vec<Member>> {
        done(Ok(self.lock().members.clone()))
    }

    fn health(&self) -> BackendResult<'_, Health> {
        let s = self.lock();
        let alive = MemberState::Alive.count_in(&s.members);
        let mut checks = vec![
            Check {
                name: "membership".into(),
                ok: alive > 1,
                detail: format!("{alive} of {} members alive", s.members.len()),
            },
            Check {
                name: "channel".into(),
                ok: true,
                detail: "receiver listening on 127.0.0.1:4000".into(),
            },
        ];
        // As the node: one `store:<path>` check per context with a store.
        for c in &s.contexts {
            if let Some(st) = &c.stats.store {
                checks.push(Check {
                    name: format!("store:{}", c.context.path),
                    ok: st.degraded.is_none(),
                    detail: match &st.degraded {
                        None => format!(
                            "{} reachable, {} changes queued",
                            st.describe, st.queue_depth
                        ),
                        Some(w) => format!(
                            "{} down: {w}; {} changes queued",
                            st.describe, st.queue_depth
                        ),
                    },
                });
            }
        }
        done(Ok(rules::health(s.drain.is_some(), checks)))
    }

    fn readiness(&self) -> BackendResult<'_, Readiness> {
        let (transferred, draining) = {
            let s = self.lock();
            (s.ready, s.drain.is_some())
        };
        let detail = if transferred {
            "state transfer complete"
        } else {
            "waiting for state transfer from node2"
        };
        let checks = vec![Check {
            name: "state-transfer".into(),
            ok: transferred,
            detail: detail.into(),
        }];
        let drain = draining.then_some("in-memory cluster: recorded only, nothing stops");
        done(Ok(rules::readiness(drain, checks)))
    }

    fn drain_status(&self) -> BackendResult<'_, DrainStatus> {
        done(Ok(self.drain_view()))
    }

    fn start_drain(&self) -> BackendResult<'_, DrainStatus> {
        self.start_drain_fake()
    }

    fn contexts(&self) -> BackendResult<'_, Vec<Context>> {
        done(Ok(self
            .lock()
            .contexts
            .iter()
            .map(Self::context_view)
            .collect()))
    }

    fn context(&self, name: &str) -> BackendResult<'_, Context> {
        let mut s = self.lock();
        done(Self::context_mut(&mut s, name).map(|c| Self::context_view(c)))
    }

    fn reorder_pipeline(&self, context: &str, order: Vec<String>) -> BackendResult<'_, Context> {
        let mut s = self.lock();
        let r = Self::context_mut(&mut s, context).and_then(|c| {
            ops::reorder(
                &mut c.context.pipeline,
                &order,
                |st| &st.name,
                "pipeline stage",
            )?;
            Ok(Self::context_view(c))
        });
        if r.is_ok() {
            self.emit(
                &mut s,
                EventKind::Plugin,
                context,
                format!("pipeline of {context} reordered: {}", order.join(" → ")),
            );
        }
        done(r)
    }

    fn sessions(&self, context: &str, query: SessionQuery) -> BackendResult<'_, SessionPage> {
        let mut s = self.lock();
        done(Self::context_mut(&mut s, context).map(|c| ops::page(c, &query, now_ms())))
    }

    fn session(&self, context: &str, id: &str) -> BackendResult<'_, SessionDetail> {
        let mut s = self.lock();
        done(Self::context_mut(&mut s, context).and_then(|c| {
            let fake = c
                .sessions
                .get(id)
                .ok_or_else(|| BackendError::not_found("session", id))?;
            Ok(SessionDetail {
                session: rules::with_idle(&fake.summary, now_ms()),
                attributes: fake
                    .attributes
                    .iter()
                    .map(|(n, v)| Attribute::from_bytes(n, v))
                    .collect(),
            })
        }))
    }

    fn expire_session(&self, context: &str, id: &str) -> BackendResult<'_, ()> {
        let mut s = self.lock();
        let r = Self::context_mut(&mut s, context).and_then(|c| {
            c.sessions
                .remove(id)
                .ok_or_else(|| BackendError::not_found("session", id))?;
            c.stats.sessions_expired += 1;
            c.stats.sessions_active = c.sessions.len() as u64;
            Ok(())
        });
        if r.is_ok() {
            self.emit(
                &mut s,
                EventKind::Session,
                id,
                format!("session {id} of {context} expired by an operator"),
            );
        }
        done(r)
    }

    fn expire_all(&self, context: &str) -> BackendResult<'_, u64> {
        let mut s = self.lock();
        let r = Self::context_mut(&mut s, context).map(|c| {
            let n = c.sessions.len() as u64;
            c.sessions.clear();
            c.stats.sessions_expired += n;
            c.stats.sessions_active = 0;
            n
        });
        if let Ok(n) = r {
            self.emit(
                &mut s,
                EventKind::Session,
                context,
                format!("{n} sessions of {context} expired by an operator"),
            );
        }
        done(r)
    }

    fn session_counts(&self) -> BackendResult<'_, Vec<NodeSessionCount>> {
        done(Ok(ops::counts(&self.lock().contexts)))
    }

    fn manager_stats(&self, context: &str) -> BackendResult<'_, ManagerStats> {
        let mut s = self.lock();
        done(Self::context_mut(&mut s, context).map(|c| c.stats.clone()))
    }

    fn reset_stats(&self, context: &str) -> BackendResult<'_, ()> {
        let mut s = self.lock();
        done(Self::context_mut(&mut s, context).map(|c| {
            let active = c.sessions.len() as u64;
            // The store's counters describe the store, not the manager: a reset keeps them.
            let store = c.stats.store.take();
            c.stats = ManagerStats {
                sessions_active: active,
                max_active: active,
                since_ms: now_ms(),
                messages_sent: Default::default(),
                messages_received: Default::default(),
                valves: Vec::new(),
                store,
                ..data::fresh_stats(context, 0, 0)
            };
            c.stats.sessions_created = 0;
            c.stats.sessions_expired = 0;
            c.stats.state_transfers = 0;
            c.stats.replication_time_avg_us = 0;
            c.stats.replication_time_max_us = 0;
        }))
    }

    fn channel(&self) -> BackendResult<'_, ChannelInfo> {
        let s = self.lock();
        let secs = self.started.elapsed().as_secs();
        let interceptors = s
            .interceptors
            .iter()
            .map(|i| ops::with_counters(i, secs))
            .collect();
        done(Ok(ChannelInfo {
            interceptors,
            send_options: s.send_options.clone(),
        }))
    }

    fn reorder_interceptors(&self, order: Vec<String>) -> BackendResult<'_, ChannelInfo> {
        let r = {
            let mut s = self.lock();
            let r = ops::reorder(&mut s.interceptors, &order, |i| &i.name, "interceptor");
            if r.is_ok() {
                self.emit(
                    &mut s,
                    EventKind::Plugin,
                    "channel",
                    format!("interceptors reordered: {}", order.join(" → ")),
                );
            }
            r
        };
        match r {
            Ok(()) => self.channel(),
            Err(e) => done(Err(e)),
        }
    }

    fn peer_traffic(&self) -> BackendResult<'_, Vec<PeerTraffic>> {
        let s = self.lock();
        let secs = self.started.elapsed().as_secs_f64();
        let peers = s
            .members
            .iter()
            .filter(|m| !m.local)
            .map(|m| m.name.as_str());
        done(Ok(peers
            .enumerate()
            .map(|(i, p)| ops::traffic(p, i, secs))
            .collect()))
    }

    fn plugins(&self) -> BackendResult<'_, Vec<Plugin>> {
        done(Ok(self.lock().plugins.clone()))
    }

    fn plugin(&self, name: &str) -> BackendResult<'_, Plugin> {
        let s = self.lock();
        done(
            s.plugins
                .iter()
                .find(|p| p.name == name)
                .cloned()
                .ok_or_else(|| BackendError::not_found("plugin", name)),
        )
    }

    fn load_plugin(&self, request: LoadPlugin) -> BackendResult<'_, Plugin> {
        let mut s = self.lock();
        let name = request.name.clone();
        let r = ops::load_plugin(&mut s, request);
        if let Ok(p) = &r {
            self.emit(
                &mut s,
                EventKind::Plugin,
                &name,
                format!(
                    "plugin {name} generation {} loaded on every node",
                    p.generation
                ),
            );
        }
        done(r)
    }

    fn configure_plugin(&self, name: &str, config: serde_json::Value) -> BackendResult<'_, Plugin> {
        self.plugin_op(name, "reconfigured", |_, p| {
            p.config = config;
            Ok(())
        })
    }

    fn set_plugin_enabled(&self, name: &str, enabled: bool) -> BackendResult<'_, Plugin> {
        let verb = if enabled { "enabled" } else { "disabled" };
        self.plugin_op(name, verb, |s, p| {
            ops::set_enabled(s, p, enabled);
            Ok(())
        })
    }

    fn reload_plugin(&self, name: &str) -> BackendResult<'_, Plugin> {
        self.plugin_op(name, "reloaded", |s, p| {
            ops::set_enabled(s, p, true);
            p.loaded_ms = now_ms();
            Ok(())
        })
    }

    fn unload_plugin(&self, name: &str) -> BackendResult<'_, ()> {
        let mut s = self.lock();
        let r = ops::unload_plugin(&mut s, name);
        if r.is_ok() {
            self.emit(
                &mut s,
                EventKind::Plugin,
                name,
                format!("plugin {name} unloaded from every node"),
            );
        }
        done(r)
    }

    fn deployments(&self) -> BackendResult<'_, Vec<Deployment>> {
        done(Ok(self.lock().deployments.clone()))
    }

    fn deployment(&self, name: &str) -> BackendResult<'_, Deployment> {
        let s = self.lock();
        done(
            s.deployments
                .iter()
                .find(|d| d.name == name)
                .cloned()
                .ok_or_else(|| BackendError::not_found("deployment", name)),
        )
    }

    fn deploy(&self, request: DeployRequest, body: ArtifactBody) -> BackendResult<'_, Deployment> {
        Box::pin(async move {
            use futures::StreamExt;
            // The twin keeps the bytes (it has no disk); bounded like a node's default.
            let mut body = body;
            let mut artifact = Vec::new();
            while let Some(piece) = body.next().await {
                let piece = piece.map_err(|e| {
                    BackendError::Invalid(format!(
                        "the upload was cut short after {} bytes ({e}); nothing was deployed, send it again",
                        artifact.len()
                    ))
                })?;
                if artifact.len() + piece.len() > crate::MAX_UPLOAD_BYTES {
                    return Err(BackendError::TooLarge(format!(
                        "the artifact exceeds the upload limit of {} bytes",
                        crate::MAX_UPLOAD_BYTES
                    )));
                }
                artifact.extend_from_slice(&piece);
            }
            let mut s = self.lock();
            let r = ops::deploy(&mut s, &request, &artifact);
            if let Ok(d) = &r {
                self.emit(
                    &mut s,
                    EventKind::Deploy,
                    &request.name,
                    format!(
                        "{}@{} ({} bytes) active on every node",
                        d.name, d.version, d.size_bytes
                    ),
                );
            }
            r
        })
    }

    fn rollouts(&self) -> BackendResult<'_, Vec<Rollout>> {
        done(Ok(self.lock().rollouts.clone()))
    }

    fn rollback(&self, name: &str) -> BackendResult<'_, Deployment> {
        let mut s = self.lock();
        let r = ops::rollback(&mut s, name);
        if let Ok(d) = &r {
            self.emit(
                &mut s,
                EventKind::Deploy,
                name,
                format!("{name} rolled back to {} on every node", d.version),
            );
        }
        done(r)
    }

    fn undeploy(&self, name: &str) -> BackendResult<'_, ()> {
        let mut s = self.lock();
        let before = s.deployments.len();
        s.deployments.retain(|d| d.name != name);
        let r = if s.deployments.len() < before {
            Ok(())
        } else {
            Err(BackendError::not_found("deployment", name))
        };
        if r.is_ok() {
            self.emit(
                &mut s,
                EventKind::Undeploy,
                name,
                format!("{name} undeployed from every node"),
            );
        }
        done(r)
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn recent_events(&self, limit: usize) -> BackendResult<'_, Vec<Event>> {
        done(Ok(self.events.recent(limit)))
    }

    fn metrics_text(&self) -> BackendResult<'_, String> {
        let s = self.lock();
        done(Ok(ops::metrics(&s, self.started.elapsed().as_secs_f64())))
    }
}
