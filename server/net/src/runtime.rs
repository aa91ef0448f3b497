//! Channel start-up (bind, discovery, driver task) and the state shared by handles.
use crate::backlog::AppBacklog;
use crate::channel::{Channel, Incoming, MembershipEvent};
use crate::discovery;
use crate::driver::Driver;
use crate::error::NetError;
use crate::listener;
use crate::settings::ChannelSettings;
use shoal_cluster::frame::FrameCodec;
use shoal_cluster::interceptors::{configure_node, MessageDispatch, StaticMembership};
use shoal_cluster::{InterceptorStack, Member, MemberId, Node};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// State read by handles without a round trip to the driver.
pub(crate) struct Shared {
    pub local: Member,
    pub members: RwLock<Vec<Member>>,
    pub events: broadcast::Sender<MembershipEvent>,
    queue: Arc<Semaphore>,
    queue_capacity: usize,
    queue_full: AtomicU64,
    pub multicast: Option<Arc<discovery::MulticastStats>>,
    pub backlog: Arc<AppBacklog>,
}

impl Shared {
    /// Wakes senders waiting for queue room: the channel is gone.
    pub fn close_queue(&self) {
        self.queue.close();
    }
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }
    pub fn queue_available(&self) -> usize {
        self.queue.available_permits()
    }
    pub fn queue_full(&self) -> u64 {
        self.queue_full.load(Relaxed)
    }
    /// Waits for `bytes` of room in the MessageDispatch queue; counts when it had to wait.
    pub async fn admit(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = bytes.clamp(1, self.queue_capacity).min(u32::MAX as usize) as u32;
        match self.queue.clone().try_acquire_many_owned(n) {
            Ok(p) => Some(p),
            Err(TryAcquireError::Closed) => None,
            Err(TryAcquireError::NoPermits) => {
                self.queue_full.fetch_add(1, Relaxed);
                self.queue.clone().acquire_many_owned(n).await.ok()
            }
        }
    }
}

pub(crate) async fn start(
    mut s: ChannelSettings,
    stack: InterceptorStack,
    mut extra: Vec<Box<dyn discovery::Discovery>>,
) -> Result<(Channel, Incoming), NetError> {
    // Tomcat-style property layers in the stack override the [cluster] settings.
    configure_node(&stack, &mut s.node);
    if let Some(d) = stack.get::<MessageDispatch>() {
        s.queue_bytes = d.max_queue_size.max(1);
    }
    if let Some(m) = stack.get::<StaticMembership>() {
        let list = m.members.iter().map(|a| a.to_string()).collect();
        let every = Duration::from_millis(s.membership.refresh_ms);
        extra.push(Box::new(discovery::StaticDiscovery::new(list, every)));
    }
    let listener = listener::bind(s.bind, s.port, s.auto_bind).await?;
    let addr = listener.local_addr().map_err(|e| NetError::Bind {
        address: s.bind.to_string(),
        first: s.port,
        last: s.port,
        reason: e.to_string(),
    })?;
    let incarnation = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let seed = s.seed.unwrap_or_else(rand::random);
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
    let local = Member {
        id: MemberId::random(&mut rng),
        name: s.name.clone(),
        addr,
        domain: s.node.domain.clone(),
        incarnation,
        meta: s.meta.clone(),
    };
    let codec = FrameCodec::new(s.node.max_frame);
    // Frames queue here; a small bound keeps a backlog short (TCP pushes back on the peer).
    let (io_tx, io_rx) = mpsc::channel(64);
    // Connection set-up and probe results overtake queued frames: a probe of this node must
    // get its Challenge within verify_timeout even when this node is flooded with data.
    let (ctl_tx, ctl_rx) = mpsc::channel(256);
    let mut tasks = vec![tokio::spawn(listener::accept_loop(
        listener,
        Arc::new(AtomicU64::new(1)),
        ctl_tx.clone(),
    ))];
    let configured = discovery::from_config(&s.membership, &local, &s.node.secret)?;
    let mut providers = configured.providers;
    providers.extend(extra);
    for p in providers {
        tasks.push(tokio::spawn(discovery::run(p, io_tx.clone())));
    }
    let (events, _) = broadcast::channel(256);
    let shared = Arc::new(Shared {
        local: local.clone(),
        members: RwLock::new(Vec::new()),
        events,
        queue: Arc::new(Semaphore::new(s.queue_bytes)),
        queue_capacity: s.queue_bytes,
        queue_full: AtomicU64::new(0),
        multicast: configured.multicast,
        backlog: Arc::new(AppBacklog::new(s.incoming_bytes)),
    });
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    tracing::info!(member = %local, "cluster channel listening on {addr}");
    let node = Node::new(local, s.node.clone(), stack, seed, Instant::now());
    let driver = Driver {
        node,
        conns: HashMap::new(),
        dirty: Vec::new(),
        connecting: HashSet::new(),
        conn_member: HashMap::new(),
        pending: HashMap::new(),
        shared: shared.clone(),
        incoming: in_tx,
        // Weak: the driver stops when every handle is gone (completions hold strong ones).
        cmd_tx: cmd_tx.downgrade(),
        io_tx,
        ctl_tx,
        codec,
        connect_timeout: s.connect_timeout,
        verify_timeout: s.node.verify_timeout,
        permit: None,
        bad_frames: 0,
        batch_bytes: 0,
        tasks,
    };
    tokio::spawn(driver.run(cmd_rx, ctl_rx, io_rx));
    let backlog = shared.backlog.clone();
    Ok((
        Channel {
            cmd: cmd_tx,
            shared,
        },
        Incoming { rx: in_rx, backlog },
    ))
}
