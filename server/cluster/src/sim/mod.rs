//! Deterministic simulation: N nodes, virtual time, a seeded RNG and an in-memory network
//! that delays, reorders, duplicates, resets and partitions (see `net` for the model).
//!
//! Same seed, same run: the only clock read is `Instant::now()` once, as the base of virtual
//! time, and every choice goes through the sim's `StdRng`. Scenario methods (`add_node`,
//! `kill`, `restart`, `partition`, `heal`, `send`, `run_for`, `run_until`) read like a script.
//! Static discovery: every `discovery_every`, each node is fed every other node's address.
mod net;
mod scenario;
mod wire;

pub use net::{Chaos, Delivery};
pub use scenario::{Check, Op};

use crate::auth::ClusterSecret;
use crate::frame::MsgId;
use crate::interceptor::InterceptorStack;
use crate::member::{Member, MemberId};
use crate::node::{DeliveryStatus, Event, Node, NodeConfig};
use crate::options::SendOptions;
use net::Network;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub type StackFactory = Box<dyn Fn(usize) -> InterceptorStack>;

pub struct SimNode {
    pub name: String,
    pub addr: SocketAddr,
    /// None while killed.
    pub node: Option<Node>,
    pub incarnation: u64,
    /// This node's config when it differs from `Sim::config` (wrong secret, other domain).
    pub config: Option<NodeConfig>,
    /// Every event with its virtual time since the start.
    pub log: Vec<(Duration, Event)>,
    /// Messages delivered to the application: (sender, id, payload).
    pub received: Vec<(MemberId, MsgId, Vec<u8>)>,
    /// Connections this node closed, with the reason (for debugging failed seeds).
    pub closes: Vec<(Duration, String)>,
    /// Send outcomes by send id.
    pub outcomes: BTreeMap<MsgId, Vec<(MemberId, DeliveryStatus)>>,
}

pub struct Sim {
    pub seed: u64,
    pub base: Instant,
    pub now: Instant,
    pub rng: StdRng,
    pub nodes: Vec<SimNode>,
    pub chaos: Chaos,
    pub config: NodeConfig,
    pub discovery_every: Duration,
    /// Complete synchronized_ack messages as soon as they are delivered.
    pub auto_complete: bool,
    stack: StackFactory,
    net: Network,
    next_discovery: Instant,
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        let base = Instant::now();
        Sim {
            seed,
            base,
            now: base,
            rng: StdRng::seed_from_u64(seed),
            nodes: Vec::new(),
            chaos: Chaos::default(),
            config: NodeConfig::new(ClusterSecret::new(b"sim-secret".to_vec()), "sim"),
            discovery_every: Duration::from_millis(500),
            auto_complete: true,
            stack: Box::new(|_| InterceptorStack::new()),
            net: Network::default(),
            next_discovery: base,
        }
    }
    /// The stack of node `i` (called at every start and restart).
    pub fn with_stack(mut self, f: impl Fn(usize) -> InterceptorStack + 'static) -> Self {
        self.stack = Box::new(f);
        self
    }
    /// A cluster of `n` nodes named node1..nodeN.
    pub fn cluster(seed: u64, n: usize) -> Self {
        let mut s = Sim::new(seed);
        for i in 0..n {
            s.add_node(&format!("node{}", i + 1));
        }
        s
    }
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    pub fn add_node(&mut self, name: &str) -> usize {
        self.add_node_with(name, None)
    }
    /// Adds a node with its own config (e.g. a wrong secret).
    pub fn add_node_with(&mut self, name: &str, config: Option<NodeConfig>) -> usize {
        let i = self.nodes.len();
        let addr = SocketAddr::from(([10, 0, 0, (i + 1) as u8], 4000));
        self.nodes.push(SimNode {
            name: name.to_string(),
            addr,
            node: None,
            incarnation: 0,
            config,
            log: Vec::new(),
            received: Vec::new(),
            outcomes: BTreeMap::new(),
            closes: Vec::new(),
        });
        self.start(i);
        i
    }

    /// Starts node `i` as a new incarnation (new member id).
    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        let config = n.config.clone().unwrap_or_else(|| self.config.clone());
        let member = Member {
            id: MemberId::random(&mut self.rng),
            name: n.name.clone(),
            addr: n.addr,
            domain: config.domain.clone(),
            incarnation: n.incarnation,
            meta: BTreeMap::new(),
        };
        let seed = self.rng.gen();
        let stack = (self.stack)(i);
        self.nodes[i].node = Some(Node::new(member, config, stack, seed, self.now));
    }

    /// kill -9: the node vanishes; its connections reset.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].node = None;
        self.reset_all_of(i, "connection reset by peer");
    }
    /// kill -9 and start again on the same address with a new member id.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.start(i);
    }
    /// Graceful stop: Leave to everyone, then the process exits (connections close).
    pub fn stop(&mut self, i: usize) {
        let now = self.now;
        if let Some(n) = self.nodes[i].node.as_mut() {
            n.leave(now);
        }
        self.drain(i);
        self.nodes[i].node = None;
        self.close_all_of(i);
    }
    /// Cuts every link between `a` and `b`.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.net.cuts.insert((x.min(y), x.max(y)));
            }
        }
    }
    pub fn heal(&mut self) {
        self.net.cuts.clear();
        self.release_held();
    }

    pub fn id(&self, i: usize) -> Option<MemberId> {
        self.nodes[i].node.as_ref().map(|n| n.local().id)
    }
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.nodes[i].node.as_ref()
    }
    /// Names of the members node `i` currently sees, sorted.
    pub fn view(&self, i: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .node(i)
            .map(|n| n.members().into_iter().map(|m| m.name).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
    /// True when `i` sees the current incarnation of `j` as a member.
    pub fn sees(&self, i: usize, j: usize) -> bool {
        match (self.node(i), self.id(j)) {
            (Some(n), Some(id)) => n.member(&id).is_some(),
            _ => false,
        }
    }
    /// Every live node sees every other live node.
    pub fn fully_connected(&self) -> bool {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].node.is_some())
            .collect();
        live.iter()
            .all(|&i| live.iter().all(|&j| i == j || self.sees(i, j)))
    }

    /// Sends from node `from` to nodes `to`; None when `from` is down.
    pub fn send(
        &mut self,
        from: usize,
        to: &[usize],
        payload: Vec<u8>,
        options: SendOptions,
    ) -> Option<MsgId> {
        let dests: Vec<MemberId> = to.iter().filter_map(|&j| self.id(j)).collect();
        let now = self.now;
        let id = self.nodes[from]
            .node
            .as_mut()?
            .send(now, &dests, payload, options);
        self.drain(from);
        Some(id)
    }

    /// Calls `f` on node `i` (None when it is down) and carries out what it produced.
    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Instant) -> R) -> Option<R> {
        let now = self.now;
        let r = f(self.nodes[i].node.as_mut()?, now);
        self.drain(i);
        Some(r)
    }

    /// Runs virtual time forward by `d`.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.step(until) {}
        self.now = until;
    }
    /// Runs until `pred` holds or `max` virtual time passed; returns whether it held.
    pub fn run_until(&mut self, max: Duration, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        let until = self.now + max;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(until) {
                self.now = until;
                return pred(self);
            }
        }
    }

    /// Processes everything due at the next instant not after `limit`; false when nothing is.
    fn step(&mut self, limit: Instant) -> bool {
        let mut next = self.next_discovery;
        if let Some(t) = self.net.next_time() {
            next = next.min(t);
        }
        for n in self.nodes.iter().filter_map(|n| n.node.as_ref()) {
            if let Some(t) = n.poll_timeout() {
                next = next.min(t);
            }
        }
        if next > limit {
            return false;
        }
        self.now = self.now.max(next);
        let now = self.now;
        if self.next_discovery <= now {
            self.next_discovery = now + self.discovery_every;
            self.discover();
        }
        while let Some(d) = self.net.pop_due(now) {
            self.deliver(d);
        }
        for i in 0..self.nodes.len() {
            let due = self.nodes[i]
                .node
                .as_ref()
                .and_then(|n| n.poll_timeout())
                .is_some_and(|t| t <= now);
            if due {
                if let Some(n) = self.nodes[i].node.as_mut() {
                    n.handle_timeout(now);
                }
                self.drain(i);
            }
        }
        true
    }

    /// Feeds every node the static member list now (as discovery does periodically).
    pub fn discover_now(&mut self) {
        self.discover();
    }

    fn discover(&mut self) {
        let addrs: Vec<SocketAddr> = self.nodes.iter().map(|n| n.addr).collect();
        let now = self.now;
        for i in 0..self.nodes.len() {
            if let Some(n) = self.nodes[i].node.as_mut() {
                for a in &addrs {
                    n.handle_candidate(now, *a);
                }
            }
            self.drain(i);
        }
    }

    fn delay(&mut self) -> Duration {
        let (lo, hi) = (
            self.chaos.min_delay,
            self.chaos.max_delay.max(self.chaos.min_delay),
        );
        if lo == hi {
            return lo;
        }
        Duration::from_nanos(
            self.rng
                .gen_range(lo.as_nanos() as u64..=hi.as_nanos() as u64),
        )
    }
}
