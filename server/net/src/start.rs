//! Channel start-up: binds the receiver, starts discovery and the driver task, and returns
//! the pieces [`crate::Channel::start`] assembles into the handles (this file does not know
//! the handle type).
use crate::backlog::AppBacklog;
use crate::command::Command;
use crate::discovery;
use crate::driver::Driver;
use crate::error::NetError;
use crate::incoming::Incoming;
use crate::listener;
use crate::settings::ChannelSettings;
use crate::shared::Shared;
use shoal_cluster::interceptors::{configure_node, MessageDispatch, StaticMembership};
use shoal_cluster::{FrameCodec, InterceptorStack, Member, MemberId, Node};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// What a started channel is made of: the driver's command sender, the state handles read
/// directly, and the application's receive queue.
pub(crate) struct Started {
    pub cmd: mpsc::UnboundedSender<Command>,
    pub shared: Arc<Shared>,
    pub incoming: Incoming,
}

pub(crate) async fn start(
    mut s: ChannelSettings,
    stack: InterceptorStack,
    mut extra: Vec<Box<dyn discovery::Discovery>>,
) -> Result<Started, NetError> {
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
    let shared = Arc::new(Shared::new(
        local.clone(),
        s.queue_bytes,
        configured.multicast,
        Arc::new(AppBacklog::new(s.incoming_bytes)),
    ));
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
    Ok(Started {
        cmd: cmd_tx,
        shared,
        incoming: Incoming { rx: in_rx, backlog },
    })
}
