//! Manager and valve statistics of a context. The session managers count from their
//! start; a reset here records a baseline and later answers are relative to it, so the
//! managers (which replicate and must not lose state) are never touched by a reset.
use super::sessions::Baseline;
use super::NodeBackend;
use shoal_admin::dto::{now_ms, ManagerStats, StoreRole, StoreStats, ValveStats};
use shoal_admin::BackendError;
use shoal_plugin_host::PluginWorld as HostWorld;
use std::collections::BTreeMap;

/// How long the stats call waits for the store's session count.
const STORED_COUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn per_kind(now: &[(&'static str, u64)], base: &[(&'static str, u64)]) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, v)| {
            let b = base.iter().find(|(bk, _)| bk == k).map_or(0, |(_, b)| *b);
            ((*k).to_owned(), v.saturating_sub(b))
        })
        .collect()
}

/// The store of a context as the API shows it: a persistent context's, or the write-behind
/// queue's of a replicated context with a store. Counters since start (a stats reset does
/// not move them: they describe the store, not the manager). `stored` is filled by the caller.
pub(super) fn store_stats(now: &shoal_session::ManagerStats) -> Option<StoreStats> {
    if let Some(st) = &now.store {
        let p = &st.stats;
        let degraded = st.check_error.clone().or_else(|| st.degraded.clone());
        return Some(StoreStats {
            role: StoreRole::Persistent,
            name: st.name.clone(),
            describe: st.describe.clone(),
            last_error: degraded.clone(),
            degraded,
            queue_depth: p.queue_depth,
            queue_bytes: 0,
            queue_lag_ms: p.queue_lag_ms,
            queue_full: p.queue_full,
            conflicts: p.conflicts,
            loads: p.loads,
            saves: p.saves,
            removes: p.removes,
            errors: p.unavailable,
            ops_timed: st.latency.ops,
            latency_avg_us: st.latency.avg_us(),
            latency_max_us: st.latency.max_us,
            in_memory: Some(p.in_memory),
            stored: None,
        });
    }
    let wb = now.write_behind.as_ref()?;
    Some(StoreStats {
        role: StoreRole::WriteBehind,
        name: wb.kind.clone(),
        describe: wb.store.clone(),
        degraded: wb.degraded.clone(),
        last_error: wb.last_error.clone(),
        queue_depth: wb.queued,
        queue_bytes: wb.queued_bytes,
        queue_lag_ms: wb.lag_ms,
        queue_full: wb.full_waits,
        conflicts: wb.conflicts,
        loads: wb.loads,
        saves: wb.writes,
        removes: wb.removes,
        errors: wb.errors,
        ops_timed: wb.latency.ops,
        latency_avg_us: wb.latency.avg_us(),
        latency_max_us: wb.latency.max_us,
        in_memory: None,
        stored: None,
    })
}

impl NodeBackend {
    pub(super) fn stats_of(&self, context: &str) -> Result<ManagerStats, BackendError> {
        let (ctx, svc) = self.service(context)?;
        let now = svc.stats();
        let base = {
            let mut s = self.lock();
            let started = self.started_ms;
            let b = s
                .baselines
                .entry(ctx.path.clone())
                .or_insert_with(|| Baseline {
                    since_ms: started,
                    ..Baseline::default()
                });
            b.max_active = b.max_active.max(now.active_sessions);
            b.clone()
        };
        let b = &base.stats;
        let d = |n: u64, b: u64| n.saturating_sub(b);
        let replicated = d(now.replicated_requests, b.replicated_requests);
        let total_us = d(now.replication_time_ms_total, b.replication_time_ms_total) * 1000;
        let mut valves = vec![ValveStats {
            name: "ReplicationValve".into(),
            requests: replicated,
            total_time_us: total_us,
            // The session service keeps totals only.
            max_time_us: 0,
            failures: d(now.replication_failures, b.replication_failures),
        }];
        let plugins = &self.node.plugins;
        for info in plugins.registry.list() {
            if info.world != HostWorld::Valve || !plugins.placement.applies(&info.name, &ctx.path) {
                continue;
            }
            let f = &info.failures;
            valves.push(ValveStats {
                name: info.name.clone(),
                requests: info.calls,
                total_time_us: 0,
                max_time_us: 0,
                failures: f.traps + f.timeouts + f.memory + f.bad_output + f.instantiation + f.busy,
            });
        }
        Ok(ManagerStats {
            context: super::sessions::api_name(&ctx.path),
            sessions_active: now.active_sessions,
            sessions_created: d(now.sessions_created, b.sessions_created),
            // Expired by the sweeper plus invalidated (by requests or operators).
            sessions_expired: d(
                now.sessions_expired + now.sessions_invalidated,
                b.sessions_expired + b.sessions_invalidated,
            ),
            max_active: base.max_active,
            rejected: d(now.rejected_by_limits, b.rejected_by_limits),
            messages_sent: per_kind(&now.sent, &b.sent),
            messages_received: per_kind(&now.received, &b.received),
            state_transfers: d(now.state_transfers, b.state_transfers),
            conflicts: d(now.conflicts, b.conflicts),
            replication_time_avg_us: total_us.checked_div(replicated).unwrap_or(0),
            replication_time_max_us: 0,
            since_ms: base.since_ms,
            valves,
            store: store_stats(&now),
        })
    }

    /// [`Self::stats_of`] plus the number of the context's sessions in its store (absent
    /// when the store does not answer within [`STORED_COUNT_WAIT`]).
    pub(super) async fn stats_with_store(
        &self,
        context: &str,
    ) -> Result<ManagerStats, BackendError> {
        let mut stats = self.stats_of(context)?;
        let (ctx, svc) = self.service(context)?;
        let store = match (svc.persistent(), svc.write_behind()) {
            (Some(p), _) => Some(p.store().clone()),
            (None, Some(w)) => Some(w.store().clone()),
            (None, None) => None,
        };
        if let (Some(store), Some(st)) = (store, stats.store.as_mut()) {
            st.stored = tokio::time::timeout(STORED_COUNT_WAIT, store.count(&ctx.path))
                .await
                .ok()
                .and_then(Result::ok);
        }
        Ok(stats)
    }

    pub(super) fn reset_stats_of(&self, context: &str) -> Result<(), BackendError> {
        let (ctx, svc) = self.service(context)?;
        let stats = svc.stats();
        let active = stats.active_sessions;
        self.lock().baselines.insert(
            ctx.path,
            Baseline {
                since_ms: now_ms(),
                stats,
                max_active: active,
            },
        );
        Ok(())
    }

    /// Raw counters since start, for metrics (Prometheus counters never go back).
    pub(super) fn raw_stats(&self) -> Vec<(String, shoal_session::ManagerStats)> {
        self.node
            .http
            .registry()
            .services()
            .map(|s| (super::sessions::api_name(s.context()), s.stats()))
            .collect()
    }
}
