//! Sessions created on one node read correctly on the others (DeltaManager and
//! BackupManager, sync and async), JvmRoute rewrite, and the bench app contract.
mod common;

use common::{config, get, get_with, TestCluster};
use shoal_session::{ClusterLink, ManagerConfig, ManagerKind, ReplicationMode};
use shoal_testkit::eventually;
use std::time::Duration;

fn session(kind: ManagerKind, mode: ReplicationMode) -> ManagerConfig {
    ManagerConfig {
        manager: kind,
        replication: mode,
        ..ManagerConfig::default()
    }
}

async fn created_on_node1_read_on_others(kind: ManagerKind, mode: ReplicationMode) {
    let c = TestCluster::start(3, config(session(kind, mode))).await;
    let (n1, n2, n3) = (c.node(1).addr, c.node(2).addr, c.node(3).addr);
    let mut ids = Vec::new();
    for _ in 0..20 {
        let r = get(n1, "/app/counter", None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let id = r
            .session_id()
            .unwrap_or_else(|| panic!("no cookie in {r:?}"));
        assert!(id.ends_with(".node1"), "{id}");
        assert_eq!(r.field("session"), Some(id.as_str()));
        get(n1, "/app/counter", Some(&id)).await;
        let r = get(n1, "/app/counter", Some(&id)).await;
        assert_eq!(r.field("counter"), Some("3"), "{r:?}");
        let r = get(n1, "/app/set?key=blob&size=1024", Some(&id)).await;
        assert_eq!(
            r.body,
            format!("set=blob size=1024 session={id} node=node1")
        );
        ids.push(id);
    }
    if mode == ReplicationMode::Async {
        // Async: replicas converge shortly after; poll instead of assuming.
        for id in &ids {
            eventually("async replicas", Duration::from_secs(5), || match kind {
                ManagerKind::Delta => c.holds(2, id) && c.holds(3, id),
                ManagerKind::Backup => c.holds(2, id) || c.holds(3, id),
                ManagerKind::Persistent => unreachable!("replication tests run Delta and Backup"),
            })
            .await;
        }
    }
    for (i, addr) in [(2, n2), (3, n3)] {
        for id in &ids {
            let r = get(addr, "/app/get?key=counter", Some(id)).await;
            assert_eq!(r.status, 200, "node{i} {kind:?}: {r:?}");
            assert_eq!(r.field("value"), Some("3"), "node{i} {kind:?}: {r:?}");
            assert_eq!(r.field("node"), Some(format!("node{i}").as_str()));
            let r = get(addr, "/app/get?key=blob", Some(id)).await;
            assert_eq!(r.field("size"), Some("1024"), "{r:?}");
            assert_eq!(r.field("intact"), Some("true"), "{r:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sync_sessions_read_on_every_node() {
    created_on_node1_read_on_others(ManagerKind::Delta, ReplicationMode::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_async_sessions_read_on_every_node() {
    created_on_node1_read_on_others(ManagerKind::Delta, ReplicationMode::Async).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_async_sessions_read_on_every_node() {
    created_on_node1_read_on_others(ManagerKind::Backup, ReplicationMode::Async).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_sync_sessions_read_on_every_node() {
    created_on_node1_read_on_others(ManagerKind::Backup, ReplicationMode::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sync_failover_keeps_every_session() {
    let mut c = TestCluster::start(
        3,
        config(session(ManagerKind::Delta, ReplicationMode::Sync)),
    )
    .await;
    let n1 = c.node(1).addr;
    let mut ids = Vec::new();
    for _ in 0..300 {
        let r = get(n1, "/app/counter", None).await;
        let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
        get(n1, "/app/counter", Some(&id)).await;
        get(n1, "/app/counter", Some(&id)).await;
        ids.push(id);
    }
    c.crash(1); // right after the last write: sync replication means nothing is in flight
    let n2 = c.node(2).addr;
    let mut ok = 0;
    for id in &ids {
        let r = get(n2, "/app/get?key=counter", Some(id)).await;
        if r.field("value") == Some("3") {
            ok += 1;
        }
    }
    assert_eq!(
        ok,
        ids.len(),
        "sessions correct on node2 after node1 crashed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_failover_after_primary_crash() {
    let mut c = TestCluster::start(
        3,
        config(session(ManagerKind::Backup, ReplicationMode::Sync)),
    )
    .await;
    let n1 = c.node(1).addr;
    let mut ids = Vec::new();
    for _ in 0..30 {
        let r = get(n1, "/app/counter", None).await;
        let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
        get(n1, "/app/counter", Some(&id)).await;
        ids.push(id);
    }
    // Every session has exactly one backup, on node2 or node3, and placement spreads them.
    let on2 = ids.iter().filter(|id| c.holds(2, id)).count();
    let on3 = ids.iter().filter(|id| c.holds(3, id)).count();
    assert_eq!(on2 + on3, ids.len(), "each session has one backup");
    assert!(on2 > 3 && on3 > 3, "backups spread unevenly: {on2} / {on3}");
    c.crash(1);
    let (n2, n3) = (c.node(2).addr, c.node(3).addr);
    for (k, id) in ids.iter().enumerate() {
        let addr = if k % 2 == 0 { n2 } else { n3 };
        let r = get(addr, "/app/counter", Some(id)).await;
        assert_eq!(r.field("counter"), Some("3"), "{r:?}");
        let new_id = r
            .session_id()
            .unwrap_or_else(|| panic!("route not rewritten: {r:?}"));
        assert!(!new_id.ends_with(".node1"), "{new_id}");
    }
    // After failover every session is held by both survivors (primary + its new backup).
    for id in &ids {
        eventually("backup re-created", Duration::from_secs(5), || {
            c.holds(2, id) && c.holds(3, id)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jvm_route_rewrite_moves_the_session_and_reissues_the_cookie() {
    let c = TestCluster::start(3, config(ManagerConfig::default())).await;
    let r = get(c.node(1).addr, "/app/counter", None).await;
    let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    let base = id.trim_end_matches(".node1").to_owned();
    let r = get(c.node(2).addr, "/app/counter", Some(&id)).await;
    assert_eq!(r.field("counter"), Some("2"));
    assert_eq!(r.session_id(), Some(format!("{base}.node2")), "{r:?}");
    assert_eq!(r.field("session"), Some(format!("{base}.node2").as_str()));
    // The new route was replicated (CHANGE_SESSION_ID or with the delta) to node3 and node1.
    let (sid, _) = shoal_session::parse_full_id(&id).unwrap_or_else(|| panic!());
    for i in [1, 3] {
        eventually("route replicated", Duration::from_secs(5), || {
            c.with_session(i, &sid, |s| s.is_some_and(|s| s.route == "node2"))
        })
        .await;
    }
    // A route-only change travels as CHANGE_SESSION_ID.
    let r = get(
        c.node(2).addr,
        "/app/get?key=counter",
        Some(&format!("{base}.node2")),
    )
    .await;
    assert_eq!(r.field("value"), Some("2"));
    assert!(r.session_id().is_none(), "same route: no new cookie");
    let r = get(
        c.node(3).addr,
        "/app/get?key=counter",
        Some(&format!("{base}.node1")),
    )
    .await;
    assert_eq!(r.session_id(), Some(format!("{base}.node3")));
    let sent = c
        .node(3)
        .node
        .registry()
        .service("/app")
        .map(|s| s.stats().sent)
        .unwrap_or_default();
    assert!(
        sent.iter().any(|(k, n)| *k == "changesessionid" && *n >= 1),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_never_creates_a_session_and_header_ids_work() {
    let c = TestCluster::start(2, config(ManagerConfig::default())).await;
    let a = c.node(1).addr;
    let r = get(a, "/app/get?key=counter", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "error=no-session node=node1")
    );
    assert!(r.set_cookie.is_none());
    let r = get(
        a,
        "/app/get",
        Some("0123456789ABCDEF0123456789ABCDEF.node1"),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = get(a, "/app/get", Some("garbage")).await;
    assert_eq!(r.status, 404);
    let stats = get(a, "/app/stats", None).await;
    assert_eq!(stats.field("activeSessions"), Some("0"), "{stats:?}");
    assert_eq!(stats.field("members"), Some("1"));
    assert!(stats
        .field("heapUsedKiB")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|v| v > 0));
    // A session with no counter: no-attribute.
    let r = get(a, "/app/set?key=x&size=3", None).await;
    let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    let r = get(a, "/app/get?key=counter", Some(&id)).await;
    assert_eq!(
        r.body,
        format!("error=no-attribute session={id} node=node1")
    );
    // The header works like the cookie, on another node too.
    let r = get_with(
        c.node(2).addr,
        "/app/get?key=x",
        None,
        &[("X-Shoal-Session", &id)],
    )
    .await;
    assert_eq!(r.field("size"), Some("3"), "{r:?}");
    // Title-Case header names, as Tomcat sends them (wrk's Lua looks up "Set-Cookie").
    let r = get(a, "/app/counter", None).await;
    assert!(r.head.contains("\r\nSet-Cookie: JSESSIONID="), "{}", r.head);
    assert!(
        r.head
            .contains("\r\nContent-Type: text/plain;charset=UTF-8"),
        "{}",
        r.head
    );
    let r = get(a, "/app/nope", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "error=unknown-path path=/nope")
    );
    let r = get(a, "/app/set?size=-1", None).await;
    assert_eq!((r.status, r.body.as_str()), (400, "error=bad-size"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_limits_answer_4xx_and_change_nothing() {
    let mut s = ManagerConfig::default();
    s.limits.max_attribute_bytes = 4096;
    s.limits.max_attributes = 2;
    let c = TestCluster::start(2, config(s)).await;
    let a = c.node(1).addr;
    let r = get(a, "/app/set?key=a&size=100", None).await;
    let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    let r = get(a, "/app/set?key=b&size=5000", Some(&id)).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.body.starts_with("error=attribute-too-large"), "{r:?}");
    get(a, "/app/set?key=b&size=10", Some(&id)).await;
    let r = get(a, "/app/set?key=c&size=10", Some(&id)).await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(
        r.body.contains("max_attributes"),
        "the error names the setting: {r:?}"
    );
    let r = get(c.node(2).addr, "/app/get?key=c", Some(&id)).await;
    assert_eq!(r.status, 404, "rejected write must not replicate: {r:?}");
    let r = get(c.node(2).addr, "/app/get?key=b", Some(&id)).await;
    assert_eq!(r.field("size"), Some("10"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_sync_write_answers_503_then_heals() {
    let c = TestCluster::start(
        3,
        config(session(ManagerKind::Delta, ReplicationMode::Sync)),
    )
    .await;
    let _ = c.mem.clone().with_ack_timeout(Duration::from_millis(300));
    let (n1, n2) = (c.node(1).addr, c.node(2).addr);
    let r = get(n1, "/app/counter", None).await;
    let id = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    let (m1, m2) = (c.node(1).link.local().id, c.node(2).link.local().id);
    c.mem.partition(m1, m2);
    let r = get(n1, "/app/counter", Some(&id)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.starts_with("error=replication-failed"), "{r:?}");
    assert!(r.head.contains("Retry-After: 1"), "{}", r.head);
    c.mem.heal();
    // The next write goes out whole, so node2 catches up without a gap: acknowledged at once.
    let r = get(n1, "/app/counter", Some(&id)).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("3")), "{r:?}");
    let r = get(n2, "/app/get?key=counter", Some(&id)).await;
    assert_eq!(r.field("value"), Some("3"), "{r:?}");
    let failures = c
        .node(1)
        .node
        .registry()
        .service("/app")
        .map(|s| s.stats().replication_failures);
    assert_eq!(failures, Some(1));
}
