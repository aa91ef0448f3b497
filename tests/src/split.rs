//! Clusters in a [`crate::netns::Lab`] for the split-brain tests (issue #12): `n` nodes
//! serving `/app`, one per namespace, each with its admin API on the same port of its own
//! address, every node listing every other (so split-brain protection expects all `n`);
//! and the steps the split-brain tests share: a fault under random-routing load and its
//! heal ([`cut_and_heal`]), what each side must answer meanwhile, what the heal must report.
use crate::history::{History, Promise, Recorder, Report};
use crate::netns::Lab;
use crate::sessions::{HttpNode, SECRET};
use crate::workload::{run_into, Routing, Workload};
use crate::{temp_file, NodeSpec};
use shoal_testkit::{eventually_blocking, get_blocking};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Bearer token of the admin API of every node of a split cluster.
pub const ADMIN_TOKEN: &str = "split-brain-admin-token-0123456789";

/// A running split cluster.
pub struct SplitCluster {
    pub nodes: Vec<HttpNode>,
    /// Route name → HTTP `ip:port`, for the workload.
    pub addrs: BTreeMap<String, String>,
    /// Admin API `ip:port` of each node.
    pub admin: Vec<String>,
}

/// `node1`..`node<n>`.
pub fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("node{i}")).collect()
}

/// Starts `n` nodes of `lab` whose `/app` context has `[http.contexts.session]` `session`
/// (TOML lines), and waits until each sees all the others.
pub fn start(lab: &Lab, n: usize, session: &str) -> SplitCluster {
    let admin_port = crate::free_port();
    // Every namespace has its own interfaces: one file serves every node.
    let cfg = temp_file(
        "shoal.toml",
        &format!(
            "[http]\nbind = \"0.0.0.0\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
             [http.contexts.session]\n{session}\nmax_inactive_secs = 1800\n\n\
             [admin]\nbind = \"0.0.0.0:{admin_port}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n"
        ),
    );
    let port = crate::free_port();
    let members: Vec<String> = (0..n).map(|i| format!("{}:{port}", lab.ip(i))).collect();
    let all = names(n);
    let mut nodes: Vec<HttpNode> = (0..n)
        .map(|i| {
            let spec = NodeSpec {
                bind: lab.ip(i).to_string(),
                member_addrs: members.clone(),
                netns: Some(lab.ns(i)),
                config: Some(cfg.clone()),
                ..NodeSpec::new(&all[i], port, &[], SECRET)
            };
            let mut node = HttpNode::spawn_spec(spec, &[]);
            let http_port = node.http.rsplit(':').next().unwrap_or_default().to_string();
            node.http = format!("{}:{http_port}", lab.ip(i));
            node
        })
        .collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    for node in nodes.iter_mut() {
        node.wait_members(&refs);
    }
    let addrs = nodes
        .iter()
        .map(|node| (node.name().to_string(), node.http.clone()))
        .collect();
    let admin = (0..n)
        .map(|i| format!("{}:{admin_port}", lab.ip(i)))
        .collect();
    SplitCluster {
        nodes,
        addrs,
        admin,
    }
}

/// One admin API call on a fresh connection: (status, body).
pub fn admin(addr: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    crate::admin_call(addr, ADMIN_TOKEN, method, path)
}

/// Load over `c` (`routing`: random, or sticky by route) while a fault separates the nodes of `side` from the others,
/// then a heal; returns the history the checker reads. `cut` applies the fault (a cut in
/// one or both directions); the run waits until every node dropped each node of the other
/// side, runs `during`, heals, waits until every node met them again and runs `after`.
pub fn cut_and_heal(
    lab: &Lab,
    c: &mut SplitCluster,
    routing: Routing,
    side: &[usize],
    cut: impl FnOnce(&Lab),
    during: impl FnOnce(&SplitCluster),
    after: impl FnOnce(&SplitCluster),
) -> History {
    let names = names(c.nodes.len());
    // The names of the nodes on the other side than node `i`.
    let across = |i: usize| -> Vec<&str> {
        (0..names.len())
            .filter(|j| side.contains(j) != side.contains(&i))
            .map(|j| names[j].as_str())
            .collect()
    };
    let recorder = Recorder::new();
    let stop = AtomicBool::new(false);
    let w = Workload {
        clients: 4,
        sessions_per_client: 3,
        requests_per_client: 20_000,
        routing,
        seed: 12,
    };
    let addrs = c.addrs.clone();
    std::thread::scope(|s| {
        let load = s.spawn(|| run_into(&addrs, &w, &recorder, &stop));
        eventually_blocking("the load under way", T, || recorder.len() >= 150);

        let since: Vec<usize> = c.nodes.iter_mut().map(|n| n.proc.mark()).collect();
        cut(lab);
        for (i, n) in c.nodes.iter_mut().enumerate() {
            n.proc
                .wait_since(since[i], "member_disappeared", &across(i), T);
        }
        let at_cut = recorder.len();
        eventually_blocking("requests served while the sides are apart", T, || {
            recorder.len() >= at_cut + 300
        });
        during(c);

        let since: Vec<usize> = c.nodes.iter_mut().map(|n| n.proc.mark()).collect();
        lab.heal();
        for (i, n) in c.nodes.iter_mut().enumerate() {
            n.proc.wait_since(since[i], "member_added", &across(i), T);
        }
        after(c);
        let at_heal = recorder.len();
        eventually_blocking("requests served after the heal", T, || {
            recorder.len() >= at_heal + 400
        });
        stop.store(true, Ordering::Relaxed);
        load.join().expect("load thread");
    });
    recorder.history()
}

/// How long the fault steps of [`cut_and_heal`] may take each.
const T: Duration = Duration::from_secs(20);

/// The checker's report of `history`; when `promise` does not hold, the operations of the
/// sessions named in the anomalies go to stderr first (for the failure message).
pub fn check(history: &History, promise: Promise) -> Report {
    let report = history.check();
    if report.holds(promise).is_err() {
        let t0 = history.ops.iter().map(|o| o.start).min();
        for op in &history.ops {
            let named = report
                .examples
                .iter()
                .any(|e| e.starts_with(&format!("session {} ", op.session)));
            if let (true, Some(t0)) = (named, t0) {
                eprintln!(
                    "session {} {:?} on {} at {:?}..{:?}: {:?}",
                    op.session,
                    op.kind,
                    op.node,
                    op.start - t0,
                    op.end - t0,
                    op.outcome
                );
            }
        }
    }
    report
}

/// Node `i`, on the side without a majority, answers 503 no-quorum with Retry-After for a
/// session (naming the `seen` members it sees), and its readiness and health say why.
pub fn refuses_without_majority(c: &SplitCluster, i: usize, seen: usize) {
    // Any well-formed id: the gate answers before the session is looked up.
    let cookie = format!("JSESSIONID={}.node1", "A".repeat(32));
    let r =
        get_blocking(&c.nodes[i].http, "/app/counter", Some(&cookie), &[]).expect("reach the node");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("no-quorum"), "{}", r.body);
    assert!(
        r.body.contains(&format!("sees {seen} of")),
        "names members seen/needed: {}",
        r.body
    );
    assert!(r.header("retry-after").is_some(), "Retry-After: {}", r.body);
    let (status, body) = admin(&c.admin[i], "GET", "/api/v1/ready").expect("ready");
    assert_ne!(status, 200, "not ready while partitioned: {body}");
    assert!(body.contains("partition:/app"), "{body}");
    let (_, body) = admin(&c.admin[i], "GET", "/api/v1/health").expect("health");
    assert!(body.contains("degraded"), "{body}");
}

/// Node `i` still serves sessions (`partition = "available"`, or the majority side).
pub fn still_ready(c: &SplitCluster, i: usize) {
    let (status, body) = admin(&c.admin[i], "GET", "/api/v1/ready").expect("ready");
    assert_eq!(status, 200, "node{} ready while apart: {body}", i + 1);
}

/// Every node serves again (readiness ok) within `T` after the heal.
pub fn all_ready_again(c: &SplitCluster) {
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    all_ready(c, &all);
}

/// Nodes `which` serve sessions (readiness ok) within `T`.
pub fn all_ready(c: &SplitCluster, which: &[usize]) {
    for &i in which {
        eventually_blocking(&format!("node{} ready", i + 1), T, || {
            admin(&c.admin[i], "GET", "/api/v1/ready").is_ok_and(|(s, _)| s == 200)
        });
    }
}

/// The session ids the nodes reported as partition conflicts (their warn logs).
pub fn reported_conflicts(c: &SplitCluster) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in &c.nodes {
        for line in n.proc.stderr_text().lines() {
            if let Some(rest) = line.split("partition conflict: session ").nth(1) {
                if let Some(id) = rest.split_whitespace().next() {
                    ids.insert(id.to_string());
                }
            }
        }
    }
    ids
}

/// `shoal_session_partition_conflicts_total` summed over every node's `/metrics`.
pub fn conflicts_in_metrics(c: &SplitCluster) -> u64 {
    c.admin
        .iter()
        .map(|a| {
            let (_, body) = admin(a, "GET", "/metrics").expect("metrics");
            body.lines()
                .filter(|l| l.starts_with("shoal_session_partition_conflicts_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// `partition = "available"`: every acknowledged update the checker found lost is in a
/// session a node reported as a partition conflict (warn log), and `/metrics` counts at
/// least as many conflicts as were reported.
pub fn every_loss_reported(c: &SplitCluster, report: &Report) {
    let reported = reported_conflicts(c);
    let unreported: Vec<&String> = report.lost_update_ids.difference(&reported).collect();
    assert!(
        unreported.is_empty(),
        "lost updates in sessions no node reported: {unreported:?}; reported {reported:?}; {report}"
    );
    let metrics = conflicts_in_metrics(c);
    assert!(
        metrics as usize >= reported.len(),
        "every reported conflict counted in /metrics: {metrics} < {}",
        reported.len()
    );
    eprintln!(
        "available: {report}; {} sessions reported as partition conflicts",
        reported.len()
    );
}

/// One session as a node's admin API lists it (`/api/v1/contexts/app/sessions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub id: String,
    pub primary: String,
    pub backups: Vec<String>,
    pub version: u64,
}

/// The sessions node `i` holds in `/app` (up to 500).
pub fn held(c: &SplitCluster, i: usize) -> Result<Vec<Held>, String> {
    let (status, body) = admin(
        &c.admin[i],
        "GET",
        "/api/v1/contexts/app/sessions?limit=500",
    )?;
    if status != 200 {
        return Err(format!("node{}: {status} {body}", i + 1));
    }
    let page: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("node{}: {e}: {body}", i + 1))?;
    let items = page["items"].as_array().ok_or("no items")?;
    Ok(items
        .iter()
        .map(|s| Held {
            id: s["id"].as_str().unwrap_or_default().to_string(),
            primary: s["primary"].as_str().unwrap_or_default().to_string(),
            backups: s["backups"]
                .as_array()
                .map(|b| {
                    b.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            version: s["version"].as_u64().unwrap_or_default(),
        })
        .collect())
}

/// BackupManager with `backups` per session: every session a node holds as its primary has
/// that many backups, each on another node that holds the same version as a backup of it.
/// `Err` names the first session short of one.
pub fn every_primary_backed_up(c: &SplitCluster, backups: usize) -> Result<usize, String> {
    let all = names(c.nodes.len());
    let mut by_node = Vec::new();
    for i in 0..c.nodes.len() {
        by_node.push(held(c, i)?);
    }
    let mut primaries = 0;
    for (i, list) in by_node.iter().enumerate() {
        for s in list.iter().filter(|s| s.primary == all[i]) {
            primaries += 1;
            if s.backups.len() < backups {
                return Err(format!("{} on {}: backups {:?}", s.id, all[i], s.backups));
            }
            for b in &s.backups {
                let j = all.iter().position(|n| n == b).ok_or("unknown backup")?;
                let copy = by_node[j].iter().find(|x| x.id == s.id);
                if copy.is_none_or(|x| x.version != s.version || x.primary != all[i]) {
                    return Err(format!(
                        "{} v{} on {}: its backup {b} holds {copy:?}",
                        s.id, s.version, all[i]
                    ));
                }
            }
        }
    }
    Ok(primaries)
}
