//! Asynchronous replication is bounded: with a link slower than the requests, the bytes
//! queued for sending stay under `async_queue_bytes` (+ one message per request in
//! flight), requests wait instead (counted in `async_queue_full`), and no update is lost or
//! reordered: a replica fed what the link delivered ends identical to the writer.
use futures::future::BoxFuture;
use rand::SeedableRng;
use shoal_cluster::{Member, MemberId};
use shoal_session::{
    build_manager, decode, AttrValue, ClusterLink, DeltaOp, ManagerConfig, ReplicationMode,
    RequestEnd, SessionId, SessionRegistry, SessionService,
};
use shoal_session::{LinkEvent, SendResults};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

fn member(id: u8, name: &str) -> Member {
    Member {
        id: MemberId([id; 16]),
        name: name.into(),
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        domain: "default".into(),
        incarnation: 0,
        meta: BTreeMap::new(),
    }
}

/// Delivers one message per permit of `gate` (the test drains it slowly), and measures the
/// payload bytes handed to `send` but not yet delivered. `taking`: like the real channel,
/// `send` takes the payload into the link's own queue at once (reported by `queued_bytes`)
/// and its future is ready; otherwise the future holds the payload until delivered.
struct SlowLink {
    taking: bool,
    backlog: Arc<Mutex<VecDeque<Vec<u8>>>>,
    gate: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    sends: AtomicUsize,
    max_in_flight: Arc<AtomicUsize>,
    delivered: Arc<Mutex<Vec<Vec<u8>>>>,
    events: Mutex<Option<mpsc::UnboundedSender<LinkEvent>>>,
}

impl ClusterLink for SlowLink {
    fn local(&self) -> Member {
        member(1, "node1")
    }
    fn members(&self) -> Vec<Member> {
        Vec::new() // the peer arrives as an event, after the (alone, immediate) start
    }
    fn send(
        &self,
        to: &[MemberId],
        payload: Vec<u8>,
        sync: bool,
    ) -> BoxFuture<'static, SendResults> {
        assert!(!sync, "this test replicates asynchronously only");
        self.sends.fetch_add(1, SeqCst);
        let now = self.in_flight.fetch_add(payload.len(), SeqCst) + payload.len();
        self.max_in_flight.fetch_max(now, SeqCst);
        let (gate, in_flight, delivered) = (
            self.gate.clone(),
            self.in_flight.clone(),
            self.delivered.clone(),
        );
        let to = to.to_vec();
        if self.taking {
            lock(&self.backlog).push_back(payload);
            return Box::pin(std::future::ready(
                to.into_iter().map(|m| (m, Ok(()))).collect(),
            ));
        }
        Box::pin(async move {
            if let Ok(p) = gate.acquire().await {
                p.forget();
            }
            in_flight.fetch_sub(payload.len(), SeqCst);
            lock(&delivered).push(payload);
            to.into_iter().map(|m| (m, Ok(()))).collect()
        })
    }
    fn queued_bytes(&self) -> usize {
        if self.taking {
            self.in_flight.load(SeqCst)
        } else {
            0
        }
    }
    fn subscribe(&self) -> mpsc::UnboundedReceiver<LinkEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(LinkEvent::MemberAdded(member(2, "node2")));
        *self.events.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }
}

async fn write(svc: &SessionService, id: &SessionId, value: Vec<u8>) -> Result<(), String> {
    let end = RequestEnd {
        id: Some(id.clone()),
        ops: vec![DeltaOp::Set("data".into(), AttrValue::Bytes(value))],
        accessed: true,
        replicate: true,
        invalidate: false,
    };
    svc.end_request(end).await.map_err(|e| e.to_string())
}

async fn writer(svc: Arc<SessionService>, task: usize, writes: usize, size: usize) -> SessionId {
    let id = svc.create().id;
    for i in 0..writes {
        let value = vec![(task + i) as u8; size];
        if let Err(e) = write(&svc, &id, value).await {
            panic!("writer {task} write {i}: {e}");
        }
    }
    id
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_queue_stays_bounded_and_loses_nothing() {
    bounded_and_complete(false).await;
}

/// The link takes every send at once into its own queue (the channel's MessageDispatch):
/// its backlog counts against the bound too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_queue_counts_against_the_bound() {
    bounded_and_complete(true).await;
}

async fn bounded_and_complete(taking: bool) {
    const LIMIT: usize = 64 << 10;
    const TASKS: usize = 8;
    const WRITES: usize = 60;
    const SIZE: usize = 4 << 10;
    let cfg = ManagerConfig {
        replication: ReplicationMode::Async,
        async_queue_bytes: LIMIT,
        ..ManagerConfig::default()
    };
    let link = Arc::new(SlowLink {
        taking,
        backlog: Arc::new(Mutex::new(VecDeque::new())),
        gate: Arc::new(Semaphore::new(0)),
        in_flight: Arc::new(AtomicUsize::new(0)),
        sends: AtomicUsize::new(0),
        max_in_flight: Arc::new(AtomicUsize::new(0)),
        delivered: Arc::new(Mutex::new(Vec::new())),
        events: Mutex::new(None),
    });
    let reg = SessionRegistry::start(link.clone(), &[("/app".to_string(), cfg.clone())])
        .expect("registry starts");
    let svc = reg.service("/app").unwrap_or_else(|| panic!("no /app"));
    // The peer's MemberAdded goes through the pump: probe until a write is replicated.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while link.sends.load(SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "peer never added");
        let probe = svc.create().id;
        if let Err(e) = write(&svc, &probe, vec![0; 8]).await {
            panic!("probe: {e}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    link.gate.add_permits(1);
    // The link delivers ~one message per 100 µs, slower than the writers produce.
    let l = link.clone();
    let drain = tokio::spawn(async move {
        loop {
            l.gate.add_permits(1);
            let next = lock(&l.backlog).pop_front();
            if let Some(payload) = next {
                l.in_flight.fetch_sub(payload.len(), SeqCst);
                lock(&l.delivered).push(payload);
            }
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
    });
    let writers: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(writer(svc.clone(), t, WRITES, SIZE)))
        .collect();
    let mut ids = Vec::new();
    for w in writers {
        match w.await {
            Ok(id) => ids.push(id),
            Err(e) => panic!("writer failed: {e}"),
        }
    }
    // Everything still queued drains (nothing was dropped).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while svc.stats().async_queue_bytes > 0 || link.in_flight.load(SeqCst) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue never drained"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drain.abort();

    let stats = svc.stats();
    let max = link.max_in_flight.load(SeqCst);
    let one_message = SIZE + 512;
    assert!(
        max <= LIMIT + TASKS * one_message,
        "{max} bytes queued, bound {LIMIT} + {TASKS} x {one_message}"
    );
    assert!(
        stats.async_queue_full > 0,
        "the writers never had to wait: {stats:?}"
    );

    // A replica fed exactly what was delivered ends with every session at the writer's state.
    let mut replica = build_manager(
        "/app",
        MemberId([2; 16]),
        "node2",
        cfg,
        rand::rngs::StdRng::seed_from_u64(7),
    );
    let _ = replica.start(&[], 0);
    // (No member_added: a node started alone would begin a state transfer with it.)
    assert!(replica.is_ready());
    let delivered = std::mem::take(&mut *link.delivered.lock().unwrap_or_else(|p| p.into_inner()));
    for payload in delivered {
        let env = decode(&payload).unwrap_or_else(|e| panic!("{e}"));
        let r = replica.handle_message(MemberId([1; 16]), env.msg, shoal_session::now_ms());
        assert_eq!(r.ack, Ok(()));
    }
    for id in &ids {
        let ours = svc.with_manager(|m| m.session(id).map(|s| (s.version, s.attributes.clone())));
        let theirs = replica
            .session(id)
            .map(|s| (s.version, s.attributes.clone()));
        assert!(
            ours.is_some() && ours == theirs,
            "{id:?} differs on the replica: version {:?} vs {:?}",
            ours.as_ref().map(|o| o.0),
            theirs.as_ref().map(|o| o.0)
        );
        assert_eq!(ours.map(|o| o.0), Some(WRITES as u64));
    }
}
