//! The runtime (SessionRegistry + SessionService) over the in-memory cluster: a 10,000
//! session state transfer, and a node joining while writes flow loses nothing.
use shoal_session::{
    AttrValue, ClusterLink, DeltaOp, ManagerConfig, MemoryCluster, ReplicationMode, RequestEnd,
    SessionId, SessionRegistry, SessionService,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(
    mem: &MemoryCluster,
    name: &str,
    cfg: &ManagerConfig,
) -> (Arc<SessionRegistry>, Arc<SessionService>) {
    let link = mem.join(name);
    let reg = SessionRegistry::start(
        link as Arc<dyn ClusterLink>,
        &[("/app".to_string(), cfg.clone())],
    )
    .expect("registry starts");
    let svc = reg.service("/app").unwrap_or_else(|| panic!("no /app"));
    (reg, svc)
}

async fn write(
    svc: &SessionService,
    id: Option<SessionId>,
    key: &str,
    value: AttrValue,
) -> Result<SessionId, String> {
    let id = match id {
        Some(id) => id,
        None => svc.create().id,
    };
    let ops = vec![DeltaOp::Set(key.into(), value)];
    let end = RequestEnd {
        id: Some(id.clone()),
        ops,
        accessed: true,
        replicate: true,
        invalidate: false,
    };
    svc.end_request(end).await.map_err(|e| e.to_string())?;
    Ok(id)
}

/// Every session of `a` is on `b` with the same version and attributes.
fn same(a: &SessionService, b: &SessionService) -> Result<usize, String> {
    let ids = a.with_manager(|m| m.session_ids());
    for id in &ids {
        let x = a.with_manager(|m| m.session(id).map(|s| (s.version, s.attributes.clone())));
        let y = b.with_manager(|m| m.session(id).map(|s| (s.version, s.attributes.clone())));
        if x != y {
            return Err(format!(
                "{id:?}: {:?} vs {:?}",
                x.map(|v| v.0),
                y.map(|v| v.0)
            ));
        }
    }
    Ok(ids.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_node_receives_10000_sessions_in_batches() {
    let mem = MemoryCluster::new();
    let cfg = ManagerConfig::default();
    let (_ra, a) = start(&mem, "node1", &cfg);
    let kib = AttrValue::Bytes(vec![b'x'; 1024]);
    for _ in 0..10_000 {
        write(&a, None, "data", kib.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let t0 = Instant::now();
    let (_rb, b) = start(&mem, "node2", &cfg);
    assert!(
        b.wait_ready(Duration::from_secs(20)).await,
        "transfer did not finish"
    );
    let took = t0.elapsed();
    assert_eq!(same(&a, &b), Ok(10_000));
    let st = b.stats();
    assert_eq!(st.state_transfers, 1);
    assert_eq!(st.last_transfer_sessions, 10_000);
    let batches = st
        .received
        .iter()
        .find(|(k, _)| *k == "all_session_data")
        .map(|x| x.1);
    assert_eq!(batches, Some(10), "batches of 1000");
    println!("10,000 x 1 KiB sessions transferred in {took:?}");
}

async fn join_while_writing(mode: ReplicationMode) {
    let mem = MemoryCluster::new();
    let cfg = ManagerConfig {
        replication: mode,
        send_all_sessions_size: 50,
        ..ManagerConfig::default()
    };
    let (_ra, a) = start(&mem, "node1", &cfg);
    let (_rb, b) = start(&mem, "node2", &cfg);
    assert!(b.wait_ready(Duration::from_secs(5)).await);
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push(
            write(&a, None, "n", AttrValue::Json(i.to_string()))
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for (w, svc) in [a.clone(), b.clone()].into_iter().enumerate() {
        let (ids, stop, done) = (ids.clone(), stop.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            // Writer w owns every other session, so writes never conflict.
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                let id = ids[(n as usize * 2 + w) % ids.len()].clone();
                // Like a request: look the session up first (async replicas may lag).
                if svc.find(&id).await.is_some() {
                    write(&svc, Some(id), "n", AttrValue::Json(n.to_string()))
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                }
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            n
        }));
    }
    let wait_writes = |n: u64| {
        let done = done.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while done.load(Ordering::Relaxed) < n {
                assert!(
                    Instant::now() < deadline,
                    "writers stalled below {n} writes"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_writes(300).await; // writes flow before the join...
    let (_rc, c) = start(&mem, "node3", &cfg);
    assert!(
        c.wait_ready(Duration::from_secs(10)).await,
        "node3 transfer did not finish"
    );
    let now = done.load(Ordering::Relaxed);
    wait_writes(now + 300).await; // ...and after it
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap_or(0);
    }
    assert!(total > 100, "writers made {total} writes");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = same(&a, &c)
            .and_then(|_| same(&b, &c))
            .and_then(|_| same(&c, &a));
        match ok {
            Ok(n) => {
                assert_eq!(n, 500);
                break;
            }
            Err(e) if Instant::now() > deadline => {
                panic!("{mode:?}: node3 differs after {total} writes: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert_eq!(c.stats().conflicts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_joining_while_sync_writes_flow_loses_nothing() {
    join_while_writing(ReplicationMode::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_joining_while_async_writes_flow_loses_nothing() {
    join_while_writing(ReplicationMode::Async).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_sends_keep_their_order_over_a_link_that_enqueues_on_poll() {
    let mem = MemoryCluster::new().with_lazy_async_sends();
    let cfg = ManagerConfig {
        replication: ReplicationMode::Async,
        ..ManagerConfig::default()
    };
    let (_ra, a) = start(&mem, "node1", &cfg);
    let (_rb, b) = start(&mem, "node2", &cfg);
    assert!(b.wait_ready(Duration::from_secs(5)).await);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            write(&a, None, "n", AttrValue::Json(i.to_string()))
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    for n in 0..2000u64 {
        let id = ids[(n % 20) as usize].clone();
        write(&a, Some(id), "n", AttrValue::Json(n.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while same(&a, &b).is_err() {
        assert!(
            Instant::now() < deadline,
            "node2 did not converge: {:?}",
            same(&a, &b)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The runtime polls asynchronous sends one after another: nothing arrived out of order.
    assert_eq!(b.stats().buffered_deltas, 0);
    assert_eq!(b.stats().conflicts, 0);
}
