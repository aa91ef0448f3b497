//! Deterministic simulation of N session managers: seeded RNG, virtual time, a network that
//! delays (and so reorders), drops and partitions, random kills and restarts, and clients
//! that increment a counter in their session. The checker asserts that no acknowledged
//! synchronous write is lost while a replica survives and that no replica's version of a
//! session ever goes backwards.
#![allow(dead_code)]
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_cluster::MemberId;
use shoal_session::{
    build_manager, AttrValue, DeltaOp, Lookup, ManagerConfig, ManagerKind, Millis, Outgoing,
    ReplicationMode, RequestEnd, SessionId, SessionManager,
};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub kind: ManagerKind,
    pub mode: ReplicationMode,
    pub nodes: usize,
    pub clients: usize,
    pub duration_ms: Millis,
    /// Per-message one-way delay range; random delays reorder messages.
    pub delay_ms: (Millis, Millis),
    pub drop_p: f64,
    pub kills: bool,
    pub partitions: bool,
    /// Partitions isolate one node from every other one (both directions) long enough for
    /// both sides to drop each other, then heal (instead of cutting one pair of nodes).
    pub isolations: bool,
    /// `partition = "majority"` as the runtime applies it: a node that sees no majority is
    /// partitioned (`set_partitioned`), refuses requests while partitioned or catching
    /// up, and a write that left its node without a majority is not acknowledged.
    pub majority: bool,
    /// Messages between two nodes arrive in the order they were sent (one TCP connection
    /// per direction, as the channel has), else random delays reorder them.
    pub fifo: bool,
    /// Each request goes to a random node (a balancer without stickiness), not the
    /// client's own.
    pub random_routing: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub acked: u64,
    pub failed: u64,
    pub kills: u64,
    pub partitions: u64,
    pub violations: Vec<String>,
    /// Sessions whose value on some live holder differs from the last acknowledged write.
    pub wrong_sessions: usize,
    pub conflicts: u64,
    /// Requests a node refused for lack of a majority (or while catching up).
    pub refused: u64,
}

/// The seeds to run: `SHOAL_SIM_SEEDS=a..b` when set (to explore more), else `default`.
pub fn seeds(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    let env = std::env::var("SHOAL_SIM_SEEDS").unwrap_or_default();
    let parsed = env
        .split_once("..")
        .and_then(|(a, b)| Some(a.parse().ok()?..b.parse().ok()?));
    parsed.unwrap_or(default)
}

const ACK_TIMEOUT: Millis = 1000;
const DETECT_MS: Millis = 300;
const TICK_MS: Millis = 100;

enum Ev {
    Deliver {
        from: MemberId,
        to: MemberId,
        payload: Vec<u8>,
        write: Option<u64>,
    },
    Ack {
        to: MemberId,
        write: u64,
        from: MemberId,
        ok: bool,
    },
    Tick,
    Client(usize),
    Removed(MemberId),
    Restart(usize),
    Heal,
    Chaos,
    /// Node `observer`'s failure detector drops `gone` (isolations).
    Lost {
        observer: usize,
        gone: MemberId,
    },
    /// The link `from` → `to` drops what is sent over it (isolations).
    CutLink {
        from: MemberId,
        to: MemberId,
    },
    /// Node `observer` sees `other` again after a heal (isolations).
    Met {
        observer: usize,
        other: MemberId,
    },
}

struct Node {
    id: MemberId,
    mgr: Box<dyn SessionManager>,
    alive: bool,
    /// The other members this node's view holds (isolations).
    sees: BTreeSet<MemberId>,
    /// `set_partitioned(true)` was called and not yet undone (majority).
    partitioned: bool,
}

struct Client {
    node: usize,
    session: Option<SessionId>,
    acked: u64,
    /// Value of the write in flight and its pending acks.
    inflight: Option<(u64, usize, BTreeSet<MemberId>, bool)>,
    started: Millis,
    /// `majority`: the session (and its acknowledged value) the node in flight did not
    /// know, so answered from a new one: lost if that answer is acknowledged.
    replaced: Option<(SessionId, u64)>,
}

mod check;
use check::counter;
mod client;
mod isolation;

pub struct Sim {
    cfg: SimConfig,
    rng: StdRng,
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Reverse<(Millis, u64)>>,
    events: HashMap<u64, Ev>,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    cut: Option<(MemberId, MemberId)>,
    /// A node being cut off from every other one (isolations).
    isolated: Option<MemberId>,
    /// The directed links cut so far: a cut is applied one link after another, as the
    /// fault harness's nftables rules are (isolations).
    cut_links: BTreeSet<(MemberId, MemberId)>,
    /// When the last message on each link is delivered (`fifo`).
    link_clock: HashMap<(MemberId, MemberId), Millis>,
    max_version: HashMap<(MemberId, SessionId), u64>,
    next_write: u64,
    writes: std::collections::BTreeMap<u64, usize>,
    pub report: Report,
}

fn mcfg(cfg: &SimConfig) -> ManagerConfig {
    ManagerConfig {
        manager: cfg.kind,
        replication: cfg.mode,
        backups: 1,
        fetch_timeout_ms: 2000,
        gap_timeout_ms: 500,
        state_transfer_timeout_secs: 2,
        send_all_sessions_size: 7,
        ..ManagerConfig::default()
    }
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let mut sim = Sim {
            cfg,
            rng,
            now: 1_000_000,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes: Vec::new(),
            clients: Vec::new(),
            cut: None,
            isolated: None,
            cut_links: BTreeSet::new(),
            link_clock: HashMap::new(),
            max_version: HashMap::new(),
            next_write: 1,
            writes: std::collections::BTreeMap::new(),
            report: Report::default(),
        };
        for i in 0..sim.cfg.nodes {
            let node = sim.new_node(i);
            sim.nodes.push(node);
        }
        let ids: Vec<MemberId> = sim.nodes.iter().map(|n| n.id).collect();
        let now = sim.now;
        for n in &mut sim.nodes {
            n.mgr.start(&ids, now);
            n.sees = ids.iter().copied().filter(|m| *m != n.id).collect();
        }
        for c in 0..sim.cfg.clients {
            sim.clients.push(Client {
                node: c % sim.cfg.nodes,
                session: None,
                acked: 0,
                inflight: None,
                started: 0,
                replaced: None,
            });
            let at = sim.rng.gen_range(0..50);
            sim.at(at, Ev::Client(c));
        }
        sim.at(TICK_MS, Ev::Tick);
        if sim.cfg.kills || sim.cfg.partitions {
            sim.at(2000, Ev::Chaos);
        }
        sim
    }

    fn new_node(&mut self, i: usize) -> Node {
        let id = MemberId::random(&mut self.rng);
        let rng = StdRng::seed_from_u64(self.rng.gen());
        let mgr = build_manager("/app", id, &format!("node{}", i + 1), mcfg(&self.cfg), rng);
        Node {
            id,
            mgr,
            alive: true,
            sees: BTreeSet::new(),
            partitioned: false,
        }
    }

    fn at(&mut self, delay: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn index(&self, id: MemberId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id && n.alive)
    }

    fn send(&mut self, from: MemberId, out: Vec<Outgoing>, write: Option<u64>) {
        for o in out {
            for to in o.to {
                let w = if o.sync { write } else { None };
                let dropped = self.rng.gen_bool(self.cfg.drop_p)
                    || self
                        .cut
                        .is_some_and(|(a, b)| (a, b) == (from, to) || (b, a) == (from, to))
                    || self.cut_links.contains(&(from, to));
                if dropped {
                    if let Some(w) = w {
                        self.at(
                            ACK_TIMEOUT,
                            Ev::Ack {
                                to: from,
                                write: w,
                                from: to,
                                ok: false,
                            },
                        );
                    }
                    continue;
                }
                let mut d = self
                    .rng
                    .gen_range(self.cfg.delay_ms.0..=self.cfg.delay_ms.1);
                if self.cfg.fifo {
                    let last = self.link_clock.entry((from, to)).or_insert(0);
                    d = d.max(last.saturating_sub(self.now));
                    *last = self.now + d;
                }
                self.at(
                    d,
                    Ev::Deliver {
                        from,
                        to,
                        payload: o.payload.clone(),
                        write: w,
                    },
                );
            }
        }
    }

    pub fn run(mut self) -> Report {
        let end = self.now + self.cfg.duration_ms;
        while let Some(Reverse((t, seq))) = self.queue.pop() {
            if t > end + 20_000 {
                break;
            }
            self.now = t;
            let Some(ev) = self.events.remove(&seq) else {
                continue;
            };
            let load = t < end;
            self.step(ev, load);
        }
        self.final_check();
        for n in self.nodes.iter().filter(|n| n.alive) {
            self.report.conflicts += n.mgr.stats().conflicts;
        }
        self.report
    }

    fn step(&mut self, ev: Ev, load: bool) {
        let now = self.now;
        match ev {
            Ev::Deliver {
                from,
                to,
                payload,
                write,
            } => {
                self.trace(from, to, &payload);
                let Some(i) = self.index(to) else { return };
                if self.index(from).is_none() && write.is_none() {
                    // Messages from a dead node still in flight are delivered (TCP buffers).
                }
                let r = self.nodes[i].mgr.handle_payload(from, &payload, now);
                self.send(to, r.out, None);
                if let Some(w) = write {
                    let d = self
                        .rng
                        .gen_range(self.cfg.delay_ms.0..=self.cfg.delay_ms.1);
                    self.at(
                        d,
                        Ev::Ack {
                            to: from,
                            write: w,
                            from: to,
                            ok: r.ack.is_ok(),
                        },
                    );
                }
                self.check_versions(i);
                self.update_partition(i);
            }
            Ev::Ack {
                to,
                write,
                from,
                ok,
            } => self.on_ack(to, write, from, ok),
            Ev::Tick => {
                for i in 0..self.nodes.len() {
                    if self.nodes[i].alive {
                        let out = self.nodes[i].mgr.handle_timeout(now);
                        let id = self.nodes[i].id;
                        self.send(id, out, None);
                        self.check_versions(i);
                        self.update_partition(i);
                    }
                }
                self.at(TICK_MS, Ev::Tick);
            }
            Ev::Client(c) => {
                if load {
                    self.client_request(c)
                }
            }
            Ev::Removed(dead) => {
                for i in 0..self.nodes.len() {
                    if self.nodes[i].alive {
                        let out = self.nodes[i].mgr.member_removed(dead, now);
                        let id = self.nodes[i].id;
                        self.send(id, out, None);
                    }
                }
                // Writes waiting on the dead node no longer wait for it.
                let waiting: Vec<(usize, u64)> =
                    self.writes.iter().map(|(w, c)| (*c, *w)).collect();
                for (c, w) in waiting {
                    if let Some((_, _, set, _)) = self.clients[c].inflight.as_mut() {
                        set.remove(&dead);
                    }
                    self.maybe_finish(c, w);
                }
            }
            Ev::Restart(i) => self.restart(i),
            Ev::Heal => self.heal(),
            Ev::Chaos => self.chaos(load),
            Ev::Lost { observer, gone } => self.lost(observer, gone),
            Ev::CutLink { from, to } => {
                self.cut_links.insert((from, to));
            }
            Ev::Met { observer, other } => self.met(observer, other),
        }
    }

    fn chaos(&mut self, load: bool) {
        if !load {
            return;
        }
        let healthy = self.nodes.iter().all(|n| n.alive)
            && self.cut.is_none()
            && self.isolated.is_none()
            && self
                .nodes
                .iter()
                .all(|n| n.sees.len() + 1 == self.nodes.len() && !n.partitioned);
        if healthy && self.cfg.isolations {
            self.isolate(load);
        } else if healthy {
            let kill = self.cfg.kills && (!self.cfg.partitions || self.rng.gen_bool(0.5));
            let i = self.rng.gen_range(0..self.nodes.len());
            if kill {
                self.report.kills += 1;
                self.nodes[i].alive = false;
                let id = self.nodes[i].id;
                self.at(DETECT_MS, Ev::Removed(id));
                let back = self.rng.gen_range(1500..3000);
                self.at(back, Ev::Restart(i));
            } else {
                let j = (i + 1 + self.rng.gen_range(0..self.nodes.len() - 1)) % self.nodes.len();
                self.report.partitions += 1;
                self.cut = Some((self.nodes[i].id, self.nodes[j].id));
                let heal = self.rng.gen_range(300..1500);
                self.at(heal, Ev::Heal);
            }
        }
        let next = self.rng.gen_range(3000..5000);
        self.at(next, Ev::Chaos);
    }

    fn restart(&mut self, i: usize) {
        let node = self.new_node(i);
        let id = node.id;
        self.nodes[i] = node;
        let others: Vec<MemberId> = self
            .nodes
            .iter()
            .filter(|n| n.alive && n.id != id)
            .map(|n| n.id)
            .collect();
        let now = self.now;
        for j in 0..self.nodes.len() {
            if j != i && self.nodes[j].alive {
                let out = self.nodes[j].mgr.member_added(id, now);
                let from = self.nodes[j].id;
                self.send(from, out, None);
            }
        }
        let out = self.nodes[i].mgr.start(&others, now);
        self.nodes[i].sees = others.into_iter().collect();
        self.send(id, out, None);
    }
}
