//! A deterministic simulation of read-your-writes in async mode (issue 13): N managers on a
//! simulated network (seeded RNG, virtual time, a random delay per message, FIFO per link as
//! the channel keeps it, so messages of different senders reorder), and clients that send
//! every request of their session to a random live node, carrying the version token
//! ([`Seen`]) of their previous answer, through the same [`ReadGate`] the runtime uses.
//!
//! Each client increments a counter in its own session, one request at a time, so the only
//! correct value a request can see is the last one its client was answered. The checker
//! counts, per request: a **stale read** (it saw less than its client's last answer without
//! the gate reporting a loss), an **impossible value** (more), a **lost session** (the
//! session is gone though the client holds it), a **counted loss** (the gate said no
//! reachable copy held the token's version: allowed only after a crash, only for a write
//! its dead node made, and it must be served the newest surviving copy); at the end every
//! copy must hold its client's last answer (no lost update), and no node's copy of a
//! session ever went back to a lower version.
#![allow(dead_code)]
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_cluster::MemberId;
use shoal_session::{
    build_manager, AttrValue, DeltaOp, ManagerConfig, ManagerKind, Millis, Outgoing, ReadGate,
    ReadStep, ReplicationMode, RequestEnd, Seen, SessionId, SessionManager,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub kind: ManagerKind,
    pub nodes: usize,
    pub clients: usize,
    pub duration_ms: Millis,
    pub delay_ms: (Millis, Millis),
    /// Kill this node (index) at this time: what it sent and was not delivered is lost.
    pub crash: Option<(usize, Millis)>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub writes: u64,
    /// Requests the gate held (waited or fetched) and fetched.
    pub held: u64,
    pub fetched: u64,
    pub stale_reads: Vec<String>,
    pub impossible: Vec<String>,
    pub lost_sessions: Vec<String>,
    pub lost_updates: Vec<String>,
    pub version_regressions: Vec<String>,
    /// Losses the gate reported (crash window), and what is wrong with any of them.
    pub counted_losses: u64,
    pub bad_losses: Vec<String>,
    /// The managers' `ryw_lost` counters summed at the end.
    pub ryw_lost_stat: u64,
}

const DETECT_MS: Millis = 300;
const TICK_MS: Millis = 100;
const WAIT_MS: Millis = 100;
const FETCH_MS: Millis = 2000;

enum Ev {
    Deliver {
        from: usize,
        to: usize,
        payload: Vec<u8>,
    },
    /// Client `c`'s next step, if its generation still matches.
    Client(usize, u64),
    Tick,
    Crash(usize),
    Removed(usize),
}

struct Node {
    id: MemberId,
    mgr: Box<dyn SessionManager>,
    alive: bool,
}

#[derive(Default)]
struct Client {
    session: Option<SessionId>,
    token: Option<Seen>,
    /// The value its last answer carried.
    acked: u64,
    gate: Option<(usize, ReadGate)>,
    /// Bumped whenever a step runs: older scheduled steps are ignored.
    gen: u64,
}

pub struct Sim {
    cfg: Config,
    rng: StdRng,
    now: Millis,
    seq: u64,
    events: BinaryHeap<Reverse<(Millis, u64)>>,
    pending: HashMap<u64, Ev>,
    /// Last delivery time per link (FIFO per link).
    link_last: HashMap<(usize, usize), Millis>,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    /// Highest version each node held of each session.
    versions: HashMap<(usize, SessionId), u64>,
    report: Report,
}

fn counter(v: Option<&AttrValue>) -> u64 {
    match v {
        Some(AttrValue::Json(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

impl Sim {
    pub fn new(cfg: Config) -> Sim {
        let mgr_cfg = ManagerConfig {
            manager: cfg.kind,
            replication: ReplicationMode::Async,
            read_wait_ms: WAIT_MS,
            fetch_timeout_ms: FETCH_MS,
            ..ManagerConfig::default()
        };
        let ids: Vec<MemberId> = (0..cfg.nodes)
            .map(|i| MemberId([i as u8 + 1; 16]))
            .collect();
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(cfg.seed),
            now: 1_000_000,
            seq: 0,
            events: BinaryHeap::new(),
            pending: HashMap::new(),
            link_last: HashMap::new(),
            nodes: Vec::new(),
            clients: (0..cfg.clients).map(|_| Client::default()).collect(),
            versions: HashMap::new(),
            report: Report::default(),
            cfg,
        };
        for (i, id) in ids.iter().enumerate() {
            let rng = StdRng::seed_from_u64(sim.cfg.seed * 131 + i as u64);
            let mut mgr =
                build_manager("/app", *id, &format!("node{}", i + 1), mgr_cfg.clone(), rng);
            let out = mgr.start(&ids, sim.now);
            sim.nodes.push(Node {
                id: *id,
                mgr,
                alive: true,
            });
            sim.send(i, out);
        }
        sim.at(0, Ev::Tick);
        if let Some((n, t)) = sim.cfg.crash {
            sim.at(t, Ev::Crash(n));
        }
        for c in 0..sim.clients.len() {
            let start = sim.rng.gen_range(50..150);
            sim.at(start, Ev::Client(c, 0));
        }
        sim
    }

    fn at(&mut self, after: Millis, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((self.now + after, self.seq)));
        self.pending.insert(self.seq, ev);
    }

    fn index(&self, id: MemberId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn send(&mut self, from: usize, out: Vec<Outgoing>) {
        for o in out {
            for to in &o.to {
                let Some(to) = self.index(*to) else { continue };
                let delay = self
                    .rng
                    .gen_range(self.cfg.delay_ms.0..=self.cfg.delay_ms.1);
                let last = self.link_last.get(&(from, to)).copied().unwrap_or(0);
                let when = (self.now + delay).max(last);
                self.link_last.insert((from, to), when);
                let payload = o.payload.clone();
                self.at(when - self.now, Ev::Deliver { from, to, payload });
            }
        }
    }

    pub fn run(mut self) -> Report {
        let end = self.now + self.cfg.duration_ms;
        // Bounded: the clients stop at `end`, then the network drains and ticks run out.
        let quiet_until = end + 5_000;
        while let Some(Reverse((t, seq))) = self.events.pop() {
            if t > quiet_until {
                break;
            }
            self.now = t;
            let Some(ev) = self.pending.remove(&seq) else {
                continue;
            };
            match ev {
                Ev::Deliver { from, to, payload } => self.deliver(from, to, payload),
                Ev::Client(c, gen) if gen == self.clients[c].gen && t <= end => self.step(c),
                Ev::Client(..) => {}
                Ev::Tick => {
                    for i in 0..self.nodes.len() {
                        if self.nodes[i].alive {
                            let out = self.nodes[i].mgr.handle_timeout(t);
                            self.send(i, out);
                        }
                    }
                    self.at(TICK_MS, Ev::Tick);
                }
                Ev::Crash(n) => self.crash(n),
                Ev::Removed(n) => {
                    let gone = self.nodes[n].id;
                    for i in 0..self.nodes.len() {
                        if self.nodes[i].alive {
                            let out = self.nodes[i].mgr.member_removed(gone, t);
                            self.send(i, out);
                        }
                    }
                    self.wake_all();
                }
            }
        }
        self.final_check();
        self.report
    }

    fn crash(&mut self, n: usize) {
        self.nodes[n].alive = false;
        // What it sent and was not delivered dies with it (un-replicated async writes).
        let dead: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, ev)| matches!(ev, Ev::Deliver { from, to, .. } if *from == n || *to == n))
            .map(|(k, _)| *k)
            .collect();
        for k in dead {
            self.pending.remove(&k);
        }
        // Requests waiting there get no answer: their clients try again elsewhere.
        for c in 0..self.clients.len() {
            if self.clients[c]
                .gate
                .as_ref()
                .is_some_and(|(at, _)| *at == n)
            {
                self.clients[c].gate = None;
                self.next(c, 1);
            }
        }
        self.at(DETECT_MS, Ev::Removed(n));
    }

    fn deliver(&mut self, from: usize, to: usize, payload: Vec<u8>) {
        if !self.nodes[to].alive || !self.nodes[from].alive {
            return;
        }
        let from_id = self.nodes[from].id;
        let r = self.nodes[to]
            .mgr
            .handle_payload(from_id, &payload, self.now);
        self.send(to, r.out);
        let before = self.report.version_regressions.len();
        self.check_versions(to);
        if self.report.version_regressions.len() > before {
            let kind = shoal_session::decode(&payload).map(|e| format!("{:?}", e.msg.kind()));
            self.report
                .version_regressions
                .push(format!("  by {kind:?} from node{}", from + 1));
        }
        // Requests held on this node look again (the runtime wakes them the same way).
        for c in 0..self.clients.len() {
            if self.clients[c]
                .gate
                .as_ref()
                .is_some_and(|(at, _)| *at == to)
            {
                let gen = self.clients[c].gen;
                self.at(0, Ev::Client(c, gen));
            }
        }
    }

    fn wake_all(&mut self) {
        for c in 0..self.clients.len() {
            if self.clients[c].gate.is_some() {
                let gen = self.clients[c].gen;
                self.at(0, Ev::Client(c, gen));
            }
        }
    }

    fn check_versions(&mut self, n: usize) {
        for c in 0..self.clients.len() {
            let Some(id) = self.clients[c].session.clone() else {
                continue;
            };
            let Some(v) = self.nodes[n].mgr.session(&id).map(|s| s.version) else {
                continue;
            };
            let max = self.versions.entry((n, id.clone())).or_insert(v);
            if v < *max {
                self.report.version_regressions.push(format!(
                    "t={} node{} session {id:?} went back from v{max} to v{v}",
                    self.now,
                    n + 1
                ));
            }
            *max = (*max).max(v);
        }
    }

    /// Schedules client `c`'s next request after `think` ms.
    fn next(&mut self, c: usize, think: Millis) {
        self.clients[c].gen += 1;
        let gen = self.clients[c].gen;
        self.at(think, Ev::Client(c, gen));
    }

    fn live(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alive && self.nodes[*i].mgr.is_ready())
            .collect();
        (!live.is_empty()).then(|| live[self.rng.gen_range(0..live.len())])
    }

    fn step(&mut self, c: usize) {
        self.clients[c].gen += 1;
        let now = self.now;
        let (n, mut gate) = match self.clients[c].gate.take() {
            Some(g) => g,
            None => {
                let Some(n) = self.live() else {
                    return self.next(c, 50);
                };
                self.report.requests += 1;
                let (Some(id), Some(seen)) =
                    (self.clients[c].session.clone(), self.clients[c].token)
                else {
                    let s = self.nodes[n].mgr.create(now);
                    self.clients[c].session = Some(s.id.clone());
                    return self.write(c, n, s.id, 0);
                };
                (n, ReadGate::new(id, seen, now, WAIT_MS, FETCH_MS))
            }
        };
        let step = gate.poll(self.nodes[n].mgr.as_mut(), now);
        let Some(id) = self.clients[c].session.clone() else {
            return;
        };
        let acked = self.clients[c].acked;
        match step {
            ReadStep::Wait { out, until } => {
                self.send(n, out);
                self.clients[c].gate = Some((n, gate));
                let gen = self.clients[c].gen;
                self.at(until.saturating_sub(now).max(1), Ev::Client(c, gen));
            }
            ReadStep::Serve(s) => {
                self.count_gate(&gate);
                let value = counter(s.attributes.get("counter"));
                if value < acked {
                    self.report.stale_reads.push(format!(
                        "t={now} client {c} on node{}: counter {value}, {acked} acknowledged (v{})",
                        n + 1,
                        s.version
                    ));
                } else if value > acked {
                    self.report.impossible.push(format!(
                        "t={now} client {c} on node{}: counter {value} > {acked}",
                        n + 1
                    ));
                }
                self.write(c, n, id, value);
            }
            ReadStep::Lost(s) => {
                self.count_gate(&gate);
                self.report.counted_losses += 1;
                self.check_loss(c, n, &id, s.as_ref().map(|s| s.version));
                match s {
                    Some(s) => {
                        let value = counter(s.attributes.get("counter"));
                        self.write(c, n, id, value);
                    }
                    None => {
                        self.report.lost_sessions.push(format!(
                            "t={now} client {c}: session {id:?} gone on node{}",
                            n + 1
                        ));
                        self.clients[c] = Client {
                            gen: self.clients[c].gen,
                            ..Client::default()
                        };
                        self.next(c, 10);
                    }
                }
            }
        }
    }

    fn count_gate(&mut self, gate: &ReadGate) {
        self.report.held += u64::from(gate.waited());
        self.report.fetched += u64::from(gate.fetched());
    }

    /// A loss the gate reported is allowed only after the crash, for a version the dead node
    /// wrote, and the copy served must be the newest any live node holds.
    fn check_loss(&mut self, c: usize, n: usize, id: &SessionId, served: Option<u64>) {
        let writer = self.clients[c].token.map(|s| s.stamp.node);
        let crashed = self.cfg.crash.map(|(k, _)| self.nodes[k].id);
        let after_crash = self.cfg.crash.is_some_and(|(k, _)| !self.nodes[k].alive);
        if !after_crash || writer != crashed {
            let copies: Vec<String> = (0..self.nodes.len())
                .map(|i| {
                    let s = self.nodes[i].mgr.session(id);
                    format!("node{}: {:?}", i + 1, s.map(|s| (s.version, s.stamp.node)))
                })
                .collect();
            self.report.bad_losses.push(format!(
                "t={} client {c} on node{}: loss reported for {:?} with writer {writer:?} (crashed {crashed:?}); copies {copies:?}",
                self.now,
                n + 1,
                self.clients[c].token.map(|s| s.version),
            ));
        }
        let newest = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alive)
            .filter_map(|i| self.nodes[i].mgr.session(id).map(|s| s.version))
            .max();
        if served < newest {
            let copies: Vec<String> = (0..self.nodes.len())
                .map(|i| {
                    let s = self.nodes[i].mgr.session(id).map(|s| s.version);
                    let p = self.nodes[i].mgr.placement(id);
                    format!(
                        "node{} alive {}: {s:?} placement {p:?}",
                        i + 1,
                        self.nodes[i].alive
                    )
                })
                .collect();
            self.report.bad_losses.push(format!(
                "t={} client {c} on node{}: served v{served:?} but v{newest:?} survives; {copies:?}",
                self.now,
                n + 1
            ));
        }
    }

    /// The request increments what it read and is answered at once (async).
    fn write(&mut self, c: usize, n: usize, id: SessionId, value: u64) {
        let now = self.now;
        let end = RequestEnd {
            id: Some(id.clone()),
            ops: vec![DeltaOp::Set(
                "counter".into(),
                AttrValue::Json((value + 1).to_string()),
            )],
            invalidate: false,
            accessed: true,
            replicate: true,
        };
        match self.nodes[n].mgr.end_request(end, now) {
            Ok(out) => {
                self.send(n, out);
                let before = self.report.version_regressions.len();
                self.check_versions(n);
                if self.report.version_regressions.len() > before {
                    self.report
                        .version_regressions
                        .push("  by a request".into());
                }
                self.report.writes += 1;
                self.clients[c].acked = value + 1;
                self.clients[c].token = self.nodes[n].mgr.session(&id).map(Seen::of);
            }
            Err(e) => self
                .report
                .impossible
                .push(format!("t={now} end_request: {e}")),
        }
        let think = self.rng.gen_range(1..20);
        self.next(c, think);
    }

    /// Every copy of every session holds its client's last answer.
    fn final_check(&mut self) {
        for c in 0..self.clients.len() {
            let Some(id) = self.clients[c].session.clone() else {
                continue;
            };
            let acked = self.clients[c].acked;
            let copies: BTreeMap<usize, u64> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].alive)
                .filter_map(|i| {
                    let s = self.nodes[i].mgr.session(&id)?;
                    Some((i + 1, counter(s.attributes.get("counter"))))
                })
                .collect();
            if copies.is_empty() || copies.values().any(|v| *v != acked) {
                self.report.lost_updates.push(format!(
                    "client {c} session {id:?}: {acked} acknowledged, copies (node, counter) {copies:?}"
                ));
            }
        }
        self.report.ryw_lost_stat = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| n.mgr.stats().ryw_lost)
            .sum();
    }
}
