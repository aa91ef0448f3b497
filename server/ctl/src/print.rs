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

pub fn plugins(list: &Vec<Plugin>) -> String {
    let mut out = format!(
        "{:<16} {:<8} {:<19} {:<9} {:<14} {:>8}  {}\n",
        "NAME", "VERSION", "WORLD", "STATE", "ATTACHED", "FAILURES", "DIGEST"
    );
    for p in list {
        let world = serde_json::to_value(p.world)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let state = serde_json::to_value(p.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<16} {:<8} {world:<19} {state:<9} {:<14} {:>8}  {}",
            p.name,
            p.version,
            p.attached_to.join(","),
            p.failures.total,
            &p.digest[..p.digest.len().min(12)]
        );
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

pub fn contexts(list: &Vec<Context>) -> String {
    let mut out = String::new();
    for c in list {
        let manager = format!("{:?}", c.manager).to_lowercase();
        let replication = format!("{:?}", c.replication).to_lowercase();
        let _ = writeln!(
            out,
            "{} ({manager}, {replication}, {} sessions)",
            c.path, c.active_sessions
        );
        for (i, s) in c.pipeline.iter().enumerate() {
            let origin = s
                .plugin
                .as_deref()
                .map(|p| format!(" [wasm {p}]"))
                .unwrap_or_default();
            let off = if s.enabled { "" } else { " (disabled)" };
            let _ = writeln!(out, "  {}. {}{origin}{off}", i + 1, s.name);
        }
    }
    out.trim_end().to_owned()
}
