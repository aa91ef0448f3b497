//! `MemoryCluster`: N [`ClusterLink`]s in one process, for tests. Delivery is FIFO per
//! receiver; `kill` makes a node vanish (its peers see `MemberRemoved`, sends to it fail),
//! `partition` silently drops traffic between two nodes until `heal`.
use crate::runtime::link::{ClusterLink, Completion, Incoming, LinkEvent, SendResults};
use futures::future::BoxFuture;
use futures::FutureExt;
use shoal_cluster::{Member, MemberId};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Default wait for a synchronous send to be processed (Tomcat's sender timeout: 3000 ms).
const ACK_TIMEOUT: Duration = Duration::from_secs(3);

struct Hub {
    nodes: BTreeMap<MemberId, Slot>,
    cut: HashSet<(MemberId, MemberId)>,
    ack_timeout: Duration,
    /// Asynchronous sends are handed over when their future is first polled (like a
    /// channel's MessageDispatch queue admission), not at the call.
    lazy_async: bool,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            nodes: BTreeMap::new(),
            cut: HashSet::new(),
            ack_timeout: ACK_TIMEOUT,
            lazy_async: false,
        }
    }
}

struct Slot {
    member: Member,
    tx: mpsc::UnboundedSender<LinkEvent>,
}

#[derive(Clone, Default)]
pub struct MemoryCluster {
    hub: Arc<Mutex<Hub>>,
}

pub struct MemoryLink {
    hub: Arc<Mutex<Hub>>,
    member: Member,
    rx: Mutex<Option<mpsc::UnboundedReceiver<LinkEvent>>>,
}

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryCluster {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asynchronous sends enqueue on first poll instead of at the call (see `Hub`).
    pub fn with_lazy_async_sends(self) -> Self {
        lock(&self.hub).lazy_async = true;
        self
    }

    /// How long a synchronous send waits for processing before failing (default 3 s).
    pub fn with_ack_timeout(self, timeout: Duration) -> Self {
        lock(&self.hub).ack_timeout = timeout;
        self
    }

    /// Adds a node named `name` (its route); every present node sees it join.
    pub fn join(&self, name: &str) -> Arc<MemoryLink> {
        let mut id = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut id);
        let member = Member {
            id: MemberId(id),
            name: name.to_owned(),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            domain: "default".into(),
            incarnation: 0,
            meta: BTreeMap::new(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let mut hub = lock(&self.hub);
        for slot in hub.nodes.values() {
            let _ = slot.tx.send(LinkEvent::MemberAdded(member.clone()));
        }
        hub.nodes.insert(
            member.id,
            Slot {
                member: member.clone(),
                tx,
            },
        );
        Arc::new(MemoryLink {
            hub: self.hub.clone(),
            member,
            rx: Mutex::new(Some(rx)),
        })
    }

    /// Removes a node as if it crashed and was detected: peers see `MemberRemoved`.
    pub fn kill(&self, id: MemberId) {
        let mut hub = lock(&self.hub);
        if let Some(dead) = hub.nodes.remove(&id) {
            for slot in hub.nodes.values() {
                let _ = slot.tx.send(LinkEvent::MemberRemoved(dead.member.clone()));
            }
        }
    }

    /// Drops all traffic between `a` and `b` (membership unchanged).
    pub fn partition(&self, a: MemberId, b: MemberId) {
        let mut hub = lock(&self.hub);
        hub.cut.insert((a, b));
        hub.cut.insert((b, a));
    }

    pub fn heal(&self) {
        lock(&self.hub).cut.clear();
    }

    pub fn members(&self) -> BTreeSet<MemberId> {
        lock(&self.hub).nodes.keys().copied().collect()
    }
}

impl ClusterLink for MemoryLink {
    fn local(&self) -> Member {
        self.member.clone()
    }

    fn members(&self) -> Vec<Member> {
        let hub = lock(&self.hub);
        hub.nodes
            .values()
            .filter(|s| s.member.id != self.member.id)
            .map(|s| s.member.clone())
            .collect()
    }

    fn send(
        &self,
        to: &[MemberId],
        payload: Vec<u8>,
        sync: bool,
    ) -> BoxFuture<'static, SendResults> {
        if !sync && lock(&self.hub).lazy_async {
            let link = MemoryLink {
                hub: self.hub.clone(),
                member: self.member.clone(),
                rx: Mutex::new(None),
            };
            let to = to.to_vec();
            return Box::pin(async move {
                tokio::task::yield_now().await;
                link.enqueue(&to, payload, false).await
            });
        }
        self.enqueue(to, payload, sync)
    }

    fn subscribe(&self) -> mpsc::UnboundedReceiver<LinkEvent> {
        let mut rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        rx.take().unwrap_or_else(|| mpsc::unbounded_channel().1)
    }
}

impl MemoryLink {
    /// Hands the message to each destination now; the future waits for sync acks.
    fn enqueue(
        &self,
        to: &[MemberId],
        payload: Vec<u8>,
        sync: bool,
    ) -> BoxFuture<'static, SendResults> {
        let hub = lock(&self.hub);
        let me = self.member.id;
        let mut ready = Vec::new();
        let mut waits = Vec::new();
        for dest in to {
            let slot = hub.nodes.get(dest).filter(|_| hub.nodes.contains_key(&me));
            let Some(slot) = slot else {
                ready.push((*dest, Err("not a member".to_string())));
                continue;
            };
            if hub.cut.contains(&(me, *dest)) {
                if sync {
                    waits.push((*dest, None));
                } else {
                    ready.push((*dest, Ok(())));
                }
                continue;
            }
            let (done, rx) = if sync {
                let (tx, rx) = oneshot::channel();
                (Some(Completion::new(move |r| drop(tx.send(r)))), Some(rx))
            } else {
                (None, None)
            };
            let msg = LinkEvent::Message(Incoming {
                from: me,
                payload: payload.clone(),
                done,
            });
            if slot.tx.send(msg).is_err() {
                ready.push((*dest, Err("receiver closed".to_string())));
            } else if let Some(rx) = rx {
                waits.push((*dest, Some(rx)));
            } else {
                ready.push((*dest, Ok(())));
            }
        }
        let ack_timeout = hub.ack_timeout;
        drop(hub);
        async move {
            for (dest, rx) in waits {
                let r = match rx {
                    Some(rx) => match tokio::time::timeout(ack_timeout, rx).await {
                        Ok(Ok(r)) => r,
                        Ok(Err(_)) => Err("receiver dropped the message".into()),
                        Err(_) => Err("ack timeout".into()),
                    },
                    None => {
                        tokio::time::sleep(ack_timeout).await;
                        Err("ack timeout (partitioned)".into())
                    }
                };
                ready.push((dest, r));
            }
            ready
        }
        .boxed()
    }
}
