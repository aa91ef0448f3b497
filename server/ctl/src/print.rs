//! Plain-text tables for `shoal ctl`.

use std::fmt::Write as _;

use serde::Serialize;

use shoal_admin::dto::*;

/// Prints `value` as pretty JSON or through `table`.
pub fn output<T: Serialize>(
    json: bool,
    value: &T,
    table: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", table(value));
    }
    Ok(())
}

fn ago(ms: u64) -> String {
    let secs = now_ms().saturating_sub(ms) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        _ => format!("{}h ago", secs / 3600),
    }
}

pub fn members(list: &Vec<Member>) -> String {
    let mut out = format!(
        "{:<10} {:<8} {:<22} {:<10} {}\n",
        "NAME", "STATE", "ADDRESS", "SINCE", "REASON"
    );
    for m in list {
        let name = if m.local {
            format!("{}*", m.name)
        } else {
            m.name.clone()
        };
        let state = format!("{:?}", m.state).to_lowercase();
        let _ = writeln!(
            out,
            "{name:<10} {state:<8} {:<22} {:<10} {}",
            m.address,
            ago(m.since_ms),
            m.reason.as_deref().unwrap_or("-")
        );
    }
    out.trim_end().to_owned()
}

pub fn sessions(page: &SessionPage) -> String {
    let mut out = format!(
        "{:<34} {:<8} {:<14} {:>8} {:>6} {:>8}\n",
        "ID", "PRIMARY", "BACKUPS", "IDLE", "ATTRS", "BYTES"
    );
    for s in &page.items {
        let _ = writeln!(
            out,
            "{:<34} {:<8} {:<14} {:>7}s {:>6} {:>8}",
            s.id,
            s.primary,
            s.backups.join(","),
            s.idle_ms / 1000,
            s.attribute_count,
            s.size_bytes
        );
    }
    let shown = page.items.len() as u64;
    let _ = write!(
        out,
        "{}–{} of {}",
        page.offset + u64::from(shown > 0),
        page.offset + shown,
        page.total
    );
    out
}

pub fn session(s: &SessionDetail) -> String {
    let x = &s.session;
    let mut out = format!(
        "id       {}\ncontext  {}\nprimary  {}\nbackups  {}\nidle     {}s of {}s\nversion  {}\n\n",
        x.id,
        x.context,
        x.primary,
        x.backups.join(", "),
        x.idle_ms / 1000,
        x.max_inactive_secs,
        x.version
    );
    for a in &s.attributes {
        let value = match (&a.json, &a.text) {
            (Some(j), _) if j.is_object() || j.is_array() => j.to_string(),
            (_, Some(t)) => t.clone(),
            _ => format!("hex {}{}", a.hex, if a.truncated { "…" } else { "" }),
        };
        let _ = writeln!(out, "{:<16} {:>6} B  {}", a.name, a.size_bytes, value);
    }
    out.trim_end().to_owned()
}

/// One table for every plugin command. `GEN` is the reload generation (the node logs it as
/// `generation=`), `WIT` the `shoal:plugin` package version the component was built against;
/// the operator's label, if any, follows the name.
pub fn plugins(list: &Vec<Plugin>) -> String {
    let mut out = format!(
        "{:<20} {:>4} {:<6} {:<19} {:<11} {:<9} {:<14} {:>8}  {}\n",
        "NAME", "GEN", "WIT", "WORLD", "POLICY", "STATE", "ATTACHED", "FAILURES", "DIGEST"
    );
    for p in list {
        let name = match &p.label {
            Some(l) => format!("{} ({l})", p.name),
            None => p.name.clone(),
        };
        let _ = writeln!(
            out,
            "{name:<20} {:>4} {:<6} {:<19} {:<11} {:<9} {:<14} {:>8}  {}",
            p.generation,
            p.wit_version,
            lower(&p.world),
            lower(&p.policy),
            lower(&p.state),
            p.attached_to.join(","),
            p.failures.total,
            &p.digest[..p.digest.len().min(12)]
        );
    }
    out.trim_end().to_owned()
}

/// Stage `i` of a pipeline on one line: `  1. name [wasm plugin] (disabled)`.
fn stage_line(out: &mut String, i: usize, s: &PipelineStage) {
    let origin = s
        .plugin
        .as_deref()
        .map(|p| format!(" [wasm {p}]"))
        .unwrap_or_default();
    let off = if s.enabled { "" } else { " (disabled)" };
    let _ = writeln!(out, "  {}. {}{origin}{off}", i + 1, s.name);
}

/// A context's pipeline in request order, one stage a line.
pub fn pipeline(c: &Context) -> String {
    let mut out = format!("{} pipeline (request order):\n", c.path);
    for (i, s) in c.pipeline.iter().enumerate() {
        stage_line(&mut out, i, s);
    }
    out.trim_end().to_owned()
}

pub fn deployment(d: &Deployment) -> String {
    let nodes: Vec<String> = d
        .nodes
        .iter()
        .map(|n| {
            format!(
                "{}={}",
                n.node,
                serde_json::to_value(n.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{} {} B sha256:{} [{}]",
        d.name,
        d.size_bytes,
        &d.digest[..d.digest.len().min(12)],
        nodes.join(" ")
    )
}

pub fn kind(k: EventKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Contexts with their pipeline; `stores[i]` is the store of `list[i]` (from its stats).
pub fn contexts(list: &[Context], stores: &[Option<StoreStats>]) -> String {
    let mut out = String::new();
    for (i, c) in list.iter().enumerate() {
        let manager = lower(&c.manager);
        let replication = lower(&c.replication);
        let held = if c.manager == ManagerKind::Persistent {
            "in memory here"
        } else {
            "sessions"
        };
        let _ = writeln!(
            out,
            "{} ({manager}, {replication}, {} {held})",
            c.path, c.active_sessions
        );
        if let Some(Some(st)) = stores.get(i) {
            let _ = writeln!(out, "  {}", store(st));
        }
        for (i, s) in c.pipeline.iter().enumerate() {
            stage_line(&mut out, i, s);
        }
    }
    out.trim_end().to_owned()
}

/// The API's lowercase name of an enum value.
fn lower<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{us} µs")
    }
}

/// One line: the store, its state (and why it is down), queue, lag, latency, conflicts.
pub fn store(st: &StoreStats) -> String {
    let state = match &st.degraded {
        None => "ok".to_owned(),
        Some(why) => format!("DEGRADED ({why})"),
    };
    let mut out = format!(
        "store {} [{}] {state}: queue {}",
        st.describe,
        lower(&st.role),
        st.queue_depth
    );
    if st.queue_bytes > 0 {
        let _ = write!(out, " ({} B)", st.queue_bytes);
    }
    let _ = write!(
        out,
        ", lag {} ms, latency avg {} max {}, conflicts {}, errors {}",
        st.queue_lag_ms,
        micros(st.latency_avg_us),
        micros(st.latency_max_us),
        st.conflicts,
        st.errors
    );
    if st.queue_full > 0 {
        let _ = write!(out, ", queue full {}", st.queue_full);
    }
    if let Some(n) = st.in_memory {
        let _ = write!(out, ", {n} in memory");
    }
    if let Some(n) = st.stored {
        let _ = write!(out, ", {n} stored");
    }
    if st.degraded.is_none() {
        if let Some(e) = &st.last_error {
            let _ = write!(out, "; last error: {e}");
        }
    }
    out
}

/// A context's counters, its valves and its store.
pub fn stats(s: &ManagerStats) -> String {
    let mut out = format!(
        "context  {}
sessions {} active (max {}), {} created, {} expired, {} rejected
conflicts {}, state transfers {}, replication avg {} max {}
since    {}
",
        s.context,
        s.sessions_active,
        s.max_active,
        s.sessions_created,
        s.sessions_expired,
        s.rejected,
        s.conflicts,
        s.state_transfers,
        micros(s.replication_time_avg_us),
        micros(s.replication_time_max_us),
        rfc3339(s.since_ms)
    );
    let kinds = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(out, "sent     {}", kinds(&s.messages_sent));
    let _ = writeln!(out, "received {}", kinds(&s.messages_received));
    if let Some(st) = &s.store {
        let _ = writeln!(out, "{}", store(st));
    }
    for v in &s.valves {
        let _ = writeln!(
            out,
            "valve {:<20} {} requests, {} failures",
            v.name, v.requests, v.failures
        );
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(degraded: Option<&str>) -> StoreStats {
        StoreStats {
            role: StoreRole::WriteBehind,
            name: "sqlite".into(),
            describe: "sqlite data/sessions.db".into(),
            degraded: degraded.map(str::to_owned),
            last_error: Some("database is locked".into()),
            queue_depth: 12,
            queue_bytes: 4096,
            queue_lag_ms: 850,
            queue_full: 0,
            conflicts: 2,
            loads: 0,
            saves: 40,
            removes: 0,
            errors: 3,
            ops_timed: 43,
            latency_avg_us: 700,
            latency_max_us: 25_000,
            in_memory: None,
            stored: Some(40),
        }
    }

    #[test]
    fn store_line_says_state_queue_lag_latency_and_conflicts() {
        let up = store(&sqlite(None));
        assert_eq!(
            up,
            "store sqlite data/sessions.db [write-behind] ok: queue 12 (4096 B), lag 850 ms, \
             latency avg 700 µs max 25 ms, conflicts 2, errors 3, 40 stored; last error: database is locked"
        );
        let down = store(&sqlite(Some("connection refused")));
        assert!(down.contains("DEGRADED (connection refused)"), "{down}");
        assert!(
            !down.contains("last error"),
            "the reason is said once: {down}"
        );
    }

    #[test]
    fn contexts_show_the_store_under_its_context() {
        let ctx = |name: &str, manager| Context {
            name: name.into(),
            path: format!("/{name}"),
            manager,
            replication: ReplicationMode::Sync,
            backups: 0,
            pipeline: Vec::new(),
            active_sessions: 3,
        };
        let list = [
            ctx("app", ManagerKind::Delta),
            ctx("cart", ManagerKind::Persistent),
        ];
        let mut cart = sqlite(None);
        cart.role = StoreRole::Persistent;
        cart.in_memory = Some(3);
        let out = contexts(&list, &[None, Some(cart)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "/app (delta, sync, 3 sessions)");
        assert_eq!(lines[1], "/cart (persistent, sync, 3 in memory here)");
        assert!(
            lines[2].starts_with("  store sqlite data/sessions.db [persistent] ok:")
                && lines[2].contains("3 in memory, 40 stored"),
            "{out}"
        );
        assert_eq!(lines.len(), 3, "{out}");
    }
}
