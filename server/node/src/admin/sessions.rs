//! Contexts, their pipelines, their sessions (as held by this node) and manager statistics.
use super::NodeBackend;
use shoal_admin::dto::*;
use shoal_admin::{rules, BackendError};
use shoal_http::ContextConfig;
use shoal_plugin_host::{PluginState as HostState, PluginWorld as HostWorld};
use shoal_session::{AttrValue, RequestEnd, Session, SessionId, SessionService};
use std::sync::Arc;

/// `(primary, backups)` of a session, as its manager knows it.
type Placed = (shoal_cluster::MemberId, Vec<shoal_cluster::MemberId>);

/// Counters at the last reset; statistics are shown relative to it.
#[derive(Clone, Default)]
pub(super) struct Baseline {
    pub since_ms: u64,
    pub stats: shoal_session::ManagerStats,
    pub max_active: u64,
}

/// The API's name of a context: its path without the leading `/`.
pub(super) fn api_name(path: &str) -> String {
    path.trim_start_matches('/').to_owned()
}

impl NodeBackend {
    pub(super) fn context_config(&self, name: &str) -> Result<ContextConfig, BackendError> {
        let contexts = &self.node.http.contexts();
        let wanted = name.trim_start_matches('/');
        contexts
            .iter()
            .find(|c| api_name(&c.path) == wanted)
            .cloned()
            .ok_or_else(|| BackendError::NotFound {
                what: "context",
                name: name.to_owned(),
                hint: format!(
                    " (known: {})",
                    contexts
                        .iter()
                        .map(|c| api_name(&c.path))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    pub(super) fn service(
        &self,
        name: &str,
    ) -> Result<(ContextConfig, Arc<SessionService>), BackendError> {
        let ctx = self.context_config(name)?;
        let svc = self
            .node
            .http
            .registry()
            .service(&ctx.path)
            .ok_or_else(|| {
                BackendError::Internal(format!(
                    "context {} has no session manager running",
                    ctx.path
                ))
            })?;
        Ok((ctx, svc))
    }

    /// The pipeline in request order: built-in valves (see shoal_http::pipeline), the
    /// ReplicationValve's URL filter, the Wasm URL filters and valves placed in this
    /// context (registry order), then the application.
    pub(super) fn pipeline(&self, ctx: &ContextConfig) -> Vec<PipelineStage> {
        let native = |name: &str, kind, enabled| PipelineStage {
            name: name.into(),
            kind,
            plugin: None,
            enabled,
        };
        let mut out = vec![native("SessionValve", StageKind::Valve, true)];
        if ctx.jvm_route_binder {
            out.push(native("JvmRouteBinderValve", StageKind::Valve, true));
        }
        out.push(native(
            "UrlFilter",
            StageKind::UrlFilter,
            !ctx.url_filter.is_empty(),
        ));
        out.push(native("ReplicationValve", StageKind::Valve, true));
        let plugins = &self.node.plugins;
        for info in plugins.registry.list() {
            let kind = match info.world {
                HostWorld::Valve => StageKind::Valve,
                HostWorld::UrlFilter => StageKind::UrlFilter,
                _ => continue,
            };
            if !plugins.placement.applies(&info.name, &ctx.path) {
                continue;
            }
            out.push(PipelineStage {
                name: info.name.clone(),
                kind,
                plugin: Some(info.name),
                enabled: info.state == HostState::Enabled,
            });
        }
        out.push(native("app", StageKind::App, true));
        out
    }

    pub(super) fn context_view(&self, ctx: &ContextConfig) -> Context {
        let cfg = &ctx.session;
        let backup = cfg.manager == shoal_session::ManagerKind::Backup;
        // A persistent context's sessions in memory here (its manager stands by empty).
        let active = self
            .node
            .http
            .registry()
            .service(&ctx.path)
            .map(|s| match s.persistent() {
                Some(p) => p.status().stats.in_memory,
                None => s.with_manager(|m| m.session_ids().len() as u64),
            })
            .unwrap_or(0);
        Context {
            name: api_name(&ctx.path),
            path: ctx.path.clone(),
            manager: match cfg.manager {
                shoal_session::ManagerKind::Delta => ManagerKind::Delta,
                shoal_session::ManagerKind::Backup => ManagerKind::Backup,
                shoal_session::ManagerKind::Persistent => ManagerKind::Persistent,
            },
            replication: match cfg.replication {
                shoal_session::ReplicationMode::Sync => ReplicationMode::Sync,
                shoal_session::ReplicationMode::Async => ReplicationMode::Async,
            },
            backups: if backup { cfg.backups as u32 } else { 0 },
            pipeline: self.pipeline(ctx),
            active_sessions: active,
        }
    }

    pub(super) fn all_contexts(&self) -> Vec<Context> {
        self.node
            .http
            .contexts()
            .iter()
            .map(|c| self.context_view(c))
            .collect()
    }

    /// Member name of an id (this node, a member, or a recently gone one).
    pub(super) fn member_name(&self, id: &shoal_cluster::MemberId) -> String {
        let local = self.node.channel.local();
        if local.id == *id {
            return local.name.clone();
        }
        if let Some(m) = self.node.channel.members().iter().find(|m| m.id == *id) {
            return m.name.clone();
        }
        self.lock().book.name_of(id).unwrap_or_else(|| id.to_hex())
    }

    /// DeltaManager: the primary is the node that wrote the last version (served it last),
    /// every other member holds a copy. BackupManager: primary and backups as the manager
    /// knows them (`placement`), else the last writer.
    fn summary(
        &self,
        s: &Session,
        placed: Option<Placed>,
        ctx: &ContextConfig,
        now: u64,
    ) -> SessionSummary {
        let primary = match &placed {
            Some((p, _)) => self.member_name(p),
            // A persistent context lists the sessions this node holds in memory.
            None if ctx.session.manager == shoal_session::ManagerKind::Persistent => {
                self.local_name()
            }
            None => self.member_name(&s.stamp.node),
        };
        let backups = match ctx.session.manager {
            shoal_session::ManagerKind::Delta => {
                let mut all: Vec<String> = self
                    .node
                    .channel
                    .members()
                    .into_iter()
                    .map(|m| m.name)
                    .collect();
                all.push(self.local_name());
                all.retain(|n| *n != primary);
                all.sort();
                all
            }
            shoal_session::ManagerKind::Backup => placed
                .map(|(_, b)| b.iter().map(|m| self.member_name(m)).collect())
                .unwrap_or_default(),
            // The store holds the copy every node reads; no member is a backup.
            shoal_session::ManagerKind::Persistent => Vec::new(),
        };
        SessionSummary {
            id: s.id.as_str().to_owned(),
            context: api_name(&ctx.path),
            primary,
            backups,
            created_ms: s.created,
            last_access_ms: s.last_access,
            idle_ms: now.saturating_sub(s.last_access),
            max_inactive_secs: u64::from(s.max_inactive_secs),
            attribute_count: s.attributes.len() as u32,
            size_bytes: s.attribute_bytes() as u64,
            version: s.version,
            principal: s.principal.clone(),
        }
    }

    pub(super) fn session_page(
        &self,
        context: &str,
        q: &SessionQuery,
    ) -> Result<SessionPage, BackendError> {
        let (ctx, svc) = self.service(context)?;
        let now = now_ms();
        // A persistent context: the sessions in memory here (the others are in the store only).
        let held: Vec<(Session, Option<Placed>)> = match svc.persistent() {
            Some(p) => p
                .sessions_in_memory()
                .into_iter()
                .map(|s| (s, None))
                .collect(),
            None => svc.with_manager(|m| {
                m.session_ids()
                    .iter()
                    .filter_map(|id| Some((m.session(id)?.clone(), m.placement(id))))
                    .collect()
            }),
        };
        let summaries = held
            .iter()
            .filter(|(s, _)| rules::id_matches(q, s.id.as_str()))
            .map(|(s, p)| self.summary(s, p.clone(), &ctx, now))
            .collect();
        Ok(rules::page_sessions(summaries, q))
    }

    /// Accepts the bare id or the cookie value `<id>.<route>`.
    fn parse_id(id: &str) -> Result<SessionId, BackendError> {
        shoal_session::parse_full_id(id)
            .map(|(id, _)| id)
            .or_else(|| SessionId::parse(id))
            .ok_or_else(|| BackendError::not_found("session", id))
    }

    pub(super) async fn session_detail(
        &self,
        context: &str,
        id: &str,
    ) -> Result<SessionDetail, BackendError> {
        let (ctx, svc) = self.service(context)?;
        let sid = Self::parse_id(id)?;
        // `find` may fetch the value from its primary (BackupManager proxy); a persistent
        // context shows this node's memory copy.
        let s = match svc.persistent() {
            Some(p) => p.in_memory(&sid),
            None => svc.find(&sid).await,
        }
        .ok_or_else(|| BackendError::not_found("session", id))?;
        let attributes = s
            .attributes
            .iter()
            .map(|(name, v)| match v {
                AttrValue::Bytes(b) => Attribute::from_bytes(name, b),
                AttrValue::Json(t) => Attribute::from_bytes(name, t.as_bytes()),
            })
            .collect();
        Ok(SessionDetail {
            session: self.summary(&s, svc.with_manager(|m| m.placement(&sid)), &ctx, now_ms()),
            attributes,
        })
    }

    /// Invalidates the session the way a request would, so the manager replicates it.
    pub(super) async fn expire_one(
        &self,
        svc: &SessionService,
        id: &str,
    ) -> Result<(), BackendError> {
        let sid = Self::parse_id(id)?;
        if let Some(p) = svc.persistent() {
            return Self::expire_persistent(p, id).await;
        }
        if svc.find(&sid).await.is_none() {
            return Err(BackendError::not_found("session", id));
        }
        let end = RequestEnd {
            id: Some(sid),
            ops: Vec::new(),
            invalidate: true,
            accessed: true,
            replicate: true,
        };
        svc.end_request(end).await.map_err(|e| {
            BackendError::Unavailable(format!(
                "session {id} was expired here but not every member confirmed: {e}; it expires there at the latest after twice its max inactive interval"
            ))
        })
    }

    /// A persistent context: the session is invalidated as a request would (the row is
    /// removed under compare-and-set, so a newer version written elsewhere survives).
    async fn expire_persistent(
        p: &Arc<shoal_session::PersistentService>,
        id: &str,
    ) -> Result<(), BackendError> {
        use shoal_session::persistent::Step;
        let req = p.next_req();
        let unavailable = |e: &dyn std::fmt::Display| {
            BackendError::Unavailable(format!(
                "session {id} was not expired: {e}; try again when the store answers"
            ))
        };
        let session = match p.begin(req, Some(id)).await {
            Step::Serve(s) => s,
            Step::Missing => {
                p.abort(req);
                return Err(BackendError::not_found("session", id));
            }
            Step::Fail(e) => {
                p.abort(req);
                return Err(unavailable(&e));
            }
            Step::Done { .. } => {
                p.abort(req);
                return Err(BackendError::Internal(format!(
                    "session {id}: the persistent manager ended a request it had not begun"
                )));
            }
        };
        let end = RequestEnd {
            id: Some(session.id),
            ops: Vec::new(),
            invalidate: true,
            accessed: true,
            replicate: true,
        };
        match p.end(req, end).await {
            Step::Fail(e) => Err(unavailable(&e)),
            _ => Ok(()),
        }
    }

    pub(super) async fn expire_all_of(&self, context: &str) -> Result<u64, BackendError> {
        let (_, svc) = self.service(context)?;
        let ids: Vec<String> = match svc.persistent() {
            // A persistent context: the sessions in memory here.
            Some(p) => p
                .sessions_in_memory()
                .iter()
                .map(|s| s.id.as_str().to_owned())
                .collect(),
            None => svc.with_manager(|m| {
                m.session_ids()
                    .iter()
                    .map(|i| i.as_str().to_owned())
                    .collect()
            }),
        };
        let mut n = 0;
        for id in ids {
            match self.expire_one(&svc, &id).await {
                Ok(()) => n += 1,
                // Gone in between (expired or invalidated by a request): nothing to do.
                Err(BackendError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Per context and node, from this node's copies: DeltaManager — primary = sessions
    /// that node wrote last, backup = the others (every node holds all); BackupManager —
    /// primary and backups as the manager knows them.
    pub(super) fn counts(&self) -> Vec<NodeSessionCount> {
        let mut out = Vec::new();
        let local = self.node.channel.local();
        let mut nodes: Vec<(shoal_cluster::MemberId, String)> =
            vec![(local.id, local.name.clone())];
        nodes.extend(
            self.node
                .channel
                .members()
                .into_iter()
                .map(|m| (m.id, m.name)),
        );
        for ctx in &self.node.http.contexts() {
            let Some(svc) = self.node.http.registry().service(&ctx.path) else {
                continue;
            };
            // A persistent context: this node knows only the sessions it holds in memory
            // (the store holds them all); they count as its primaries.
            if let Some(p) = svc.persistent() {
                let held = p.status().stats.in_memory;
                for (id, name) in &nodes {
                    out.push(NodeSessionCount {
                        node: name.clone(),
                        context: api_name(&ctx.path),
                        primary: if *id == local.id { held } else { 0 },
                        backup: 0,
                    });
                }
                continue;
            }
            let delta = ctx.session.manager == shoal_session::ManagerKind::Delta;
            let placed: Vec<Placed> = svc.with_manager(|m| {
                m.session_ids()
                    .iter()
                    .filter_map(|id| {
                        let writer = m.session(id)?.stamp.node;
                        Some(match m.placement(id) {
                            Some(p) if !delta => p,
                            _ if delta => {
                                let others = nodes.iter().map(|(n, _)| *n).filter(|n| *n != writer);
                                (writer, others.collect())
                            }
                            _ => (writer, Vec::new()),
                        })
                    })
                    .collect()
            });
            for (id, name) in &nodes {
                out.push(NodeSessionCount {
                    node: name.clone(),
                    context: api_name(&ctx.path),
                    primary: placed.iter().filter(|(p, _)| p == id).count() as u64,
                    backup: placed.iter().filter(|(_, b)| b.contains(id)).count() as u64,
                });
            }
        }
        out.sort_by(|a, b| (&a.context, &a.node).cmp(&(&b.context, &b.node)));
        out
    }
}
