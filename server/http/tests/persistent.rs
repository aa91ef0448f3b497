//! Seed 000 at the HTTP level: two nodes with `manager = "persistent"` over one SQLite file,
//! the balancer modelled by choosing the node of each request. `/app/counter` must count
//! 1, 2, 3, … strictly: never a value twice, never back (Tomcat's PersistentManager serves
//! 4, 5 again in scenario (a) and 6, 7 again in (b)).
mod common;

use common::{config, get, TestCluster};
use shoal_session::persistent::{PersistMode, PersistentConfig};
use shoal_session::{ManagerConfig, ManagerKind};
use shoal_store::{MemoryStore, SqlConfig, Store, StoreConfig};
use std::sync::Arc;

fn persistent(dir: &tempfile::TempDir, mode: PersistMode) -> ManagerConfig {
    ManagerConfig {
        manager: ManagerKind::Persistent,
        persistent: PersistentConfig {
            mode,
            ..PersistentConfig::default()
        },
        store: Some(StoreConfig::Sqlite(SqlConfig {
            path: Some(dir.path().join("sessions.db")),
            ..SqlConfig::default()
        })),
        ..ManagerConfig::default()
    }
}

/// The client: one cookie, replaced whenever a response sets another.
struct Client {
    cookie: Option<String>,
    seen: Vec<i64>,
}

impl Client {
    async fn count(&mut self, c: &TestCluster, node: usize) -> i64 {
        let r = get(c.node(node).addr, "/app/counter", self.cookie.as_deref()).await;
        assert_eq!(r.status, 200, "node{node}: {r:?}");
        if let Some(id) = r.session_id() {
            self.cookie = Some(id);
        }
        let v: i64 = r
            .field("counter")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {r:?}"));
        let expected = self.seen.last().map_or(1, |l| l + 1);
        assert_eq!(
            v, expected,
            "node{node} served {v} after {:?}: a stale or lost session",
            self.seen
        );
        self.seen.push(v);
        v
    }
}

/// Scenario (a) on one cluster; returns the session's last full id.
async fn scenario_a(c: &TestCluster) -> String {
    let mut client = Client {
        cookie: None,
        seen: vec![],
    };
    for node in [1, 1, 1, 2, 2, 1, 1, 2, 2, 1] {
        client.count(c, node).await;
    }
    assert_eq!(client.seen, (1..=10).collect::<Vec<_>>());
    let takeovers: u64 = (1..=2)
        .map(|i| {
            let st = c
                .node(i)
                .node
                .registry()
                .service("/app")
                .expect("ctx")
                .stats();
            st.store.expect("store status").stats.takeovers
        })
        .sum();
    assert!(takeovers >= 3, "each switch is a takeover: {takeovers}");
    // The takeovers' Moved notices crossed the cluster link and dropped the old copies.
    shoal_testkit::eventually("moved notices", std::time::Duration::from_secs(5), || {
        (1..=2)
            .map(|i| {
                let st = c
                    .node(i)
                    .node
                    .registry()
                    .service("/app")
                    .expect("ctx")
                    .stats();
                st.store.expect("store status").stats.moved_dropped
            })
            .sum::<u64>()
            >= 1
    })
    .await;
    client.cookie.expect("a session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_a_balancer_cuts_node1_restores_it_and_cuts_it_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = TestCluster::start(2, config(persistent(&dir, PersistMode::Sticky))).await;
    let _ = scenario_a(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_a_on_the_memory_twin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let c = TestCluster::start_with_store(
        2,
        config(persistent(&dir, PersistMode::Sticky)),
        store.clone(),
    )
    .await;
    let full = scenario_a(&c).await;
    let id = full.split('.').next().unwrap_or_default();
    let row = store
        .load("/app", id)
        .await
        .expect("load")
        .expect("the row of the last id");
    assert!(row.valid && row.version >= 1, "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_b_node2_fails_twice_in_a_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = TestCluster::start(2, config(persistent(&dir, PersistMode::Sticky))).await;
    let mut client = Client {
        cookie: None,
        seen: vec![],
    };
    for _ in 0..3 {
        client.count(&c, 2).await;
    }
    c.crash(2);
    for _ in 0..2 {
        client.count(&c, 1).await;
    }
    c.start_node(2).await;
    for _ in 0..2 {
        client.count(&c, 2).await;
    }
    c.crash(2);
    // node1 still holds its copy from the first failover (4, 5): it must not serve it.
    for _ in 0..2 {
        client.count(&c, 1).await;
    }
    assert_eq!(client.seen, (1..=9).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_concurrent_writes_on_two_nodes_lose_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = TestCluster::start(2, config(persistent(&dir, PersistMode::PerRequest))).await;
    let first = get(c.node(1).addr, "/app/counter", None).await;
    assert_eq!(first.field("counter"), Some("1"), "{first:?}");
    let cookie = first.session_id().expect("a session");
    let (mut acked, mut refused) = (0i64, 0u64);
    for _ in 0..20 {
        let (a, b) = tokio::join!(
            get(c.node(1).addr, "/app/counter", Some(&cookie)),
            get(c.node(2).addr, "/app/counter", Some(&cookie)),
        );
        for r in [a, b] {
            match r.status {
                200 => acked += 1,
                503 => {
                    assert!(
                        r.header("retry-after").is_some(),
                        "503 without Retry-After: {r:?}"
                    );
                    refused += 1;
                }
                s => panic!("unexpected status {s}: {r:?}"),
            }
        }
    }
    // Every refused request is a detected conflict, counted.
    let conflicts: u64 = (1..=2)
        .map(|i| {
            let st = c
                .node(i)
                .node
                .registry()
                .service("/app")
                .expect("ctx")
                .stats();
            st.store.expect("store status").stats.conflicts
        })
        .sum();
    assert!(
        conflicts >= refused,
        "{refused} refused, {conflicts} conflicts counted"
    );
    let last = get(c.node(2).addr, "/app/counter", Some(&cookie)).await;
    let v: i64 = last
        .field("counter")
        .and_then(|v| v.parse().ok())
        .expect("counter");
    assert_eq!(
        v,
        1 + acked + 1,
        "every acknowledged write is in the store ({acked} acknowledged, {refused} refused)"
    );
}

/// The memory twin behind a switch: while `down`, every call fails as an unreachable store.
#[derive(Debug)]
struct Switched {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

impl Switched {
    fn gate(&self) -> Result<(), shoal_store::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(shoal_store::StoreError::Unreachable {
                store: "memory".into(),
                addr: "memory".into(),
                detail: "switched off by the test".into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for Switched {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn describe(&self) -> String {
        "memory (switchable)".into()
    }
    async fn check(&self) -> Result<(), shoal_store::StoreError> {
        self.gate()
    }
    async fn load(
        &self,
        app: &str,
        id: &str,
    ) -> Result<Option<shoal_store::StoredSession>, shoal_store::StoreError> {
        self.gate()?;
        self.inner.load(app, id).await
    }
    async fn version(&self, app: &str, id: &str) -> Result<Option<u64>, shoal_store::StoreError> {
        self.gate()?;
        self.inner.version(app, id).await
    }
    async fn save(
        &self,
        s: &shoal_store::StoredSession,
        expect: shoal_store::Expect,
    ) -> Result<shoal_store::Cas, shoal_store::StoreError> {
        self.gate()?;
        self.inner.save(s, expect).await
    }
    async fn remove(
        &self,
        app: &str,
        id: &str,
        v: u64,
    ) -> Result<shoal_store::Cas, shoal_store::StoreError> {
        self.gate()?;
        self.inner.remove(app, id, v).await
    }
    async fn touch(
        &self,
        app: &str,
        id: &str,
        v: u64,
        at: i64,
    ) -> Result<shoal_store::Cas, shoal_store::StoreError> {
        self.gate()?;
        self.inner.touch(app, id, v, at).await
    }
    async fn keys(&self, app: &str) -> Result<Vec<String>, shoal_store::StoreError> {
        self.gate()?;
        self.inner.keys(app).await
    }
    async fn count(&self, app: &str) -> Result<u64, shoal_store::StoreError> {
        self.gate()?;
        self.inner.count(app).await
    }
    async fn expired(
        &self,
        app: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, shoal_store::StoreError> {
        self.gate()?;
        self.inner.expired(app, now, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_mode_answers_503_while_the_store_is_down_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Switched {
        inner: MemoryStore::new(),
        down: false.into(),
    });
    let c = TestCluster::start_with_store(
        1,
        config(persistent(&dir, PersistMode::PerRequest)),
        store.clone(),
    )
    .await;
    let first = get(c.node(1).addr, "/app/counter", None).await;
    assert_eq!(first.field("counter"), Some("1"), "{first:?}");
    let cookie = first.session_id().expect("a session");

    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = get(c.node(1).addr, "/app/counter", Some(&cookie)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    assert!(
        r.body.contains("store-unavailable") && r.body.contains("memory (switchable)"),
        "{r:?}"
    );
    let st = c
        .node(1)
        .node
        .registry()
        .service("/app")
        .expect("ctx")
        .stats();
    assert!(
        st.store.expect("store").degraded.is_some(),
        "degraded while down"
    );

    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = get(c.node(1).addr, "/app/counter", Some(&cookie)).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("2")), "{r:?}");
    let st = c
        .node(1)
        .node
        .registry()
        .service("/app")
        .expect("ctx")
        .stats();
    assert!(st.store.expect("store").degraded.is_none(), "recovered");
}
