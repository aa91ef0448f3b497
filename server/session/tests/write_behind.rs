//! A store behind the replicated managers (issue 10 item 4): write-behind from the serving
//! node, a whole-cluster restart served from the store, a store outage, and a stale writer
//! that never overwrites a newer row. `MemoryCluster` + `MemoryStore`; deadlines are
//! conditions polled until they hold, no fixed sleeps.
use async_trait::async_trait;
use shoal_session::persistent::record::{self, Record};
use shoal_session::{
    AttrValue, ClusterLink, DeltaOp, ManagerConfig, ManagerKind, MemoryCluster, ReplicationMode,
    RequestEnd, SessionId, SessionRegistry, SessionService,
};
use shoal_store::{Cas, Expect, MemoryStore, Store, StoreConfig, StoreError, StoredSession};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const APP: &str = "/app";

fn config(kind: ManagerKind) -> ManagerConfig {
    ManagerConfig {
        manager: kind,
        replication: ReplicationMode::Sync,
        // Only its presence matters: the test passes the store itself.
        store: Some(StoreConfig::Sqlite(Default::default())),
        ..ManagerConfig::default()
    }
}

fn start(
    mem: &MemoryCluster,
    name: &str,
    cfg: &ManagerConfig,
    store: Arc<dyn Store>,
) -> (Arc<SessionRegistry>, Arc<SessionService>) {
    let link = mem.join(name);
    let stores = BTreeMap::from([(APP.to_string(), store)]);
    let reg = SessionRegistry::start_with_stores(
        link as Arc<dyn ClusterLink>,
        &[(APP.to_string(), cfg.clone())],
        &stores,
    )
    .expect("registry starts");
    let svc = reg.service(APP).expect("/app");
    (reg, svc)
}

async fn write(svc: &SessionService, id: Option<SessionId>, value: u64) -> SessionId {
    let id = id.unwrap_or_else(|| svc.create().id);
    let end = RequestEnd {
        id: Some(id.clone()),
        ops: vec![DeltaOp::Set("n".into(), AttrValue::Json(value.to_string()))],
        accessed: true,
        replicate: true,
        invalidate: false,
    };
    svc.end_request(end).await.expect("request succeeds");
    id
}

/// Polls `cond` every 5 ms until it holds or `limit` passes.
async fn until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The stored session `id`, decoded.
async fn stored(store: &dyn Store, id: &SessionId) -> Option<shoal_session::Session> {
    let row = store.load(APP, id.as_str()).await.expect("load")?;
    match record::decode(id, &row.data).expect("decodes") {
        Record::Live(s) => Some(s),
        Record::Moved { .. } => None,
    }
}

fn value(s: &shoal_session::Session) -> Option<AttrValue> {
    s.attributes.get("n").cloned()
}

fn n(v: u64) -> Option<AttrValue> {
    Some(AttrValue::Json(v.to_string()))
}

/// Waits until every one of `ids` is stored with value `v`.
async fn all_stored(store: &MemoryStore, ids: &[SessionId], v: u64, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        let mut ok = true;
        for id in ids {
            ok &= stored(store, id).await.is_some_and(|s| value(&s) == n(v));
        }
        if ok {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sync_writes_reach_the_store_within_the_measured_lag() {
    let mem = MemoryCluster::new();
    let store = MemoryStore::new();
    let cfg = config(ManagerKind::Delta);
    let (_ra, a) = start(&mem, "a", &cfg, Arc::new(store.clone()));
    let (_rb, b) = start(&mem, "b", &cfg, Arc::new(store.clone()));
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    assert!(b.wait_ready(Duration::from_secs(5)).await);
    let mut ids = Vec::new();
    for i in 0..50 {
        let svc = if i % 2 == 0 { &a } else { &b };
        ids.push(write(svc, None, 1).await);
    }
    for id in &ids {
        write(&a, Some(id.clone()), 2).await;
    }
    let mut max_lag = 0;
    let drained = until(Duration::from_secs(5), || {
        let (sa, sb) = (
            a.write_behind().expect("write-behind").stats(),
            b.write_behind().expect("write-behind").stats(),
        );
        max_lag = max_lag.max(sa.lag_ms).max(sb.lag_ms);
        sa.queued == 0 && sb.queued == 0
    })
    .await;
    assert!(drained, "queues drain");
    assert!(all_stored(&store, &ids, 2, Duration::from_secs(1)).await);
    let sa = a.write_behind().expect("write-behind").stats();
    assert!(sa.writes > 0 && sa.errors == 0, "{sa:?}");
    assert_eq!(sa.lag_ms, 0);
    assert!(max_lag < 5_000, "lag {max_lag} ms");
    // The same numbers in the context's stats (for /metrics and the admin API).
    let st = a.stats().write_behind.expect("write-behind stats");
    assert_eq!((st.queued, st.writes), (0, sa.writes));
    // Only the serving node writes: B never wrote A's second round, so the rows are A's.
    let row = store
        .load(APP, ids[1].as_str())
        .await
        .expect("load")
        .expect("row");
    assert_eq!(row.owner.as_deref(), Some("a"));
    // An invalidation removes the row.
    let end = RequestEnd {
        id: Some(ids[0].clone()),
        invalidate: true,
        accessed: true,
        replicate: true,
        ..RequestEnd::default()
    };
    a.end_request(end).await.expect("invalidated");
    assert!(
        a.write_behind()
            .expect("write-behind")
            .flush(Duration::from_secs(5))
            .await
    );
    assert!(store
        .load(APP, ids[0].as_str())
        .await
        .expect("load")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_loads_every_session_from_the_store() {
    let store = MemoryStore::new();
    let cfg = config(ManagerKind::Delta);
    let mut ids = Vec::new();
    {
        let mem = MemoryCluster::new();
        let (ra, a) = start(&mem, "a", &cfg, Arc::new(store.clone()));
        let (rb, b) = start(&mem, "b", &cfg, Arc::new(store.clone()));
        assert!(a.wait_ready(Duration::from_secs(5)).await);
        assert!(b.wait_ready(Duration::from_secs(5)).await);
        for i in 0..40u64 {
            let svc = if i % 2 == 0 { &a } else { &b };
            let id = write(svc, None, i).await;
            write(svc, Some(id.clone()), i + 100).await;
            ids.push(id);
        }
        assert!(ra.stop_stores(Duration::from_secs(5)).await);
        assert!(rb.stop_stores(Duration::from_secs(5)).await);
        drop((ra, rb, a, b));
    }
    // A new cluster, nobody holding state, on the same store.
    let mem = MemoryCluster::new();
    let (_ra, a) = start(&mem, "a2", &cfg, Arc::new(store.clone()));
    let (_rb, b) = start(&mem, "b2", &cfg, Arc::new(store.clone()));
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    assert!(b.wait_ready(Duration::from_secs(5)).await);
    for (i, id) in ids.iter().enumerate() {
        let svc = if i % 3 == 0 { &b } else { &a };
        let s = svc.find(id).await.expect("found in the store");
        assert_eq!(value(&s), n(i as u64 + 100));
    }
    // An adopted session is replicated whole on its next change.
    write(&a, Some(ids[1].clone()), 7).await;
    let on_b = b
        .with_manager(|m| m.session(&ids[1]).cloned())
        .expect("replicated");
    assert_eq!(value(&on_b), n(7));
    assert!(
        a.write_behind()
            .expect("write-behind")
            .flush(Duration::from_secs(5))
            .await
    );
    assert_eq!(stored(&store, &ids[1]).await.and_then(|s| value(&s)), n(7));
    assert!(a.write_behind().expect("write-behind").stats().adopted > 0);
}

/// A store that fails every call while `down` is set.
#[derive(Debug)]
struct Flaky {
    inner: MemoryStore,
    down: AtomicBool,
}

impl Flaky {
    fn gate(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unreachable {
                store: "flaky".into(),
                addr: "memory".into(),
                detail: "down for the test".into(),
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Flaky {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn describe(&self) -> String {
        "flaky memory".into()
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.gate()?;
        self.inner.check().await
    }
    async fn load(&self, app: &str, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.gate()?;
        self.inner.load(app, id).await
    }
    async fn version(&self, app: &str, id: &str) -> Result<Option<u64>, StoreError> {
        self.gate()?;
        self.inner.version(app, id).await
    }
    async fn save(&self, s: &StoredSession, expect: Expect) -> Result<Cas, StoreError> {
        self.gate()?;
        self.inner.save(s, expect).await
    }
    async fn remove(&self, app: &str, id: &str, version: u64) -> Result<Cas, StoreError> {
        self.gate()?;
        self.inner.remove(app, id, version).await
    }
    async fn touch(&self, app: &str, id: &str, v: u64, at: i64) -> Result<Cas, StoreError> {
        self.gate()?;
        self.inner.touch(app, id, v, at).await
    }
    async fn keys(&self, app: &str) -> Result<Vec<String>, StoreError> {
        self.gate()?;
        self.inner.keys(app).await
    }
    async fn count(&self, app: &str) -> Result<u64, StoreError> {
        self.gate()?;
        self.inner.count(app).await
    }
    async fn expired(
        &self,
        app: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.gate()?;
        self.inner.expired(app, now_ms, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_queues_and_drains_without_loss() {
    let mem = MemoryCluster::new();
    let store = MemoryStore::new();
    let flaky = Arc::new(Flaky {
        inner: store.clone(),
        down: AtomicBool::new(false),
    });
    let mut cfg = config(ManagerKind::Delta);
    cfg.write_behind.retry_max_ms = 100;
    let (ra, a) = start(&mem, "a", &cfg, flaky.clone());
    let (_rb, b) = start(&mem, "b", &cfg, flaky.clone());
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    assert!(b.wait_ready(Duration::from_secs(5)).await);
    let wb = a.write_behind().expect("write-behind").clone();
    assert!(ra.check_stores(Duration::from_secs(5)).await.is_ok());
    assert!(wb.stats().checked);
    assert_eq!(wb.stats().degraded, None, "a checked store is not degraded");
    flaky.down.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = write(&a, None, i).await;
        write(&a, Some(id.clone()), 1000).await;
        ids.push(id);
    }
    let s = wb.stats();
    assert_eq!(s.queued, 30, "one entry per session: {s:?}");
    assert!(until(Duration::from_secs(5), || wb.stats().errors > 0).await);
    assert!(wb.stats().last_error.is_some());
    assert!(
        wb.stats().degraded.is_some(),
        "a failing store counts as degraded: {:?}",
        wb.stats()
    );
    flaky.down.store(false, Ordering::SeqCst);
    assert!(wb.flush(Duration::from_secs(10)).await, "{:?}", wb.stats());
    assert_eq!(
        wb.stats().degraded,
        None,
        "a successful write ends the degraded state"
    );
    assert!(all_stored(&store, &ids, 1000, Duration::from_secs(1)).await);
    assert_eq!(wb.stats().lag_ms, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_requests_wait_not_drop() {
    let mem = MemoryCluster::new();
    let store = MemoryStore::new();
    let flaky = Arc::new(Flaky {
        inner: store.clone(),
        down: AtomicBool::new(false),
    });
    let mut cfg = config(ManagerKind::Delta);
    cfg.write_behind.max_sessions = 5;
    cfg.write_behind.retry_max_ms = 50;
    let (_ra, a) = start(&mem, "a", &cfg, flaky.clone());
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    let wb = a.write_behind().expect("write-behind").clone();
    assert!(until(Duration::from_secs(5), || wb.stats().checked).await);
    flaky.down.store(true, Ordering::SeqCst);
    let a2 = a.clone();
    let writer = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(write(&a2, None, i).await);
        }
        ids
    });
    assert!(until(Duration::from_secs(5), || wb.stats().full_waits > 0).await);
    assert!(!writer.is_finished());
    flaky.down.store(false, Ordering::SeqCst);
    let ids = writer.await.expect("writer");
    assert!(wb.flush(Duration::from_secs(10)).await);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            stored(&store, id).await.and_then(|s| value(&s)),
            n(i as u64)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_writer_never_overwrites_a_newer_row() {
    let mem = MemoryCluster::new();
    let store = MemoryStore::new();
    let cfg = config(ManagerKind::Delta);
    let (_ra, a) = start(&mem, "a", &cfg, Arc::new(store.clone()));
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    let id = write(&a, None, 1).await;
    assert!(
        a.write_behind()
            .expect("write-behind")
            .flush(Duration::from_secs(5))
            .await
    );
    let mine = stored(&store, &id).await.expect("stored");
    // Another writer (a node of another partition) stored a newer version meanwhile.
    let row = store
        .load(APP, id.as_str())
        .await
        .expect("load")
        .expect("row");
    let mut newer = mine.clone();
    newer.version += 5;
    newer
        .attributes
        .insert("n".into(), AttrValue::Json("999".into()));
    let data = record::encode(&id, &Record::Live(newer.clone())).expect("encode");
    let stored_newer = StoredSession {
        version: newer.version + 1,
        data,
        owner: Some("elsewhere".into()),
        ..row.clone()
    };
    assert!(store
        .save(&stored_newer, Expect::Version(row.version))
        .await
        .expect("save")
        .is_done());
    // A's next write is older by rank (version 2 < 6): counted, not written.
    write(&a, Some(id.clone()), 2).await;
    let wb = a.write_behind().expect("write-behind");
    assert!(wb.flush(Duration::from_secs(5)).await);
    let now = stored(&store, &id).await.expect("stored");
    assert_eq!(value(&now), n(999));
    assert_eq!(now.version, newer.version);
    let s = wb.stats();
    assert!(s.conflicts >= 1 && s.stale_skipped >= 1, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_manager_restart_loads_from_the_store() {
    let store = MemoryStore::new();
    let cfg = config(ManagerKind::Backup);
    let mut ids = Vec::new();
    {
        let mem = MemoryCluster::new();
        let (ra, a) = start(&mem, "a", &cfg, Arc::new(store.clone()));
        let (rb, b) = start(&mem, "b", &cfg, Arc::new(store.clone()));
        assert!(a.wait_ready(Duration::from_secs(5)).await);
        assert!(b.wait_ready(Duration::from_secs(5)).await);
        for i in 0..10u64 {
            let svc = if i % 2 == 0 { &a } else { &b };
            let id = write(svc, None, i).await;
            write(svc, Some(id.clone()), i + 100).await;
            ids.push(id);
        }
        assert!(ra.stop_stores(Duration::from_secs(5)).await);
        assert!(rb.stop_stores(Duration::from_secs(5)).await);
    }
    let mem = MemoryCluster::new();
    let (_ra, a) = start(&mem, "a2", &cfg, Arc::new(store.clone()));
    let (_rb, b) = start(&mem, "b2", &cfg, Arc::new(store.clone()));
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    assert!(b.wait_ready(Duration::from_secs(5)).await);
    for (i, id) in ids.iter().enumerate() {
        let s = a.find(id).await.expect("found in the store");
        assert_eq!(value(&s), n(i as u64 + 100));
    }
    // The next request takes ownership: placed on a backup, saved at a newer version.
    write(&a, Some(ids[0].clone()), 5).await;
    let s = b.find(&ids[0]).await.expect("b reaches it");
    assert_eq!(value(&s), n(5));
    assert!(
        a.write_behind()
            .expect("write-behind")
            .flush(Duration::from_secs(5))
            .await
    );
    assert_eq!(stored(&store, &ids[0]).await.and_then(|s| value(&s)), n(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_by_the_primary_removes_the_row() {
    let mem = MemoryCluster::new();
    let store = MemoryStore::new();
    let mut cfg = config(ManagerKind::Delta);
    cfg.max_inactive_secs = 1;
    cfg.sweep_interval_ms = 20;
    let (_ra, a) = start(&mem, "a", &cfg, Arc::new(store.clone()));
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    let id = write(&a, None, 1).await;
    let wb = a.write_behind().expect("write-behind").clone();
    assert!(wb.flush(Duration::from_secs(5)).await);
    assert!(stored(&store, &id).await.is_some());
    let end = Instant::now() + Duration::from_secs(10);
    while store.load(APP, id.as_str()).await.expect("load").is_some() {
        assert!(
            Instant::now() < end,
            "row removed after expiry: {:?}",
            wb.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(wb.stats().removes >= 1);
    // The manager's tombstone keeps a miss from loading anything back.
    assert!(a.find(&id).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_its_check_is_reported_by_check_stores() {
    let mem = MemoryCluster::new();
    let flaky = Arc::new(Flaky {
        inner: MemoryStore::new(),
        down: AtomicBool::new(true),
    });
    let (reg, _a) = start(&mem, "a", &config(ManagerKind::Delta), flaky.clone());
    let err = reg
        .check_stores(Duration::from_millis(300))
        .await
        .expect_err("the store is down");
    assert!(
        err.contains("/app") && err.contains("down for the test"),
        "{err}"
    );
    flaky.down.store(false, Ordering::SeqCst);
    assert!(reg.check_stores(Duration::from_secs(5)).await.is_ok());
}
