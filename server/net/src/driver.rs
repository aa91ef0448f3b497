//! The driver: one task owns the sans-io `Node` and is its only caller. It selects over
//! commands from `Channel` handles, socket events, and a sleep until `poll_timeout`; after
//! each batch of inputs it carries out the node's actions and dispatches its events.
//!
//! It never awaits a connection task (writes go to unbounded per-connection queues whose
//! asynchronous share is bounded by the MessageDispatch semaphore), so no cycle of full
//! channels between two nodes can deadlock.
use crate::channel::{
    Channel, Completion, Incoming, IncomingMessage, MembershipEvent, Outcome, SendReport,
};
use crate::conn::{self, ConnHandle, IoEvent, WriteItem};
use crate::discovery;
use crate::error::NetError;
use crate::listener;
use crate::settings::ChannelSettings;
use crate::stats::ChannelStats;
use shoal_cluster::frame::{Body, FrameCodec, MsgId};
use shoal_cluster::interceptors::{configure_node, MessageDispatch, StaticMembership};
use shoal_cluster::node::Direction;
use shoal_cluster::{
    Action, ConnId, DeliveryStatus, Event, InterceptorStack, Member, MemberId, Node, SendOptions,
};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

/// Inputs drained per wake-up before the node's output is processed (amortises the flush).
const BATCH: usize = 256;

pub(crate) enum Command {
    Send {
        dests: Vec<MemberId>,
        payload: Vec<u8>,
        opts: SendOptions,
        permit: Option<OwnedSemaphorePermit>,
        reply: Option<oneshot::Sender<SendReport>>,
    },
    Complete {
        from: MemberId,
        id: MsgId,
        result: Result<(), String>,
    },
    Stats(oneshot::Sender<ChannelStats>),
    Leave(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// State read by handles without a round trip to the driver.
pub(crate) struct Shared {
    pub local: Member,
    pub members: RwLock<Vec<Member>>,
    pub events: broadcast::Sender<MembershipEvent>,
    queue: Arc<Semaphore>,
    queue_capacity: usize,
    queue_full: AtomicU64,
    pub multicast: Option<Arc<discovery::MulticastStats>>,
}

impl Shared {
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
    });
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    tracing::info!(member = %local, "cluster channel listening on {addr}");
    let node = Node::new(local, s.node.clone(), stack, seed, Instant::now());
    let driver = Driver {
        node,
        conns: HashMap::new(),
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
        tasks,
    };
    tokio::spawn(driver.run(cmd_rx, ctl_rx, io_rx));
    Ok((
        Channel {
            cmd: cmd_tx,
            shared,
        },
        Incoming { rx: in_rx },
    ))
}

pub(crate) struct Driver {
    pub(crate) node: Node,
    pub(crate) conns: HashMap<ConnId, ConnHandle>,
    /// Outbound connects in flight; a Close before they finish cancels them.
    pub(crate) connecting: HashSet<ConnId>,
    /// Which member a connection belongs to, learned from its handshake frames (counters only).
    pub(crate) conn_member: HashMap<ConnId, MemberId>,
    /// Waiting callers of non-asynchronous sends, with their destinations (for shutdown).
    pub(crate) pending: HashMap<MsgId, (Vec<MemberId>, oneshot::Sender<SendReport>)>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) incoming: mpsc::UnboundedSender<IncomingMessage>,
    pub(crate) cmd_tx: mpsc::WeakUnboundedSender<Command>,
    pub(crate) io_tx: mpsc::Sender<IoEvent>,
    pub(crate) ctl_tx: mpsc::Sender<IoEvent>,
    pub(crate) codec: FrameCodec,
    pub(crate) connect_timeout: Duration,
    pub(crate) verify_timeout: Duration,
    /// MessageDispatch permit of the asynchronous send being processed; rides on its frames.
    pub(crate) permit: Option<Arc<OwnedSemaphorePermit>>,
    pub(crate) bad_frames: u64,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Driver {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<Command>,
        mut ctl_rx: mpsc::Receiver<IoEvent>,
        mut io_rx: mpsc::Receiver<IoEvent>,
    ) {
        let mut done: Option<oneshot::Sender<()>> = None;
        'outer: loop {
            let deadline = self.node.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                Some(ev) = ctl_rx.recv() => self.on_io(ev),
                io = io_rx.recv() => if let Some(ev) = io { self.on_io(ev) },
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::Shutdown(tx)) => { done = Some(tx); break 'outer; }
                    Some(c) => self.on_command(c),
                    None => break 'outer,
                },
                _ = sleep_until_opt(deadline) => {}
            }
            while let Ok(ev) = ctl_rx.try_recv() {
                self.on_io(ev);
            }
            for _ in 0..BATCH {
                if let Ok(ev) = io_rx.try_recv() {
                    self.on_io(ev);
                } else {
                    break;
                }
            }
            for _ in 0..BATCH {
                match cmd_rx.try_recv() {
                    Ok(Command::Shutdown(tx)) => {
                        done = Some(tx);
                        break 'outer;
                    }
                    Ok(c) => self.on_command(c),
                    Err(_) => break,
                }
            }
            self.pump();
        }
        self.shutdown().await;
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }

    /// Runs due timers, then carries out every action and dispatches every event.
    pub(crate) fn pump(&mut self) {
        loop {
            let now = Instant::now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
            let mut progressed = false;
            while let Some(a) = self.node.poll_action() {
                self.act(a);
                progressed = true;
            }
            while let Some(e) = self.node.poll_event() {
                self.on_event(e);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Send {
                dests,
                payload,
                opts,
                permit,
                reply,
            } => {
                self.permit = permit.map(Arc::new);
                let id = self.node.send(now, &dests, payload, opts);
                if let Some(r) = reply {
                    self.pending.insert(id, (dests, r));
                }
                // Frames of this message leave now and carry its permit.
                while let Some(a) = self.node.poll_action() {
                    self.act(a);
                }
                self.permit = None;
            }
            Command::Complete { from, id, result } => self.node.complete(now, from, id, result),
            Command::Stats(tx) => {
                let _ = tx.send(self.stats());
            }
            Command::Leave(tx) => {
                self.node.leave(now);
                self.pump();
                let _ = tx.send(());
            }
            Command::Shutdown(_) => {}
        }
    }

    fn on_io(&mut self, ev: IoEvent) {
        let now = Instant::now();
        match ev {
            IoEvent::Connected {
                conn,
                dir,
                peer,
                stream,
            } => {
                if dir == Direction::Outbound && !self.connecting.remove(&conn) {
                    return; // closed by the node while connecting: dropping the stream closes it
                }
                let h = conn::spawn(conn, stream, peer, self.codec.clone(), self.io_tx.clone());
                self.conns.insert(conn, h);
                self.node.handle_connected(now, conn, dir, peer);
            }
            IoEvent::ConnectFailed { conn, reason } => {
                if self.connecting.remove(&conn) {
                    tracing::debug!(?conn, "{reason}");
                    self.node.handle_connect_failed(now, conn, reason);
                }
            }
            IoEvent::Frames { conn, frames } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                for env in frames {
                    if let Body::Hello { member, .. } | Body::HelloAck { member, .. } = &env.body {
                        self.conn_member.insert(conn, member.id);
                    }
                    self.node.handle_frame(now, conn, env);
                }
            }
            IoEvent::Disconnected {
                conn,
                reason,
                bad_frame,
            } => {
                if let Some(h) = self.conns.remove(&conn) {
                    h.reader.abort();
                    self.conn_member.remove(&conn);
                    if bad_frame {
                        self.bad_frames += 1;
                    }
                    self.node.handle_disconnected(now, conn, reason);
                }
            }
            IoEvent::ProbeResult { member, result } => {
                self.node.handle_probe_result(now, member, result)
            }
            IoEvent::Candidates { source, addrs } => {
                for a in addrs {
                    if a == self.shared.local.addr || self.is_member_addr(a) {
                        continue;
                    }
                    tracing::trace!(%a, source, "candidate");
                    self.node.handle_candidate(now, a);
                }
            }
        }
    }

    fn is_member_addr(&self, a: SocketAddr) -> bool {
        self.shared
            .members
            .read()
            .map(|m| m.iter().any(|m| m.addr == a))
            .unwrap_or(false)
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Connect { conn, addr } => {
                self.connecting.insert(conn);
                let (io_tx, timeout) = (self.ctl_tx.clone(), self.connect_timeout);
                tokio::spawn(async move {
                    let ev = match conn::connect(addr, timeout).await {
                        Ok(stream) => IoEvent::Connected {
                            conn,
                            dir: Direction::Outbound,
                            peer: addr,
                            stream,
                        },
                        Err(reason) => IoEvent::ConnectFailed { conn, reason },
                    };
                    let _ = io_tx.send(ev).await;
                });
            }
            Action::Send { conn, bytes } => {
                let item = WriteItem {
                    bytes,
                    _permit: self.permit.clone(),
                };
                if !self.conns.get(&conn).is_some_and(|h| h.write(item)) {
                    tracing::trace!(?conn, "send on a closed connection dropped");
                }
            }
            Action::Close { conn, reason } => {
                self.connecting.remove(&conn);
                self.conn_member.remove(&conn);
                if let Some(h) = self.conns.remove(&conn) {
                    tracing::debug!(?conn, "closing connection: {reason}");
                    // Dropping the write queue lets the writer flush (e.g. a Refused) and close.
                    h.reader.abort();
                }
            }
            Action::Probe { member, addr } => {
                let (io_tx, timeout, codec) =
                    (self.ctl_tx.clone(), self.verify_timeout, self.codec.clone());
                tokio::spawn(async move {
                    let result = conn::probe(addr, timeout, codec).await;
                    let _ = io_tx.send(IoEvent::ProbeResult { member, result }).await;
                });
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::MemberAdded(m) => self.member_added(m),
            Event::MemberDisappeared { member, reason } => self.member_gone(member, reason),
            Event::MemberSuspected { member, reason } => {
                tracing::debug!(member = %member, "member suspected: {reason}");
                let _ = self
                    .shared
                    .events
                    .send(MembershipEvent::Suspected { member, reason });
            }
            Event::Received {
                from,
                id,
                options,
                payload,
            } => {
                let completion = options
                    .has(SendOptions::SYNCHRONIZED_ACK)
                    .then(|| self.cmd_tx.upgrade())
                    .flatten()
                    .map(|cmd| Completion {
                        cmd,
                        from,
                        id,
                        done: false,
                    });
                // If the application dropped its receiver, the completion's Drop reports failure.
                let _ = self.incoming.send(IncomingMessage {
                    from,
                    id,
                    options,
                    payload,
                    completion,
                });
            }
            Event::SendComplete { id, results } => self.send_complete(id, results),
            Event::HandshakeFailed { peer, reason } => {
                tracing::debug!(%peer, "cluster handshake with {peer} failed: {reason}");
            }
        }
    }

    fn send_complete(&mut self, id: MsgId, results: Vec<(MemberId, DeliveryStatus)>) {
        let mut out = Vec::with_capacity(results.len());
        for (m, st) in results {
            let o = match st {
                DeliveryStatus::Delivered => Outcome::Delivered,
                DeliveryStatus::Acked => Outcome::Acked,
                DeliveryStatus::Processed => Outcome::Processed,
                DeliveryStatus::Failed(r) => Outcome::Failed(format!("{}: {r}", self.describe(m))),
            };
            out.push((m, o));
        }
        if let Some((_, tx)) = self.pending.remove(&id) {
            let _ = tx.send(SendReport {
                id: Some(id),
                results: out,
            });
        }
    }

    /// `node2 (127.0.0.1:4002)`, or the short id of a non-member.
    fn describe(&self, id: MemberId) -> String {
        match self
            .shared
            .members
            .read()
            .ok()
            .and_then(|m| m.iter().find(|m| m.id == id).cloned())
        {
            Some(m) => format!("{} ({})", m.name, m.addr),
            None => format!("member {id:?}"),
        }
    }

    fn member_added(&mut self, m: Member) {
        tracing::debug!(member = %m, incarnation = m.incarnation, "member added: {} at {}", m.name, m.addr);
        if let Ok(mut ms) = self.shared.members.write() {
            ms.retain(|x| x.id != m.id);
            ms.push(m.clone());
        }
        let _ = self.shared.events.send(MembershipEvent::Added(m));
    }

    fn member_gone(&mut self, m: Member, reason: shoal_cluster::DisappearReason) {
        // The line the Tomcat bench harness greps: `SimpleTcpCluster.memberDisappeared` and
        // `}:<port>,` (Tomcat prints members as `tcp://{127, 0, 0, 1}:4000,`).
        tracing::info!(
            "SimpleTcpCluster.memberDisappeared member {} tcp://{{{}}}:{}, id={:?} reason={}",
            m.name,
            m.addr.ip(),
            m.addr.port(),
            m.id,
            reason
        );
        if let Ok(mut ms) = self.shared.members.write() {
            ms.retain(|x| x.id != m.id);
        }
        let _ = self
            .shared
            .events
            .send(MembershipEvent::Disappeared { member: m, reason });
    }

    fn stats(&self) -> ChannelStats {
        crate::driver_stats::snapshot(self)
    }

    async fn shutdown(mut self) {
        self.node.leave(Instant::now());
        self.pump();
        for t in &self.tasks {
            t.abort();
        }
        let writers: Vec<JoinHandle<()>> = self
            .conns
            .drain()
            .map(|(_, h)| {
                h.reader.abort();
                h.writer
            })
            .collect();
        for (id, (dests, tx)) in self.pending.drain() {
            let why = "the channel shut down before the send completed";
            let results = dests
                .into_iter()
                .map(|d| (d, Outcome::Failed(why.into())))
                .collect();
            let _ = tx.send(SendReport {
                id: Some(id),
                results,
            });
        }
        // Give the Leave frames a moment to reach the wire; a stuck peer cannot hold us.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            for w in writers {
                let _ = w.await;
            }
        })
        .await;
        self.shared.queue.close();
        tracing::info!("cluster channel stopped");
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
