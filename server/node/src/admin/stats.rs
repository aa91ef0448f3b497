//! Manager and valve statistics of a context. The session managers count from their
//! start; a reset here records a baseline and later answers are relative to it, so the
//! managers (which replicate and must not lose state) are never touched by a reset.
use super::sessions::Baseline;
use super::NodeBackend;
use shoal_admin::dto::{now_ms, ManagerStats, StoreStats, ValveStats};
use shoal_admin::BackendError;
use shoal_plugin_host::PluginWorld as HostWorld;
use std::collections::BTreeMap;

fn per_kind(now: &[(&'static str, u64)], base: &[(&'static str, u64)]) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, v)| {
            let b = base.iter().find(|(bk, _)| bk == k).map_or(0, |(_, b)| *b);
            ((*k).to_owned(), v.saturating_sub(b))
        })
        .collect()
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
            store: now.store.as_ref().map(|st| StoreStats {
                name: st.name.clone(),
                describe: st.describe.clone(),
                degraded: st.check_error.clone().or_else(|| st.degraded.clone()),
                queue_depth: st.stats.queue_depth,
                queue_lag_ms: st.stats.queue_lag_ms,
                conflicts: st.stats.conflicts,
                loads: st.stats.loads,
                saves: st.stats.saves,
                errors: st.stats.unavailable,
            }),
        })
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
