//! `/metrics`: Prometheus text exposition format 0.0.4. Counters are the raw totals since
//! start (a stats reset in the API does not move them: Prometheus counters never go back).
use super::NodeBackend;
use shoal_admin::dto::{MemberState, StoreRole, StoreStats};
use shoal_plugin_host::MetricKind;
use std::fmt::Write as _;

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family: `# HELP`, `# TYPE`, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// Read-your-writes: how long requests whose node's copy was older than their version
/// token were held (waiting for replication, fetching), per context.
fn render_ryw_histogram(out: &mut String, all: &[(String, shoal_session::ManagerStats)]) {
    let name = "shoal_session_ryw_wait_seconds";
    let mut f = Family::new(
        out,
        name,
        "histogram",
        "Read-your-writes: time requests spent catching up to their version token (waiting for replication, then fetching).",
    );
    for (ctx, s) in all {
        let mut cumulative = 0;
        for (le_ms, n) in &s.ryw_wait_ms {
            cumulative += n;
            let le = if *le_ms == u64::MAX {
                "+Inf".to_owned()
            } else {
                format!("{}", *le_ms as f64 / 1000.0)
            };
            f.sample(
                &format!("{name}_bucket"),
                &[("context", ctx), ("le", &le)],
                cumulative,
            );
        }
        let sum = s.ryw_wait_ms_sum as f64 / 1000.0;
        f.sample(&format!("{name}_sum"), &[("context", ctx)], sum);
        f.sample(&format!("{name}_count"), &[("context", ctx)], s.ryw_waits);
    }
}

/// The `shoal_store_*` families, one sample per context with a store.
fn render_store_families(out: &mut String, stores: &[(&String, StoreStats)]) {
    type Get = fn(&StoreStats) -> u64;
    let families: [(&str, &str, &str, Get); 13] = [
        (
            "shoal_store_degraded",
            "gauge",
            "1 while the session store counts as down.",
            |s| u64::from(s.degraded.is_some()),
        ),
        (
            "shoal_store_queue_depth",
            "gauge",
            "Sessions with changes not yet in the store.",
            |s| s.queue_depth,
        ),
        (
            "shoal_store_queue_bytes",
            "gauge",
            "Attribute bytes of the changes not yet in the store (write-behind).",
            |s| s.queue_bytes,
        ),
        (
            "shoal_store_queue_lag_ms",
            "gauge",
            "Age of the oldest change not yet in the store (ms).",
            |s| s.queue_lag_ms,
        ),
        (
            "shoal_store_queue_full_total",
            "counter",
            "Changes refused (persistent) or requests that waited (write-behind) because the write queue was full.",
            |s| s.queue_full,
        ),
        (
            "shoal_store_errors_total",
            "counter",
            "Store operations that failed or timed out.",
            |s| s.errors,
        ),
        (
            "shoal_store_conflicts_total",
            "counter",
            "Lost compare-and-sets (detected conflicts).",
            |s| s.conflicts,
        ),
        (
            "shoal_store_loads_total",
            "counter",
            "Sessions loaded from the store.",
            |s| s.loads,
        ),
        (
            "shoal_store_saves_total",
            "counter",
            "Compare-and-set saves written to the store.",
            |s| s.saves,
        ),
        (
            "shoal_store_removes_total",
            "counter",
            "Rows removed from the store (compare-and-set).",
            |s| s.removes,
        ),
        (
            "shoal_store_operations_total",
            "counter",
            "Store operations timed by this node.",
            |s| s.ops_timed,
        ),
        (
            "shoal_store_latency_avg_us",
            "gauge",
            "Mean duration of a store operation since start (µs).",
            |s| s.latency_avg_us,
        ),
        (
            "shoal_store_latency_max_us",
            "gauge",
            "Slowest store operation since start (µs).",
            |s| s.latency_max_us,
        ),
    ];
    for (name, kind, help, get) in families {
        let mut f = Family::new(out, name, kind, help);
        for (ctx, st) in stores {
            let role = match st.role {
                StoreRole::Persistent => "persistent",
                StoreRole::WriteBehind => "write-behind",
            };
            f.sample(
                name,
                &[("context", ctx), ("store", &st.name), ("role", role)],
                get(st),
            );
        }
    }
}

impl NodeBackend {
    pub(super) async fn metrics(&self) -> String {
        let mut out = String::new();
        let members = self.member_list().await;
        let mut f = Family::new(
            &mut out,
            "shoal_members",
            "gauge",
            "Members known to this node, by state.",
        );
        for (state, label) in [
            (MemberState::Alive, "alive"),
            (MemberState::Suspect, "suspect"),
            (MemberState::Gone, "gone"),
        ] {
            f.sample(
                "shoal_members",
                &[("state", label)],
                state.count_in(&members),
            );
        }
        self.channel_metrics(&mut out).await;
        self.session_metrics(&mut out);
        self.plugin_metrics(&mut out);
        (self.node.farm.metrics).render(&mut out, self.node.farm.is_ready());
        out
    }

    async fn channel_metrics(&self, out: &mut String) {
        let stats = self.node.channel.stats().await;
        type Get = fn(&shoal_net::PeerStats) -> u64;
        let per_peer: [(&str, &str, Get); 6] = [
            (
                "shoal_channel_messages_sent_total",
                "Data messages sent to a peer.",
                |p| p.messages_sent,
            ),
            (
                "shoal_channel_messages_received_total",
                "Data messages received from a peer.",
                |p| p.messages_received,
            ),
            (
                "shoal_channel_bytes_sent_total",
                "Socket bytes sent to a peer.",
                |p| p.bytes_sent,
            ),
            (
                "shoal_channel_bytes_received_total",
                "Socket bytes received from a peer.",
                |p| p.bytes_received,
            ),
            (
                "shoal_channel_acks_received_total",
                "Acknowledgements received from a peer.",
                |p| p.acks_received,
            ),
            (
                "shoal_channel_failures_total",
                "Sends to a peer that failed.",
                |p| p.failures,
            ),
        ];
        for (name, help, get) in per_peer {
            let mut f = Family::new(out, name, "counter", help);
            for p in &stats.peers {
                f.sample(name, &[("peer", &p.name)], get(p));
            }
        }
        let mut f = Family::new(
            out,
            "shoal_channel_queue_full_total",
            "counter",
            "Asynchronous sends that waited for room in the queue.",
        );
        f.sample("shoal_channel_queue_full_total", &[], stats.queue_full);
        let mut f = Family::new(
            out,
            "shoal_channel_queue_bytes",
            "gauge",
            "Bytes in the asynchronous send queue.",
        );
        f.sample("shoal_channel_queue_bytes", &[], stats.queue_bytes_in_use);
        let mut f = Family::new(
            out,
            "shoal_channel_connections_open",
            "gauge",
            "Open cluster connections.",
        );
        f.sample(
            "shoal_channel_connections_open",
            &[],
            stats.connections_open,
        );
    }

    fn session_metrics(&self, out: &mut String) {
        let all = self.raw_stats();
        type Get = fn(&shoal_session::ManagerStats) -> u64;
        let families: [(&str, &str, &str, Get); 11] = [
            (
                "shoal_sessions_active",
                "gauge",
                "Sessions held with their value on this node.",
                |s| s.active_sessions,
            ),
            (
                "shoal_sessions_created_total",
                "counter",
                "Sessions created on this node.",
                |s| s.sessions_created,
            ),
            (
                "shoal_sessions_expired_total",
                "counter",
                "Sessions expired or invalidated here.",
                |s| s.sessions_expired + s.sessions_invalidated,
            ),
            (
                "shoal_sessions_conflicts_total",
                "counter",
                "Concurrent writes of one session detected.",
                |s| s.conflicts,
            ),
            (
                "shoal_session_partition_conflicts_total",
                "counter",
                "Sessions changed here while the cluster was apart whose changes a heal discarded for another member's copy (each logged with its id).",
                |s| s.partition_conflicts,
            ),
            (
                "shoal_replication_requests_total",
                "counter",
                "Requests whose session changes were replicated.",
                |s| s.replicated_requests,
            ),
            (
                "shoal_replication_async_queue_bytes",
                "gauge",
                "Bytes of asynchronous replication messages queued, not yet taken by the channel.",
                |s| s.async_queue_bytes,
            ),
            (
                "shoal_replication_async_queue_full_total",
                "counter",
                "Requests that waited because the asynchronous replication queue was full.",
                |s| s.async_queue_full,
            ),
            (
                "shoal_session_ryw_fetches_total",
                "counter",
                "Read-your-writes: requests that fetched their session because this node's copy was older than their version token.",
                |s| s.ryw_fetches,
            ),
            (
                "shoal_session_ryw_lost_total",
                "counter",
                "Read-your-writes: requests whose version token named a version no reachable node held (an async write lost in a crash; each logged with its session id).",
                |s| s.ryw_lost,
            ),
            (
                "shoal_session_ryw_bad_tokens_total",
                "counter",
                "Version tokens refused (forged, truncated, of another session or cluster); those requests were served without them.",
                |s| s.ryw_bad_tokens,
            ),
        ];
        for (name, kind, help, get) in families {
            let mut f = Family::new(out, name, kind, help);
            for (ctx, s) in &all {
                f.sample(name, &[("context", ctx)], get(s));
            }
        }
        render_ryw_histogram(out, &all);
        // Contexts with a store (persistent, or write-behind behind a replicated manager):
        // the store's state, labelled by context, store kind and role.
        let stores: Vec<(&String, StoreStats)> = all
            .iter()
            .filter_map(|(ctx, s)| Some((ctx, super::stats::store_stats(s)?)))
            .collect();
        render_store_families(out, &stores);
        for (name, help, sent) in [
            (
                "shoal_manager_messages_sent_total",
                "Session manager messages sent, by type.",
                true,
            ),
            (
                "shoal_manager_messages_received_total",
                "Session manager messages received, by type.",
                false,
            ),
        ] {
            let mut f = Family::new(out, name, "counter", help);
            for (ctx, s) in &all {
                for (kind, v) in if sent { &s.sent } else { &s.received } {
                    f.sample(name, &[("context", ctx), ("type", kind)], v);
                }
            }
        }
    }

    /// Plugin metrics (`plugin.<plugin>.<name>`) as two families labelled by plugin and name.
    fn plugin_metrics(&self, out: &mut String) {
        let registry = &self.node.plugins.registry;
        let names: Vec<String> = registry.list().into_iter().map(|p| p.name).collect();
        let samples = registry.metrics();
        for (family, kind, help, wanted) in [
            (
                "shoal_plugin_counter_total",
                "counter",
                "Counters published by plugins and the host's per-plugin counters.",
                MetricKind::Counter,
            ),
            (
                "shoal_plugin_gauge",
                "gauge",
                "Gauges published by plugins.",
                MetricKind::Gauge,
            ),
        ] {
            let mut f = Family::new(out, family, kind, help);
            for s in samples.iter().filter(|s| s.kind == wanted) {
                let rest = s.name.strip_prefix("plugin.").unwrap_or(&s.name);
                // Plugin names may contain dots: take the longest loaded name that prefixes it.
                let plugin = names
                    .iter()
                    .filter(|n| rest.starts_with(&format!("{n}.")))
                    .max_by_key(|n| n.len());
                let (plugin, metric) = match plugin {
                    Some(p) => (p.as_str(), &rest[p.len() + 1..]),
                    None => ("", rest),
                };
                f.sample(family, &[("plugin", plugin), ("name", metric)], s.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(role: StoreRole, degraded: Option<&str>) -> StoreStats {
        StoreStats {
            role,
            name: "sqlite".into(),
            describe: "sqlite data/sessions.db".into(),
            degraded: degraded.map(str::to_owned),
            last_error: degraded.map(str::to_owned),
            queue_depth: 4,
            queue_bytes: 512,
            queue_lag_ms: 1250,
            queue_full: 2,
            conflicts: 3,
            loads: 5,
            saves: 7,
            removes: 1,
            errors: 9,
            ops_timed: 20,
            latency_avg_us: 800,
            latency_max_us: 15_000,
            in_memory: None,
            stored: None,
        }
    }

    #[test]
    fn store_families_have_one_sample_per_context_labelled_by_role() {
        let (cart, app) = ("cart".to_owned(), "app".to_owned());
        let stores = [
            (&cart, store(StoreRole::Persistent, None)),
            (
                &app,
                store(StoreRole::WriteBehind, Some("connection refused")),
            ),
        ];
        let mut out = String::new();
        render_store_families(&mut out, &stores);
        for line in [
            "# TYPE shoal_store_degraded gauge",
            r#"shoal_store_degraded{context="cart",store="sqlite",role="persistent"} 0"#,
            r#"shoal_store_degraded{context="app",store="sqlite",role="write-behind"} 1"#,
            r#"shoal_store_queue_depth{context="app",store="sqlite",role="write-behind"} 4"#,
            r#"shoal_store_queue_bytes{context="app",store="sqlite",role="write-behind"} 512"#,
            r#"shoal_store_queue_lag_ms{context="app",store="sqlite",role="write-behind"} 1250"#,
            "# TYPE shoal_store_queue_full_total counter",
            r#"shoal_store_queue_full_total{context="app",store="sqlite",role="write-behind"} 2"#,
            r#"shoal_store_errors_total{context="cart",store="sqlite",role="persistent"} 9"#,
            r#"shoal_store_conflicts_total{context="cart",store="sqlite",role="persistent"} 3"#,
            r#"shoal_store_saves_total{context="app",store="sqlite",role="write-behind"} 7"#,
            r#"shoal_store_removes_total{context="app",store="sqlite",role="write-behind"} 1"#,
            r#"shoal_store_operations_total{context="cart",store="sqlite",role="persistent"} 20"#,
            r#"shoal_store_latency_avg_us{context="cart",store="sqlite",role="persistent"} 800"#,
            r#"shoal_store_latency_max_us{context="cart",store="sqlite",role="persistent"} 15000"#,
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "missing `{line}` in:\n{out}"
            );
        }
        let samples = out.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 13 * 2, "13 families × 2 contexts:\n{out}");
    }

    #[test]
    fn no_store_no_store_samples() {
        let mut out = String::new();
        render_store_families(&mut out, &[]);
        assert!(out.lines().all(|l| l.starts_with('#')), "{out}");
    }
}
