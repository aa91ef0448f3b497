//! A simulated world for the persistent core: nodes (each a `PersistentCore`), one
//! linearizable store model with compare-and-set, a balancer, and counter clients; store
//! operations executed after random delays (so they interleave), virtual time, node
//! crashes (the core dropped and recreated empty), store outages. Everything is driven by
//! one seeded RNG, so a seed replays exactly.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_cluster::MemberId;
use shoal_session::persistent::{
    record, CoreParams, Expect, Moved, OpKind, Output, PersistError, PersistentConfig,
    PersistentCore, Record, RemoveResult, Reply, ReqId, Row, SaveResult, Step, Token,
};
use shoal_session::{AttrValue, DeltaOp, Millis, RequestEnd, Session, SessionId, SessionLimits};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

pub const APP: &str = "/app";
pub const TICK_MS: Millis = 100;

/// The store: one row per id (one app), each op atomic when executed.
#[derive(Default)]
pub struct Store {
    pub rows: BTreeMap<SessionId, Row>,
    pub down: bool,
    pub ops: u64,
}

impl Store {
    pub fn exec(&mut self, kind: &OpKind) -> Reply {
        if self.down {
            return Reply::Unavailable("connection refused (simulated outage)".into());
        }
        self.ops += 1;
        match kind {
            OpKind::Load { id, .. } => Reply::Loaded(self.rows.get(id).cloned()),
            OpKind::Version { id, .. } => Reply::Version(self.rows.get(id).map(|r| r.version)),
            OpKind::Save { row, expect } => {
                let current = self.rows.get(&row.id).map(|r| r.version);
                let ok = match expect {
                    Expect::Absent => current.is_none(),
                    Expect::Version(v) => current == Some(*v),
                };
                if !ok {
                    return Reply::Saved(SaveResult::Conflict { current });
                }
                assert!(
                    current.is_none_or(|c| row.version > c),
                    "a save must raise the version"
                );
                self.rows.insert(row.id.clone(), row.clone());
                Reply::Saved(SaveResult::Done)
            }
            OpKind::Remove {
                id, expect_version, ..
            } => {
                if self.rows.get(id).map(|r| r.version) == Some(*expect_version) {
                    self.rows.remove(id);
                    Reply::Removed(RemoveResult::Done)
                } else {
                    Reply::Removed(RemoveResult::Conflict)
                }
            }
            OpKind::Expired { now, limit, .. } => Reply::Expired(
                self.rows
                    .values()
                    .filter(|r| {
                        r.max_inactive_s > 0
                            && r.last_access_ms + u64::from(r.max_inactive_s) * 1000 < *now
                    })
                    .take(*limit)
                    .map(|r| (r.id.clone(), r.version))
                    .collect(),
            ),
        }
    }

    /// The counter of the session a client last knew as `id`, following tombstones.
    pub fn counter(&self, id: &SessionId) -> Option<u64> {
        let mut id = id.clone();
        for _ in 0..16 {
            let row = self.rows.get(&id)?;
            match record::decode(&id, &row.data).unwrap_or_else(|e| panic!("{e}")) {
                Record::Live(s) => return Some(counter_of(&s)),
                Record::Moved { new_id, .. } => id = new_id,
            }
        }
        None
    }
}

pub fn counter_of(s: &Session) -> u64 {
    match s.attributes.get("n") {
        Some(AttrValue::Json(t)) => t.parse().unwrap_or_else(|e| panic!("counter {t}: {e}")),
        _ => 0,
    }
}

pub struct Node {
    pub name: String,
    pub core: Option<PersistentCore>,
    /// Incarnation: events for an earlier one (before a crash) are dropped.
    pub gen: u64,
    /// The balancer may send requests here.
    pub enabled: bool,
    pub conflicts_before_crash: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The cookie's route if that node is enabled, else a random enabled node.
    Sticky,
    /// Any enabled node, per request.
    Random,
    /// The first enabled node in `World::prefer` order (seed 000's balancer: node1 whenever
    /// it is in).
    Prefer,
}

/// What all clients of one logical session (its id changes on takeover) have seen.
#[derive(Default, Debug)]
pub struct Family {
    /// Highest value acknowledged durable (`Done { queued: false }`).
    pub floor: u64,
    /// Value of the last acknowledgement, and whether it was durable.
    pub last_ack: u64,
    pub last_ack_durable: bool,
    /// Acknowledged values; the durable ones each at most once (twice = a lost update).
    pub acked: Vec<u64>,
    pub durable: Vec<u64>,
    /// A request's outcome is unknown (its node crashed mid-request).
    pub uncertain: bool,
    /// Latest id a client got.
    pub id: Option<SessionId>,
    pub route: Option<String>,
    /// The cookie every client of the family sends (the last one set).
    pub cookie: Option<String>,
}

pub struct Client {
    pub family: usize,
    /// A cookie this client sends once instead of the family's (an old tab, a copied link):
    /// its request carries an id that may have moved.
    pub frozen: Option<String>,
    pub busy: bool,
    pub active: bool,
}

#[derive(Debug)]
struct InFlight {
    client: usize,
    node: usize,
    gen: u64,
    /// Floor of the family when the request began (reads may not go below it).
    floor: u64,
    read: Option<u64>,
    session: Option<SessionId>,
    wrote: bool,
}

#[derive(Debug)]
enum Ev {
    Exec {
        node: usize,
        gen: u64,
        token: Token,
        kind: OpKind,
    },
    Reply {
        node: usize,
        gen: u64,
        token: Token,
        reply: Reply,
    },
    Send {
        client: usize,
    },
    End {
        req: ReqId,
    },
    Moved {
        node: usize,
        gen: u64,
        moved: Moved,
    },
    Tick,
}

#[derive(Default, Debug)]
pub struct Tally {
    pub requests: u64,
    pub acked: u64,
    pub acked_queued: u64,
    pub conflicts: u64,
    pub unavailable: u64,
    pub queue_full: u64,
    pub other_failures: u64,
    /// Requests for a known session answered Missing.
    pub lost: u64,
    /// Reads below the last queued acknowledgement (a queued change lost).
    pub queued_lost: u64,
    pub crashed_in_flight: u64,
}

pub struct World {
    pub now: Millis,
    pub rng: StdRng,
    pub nodes: Vec<Node>,
    pub store: Store,
    pub clients: Vec<Client>,
    pub families: Vec<Family>,
    pub policy: Policy,
    pub prefer: Vec<usize>,
    pub cfg: PersistentConfig,
    pub max_inactive_secs: u32,
    /// Probability a request only reads.
    pub read_only: f64,
    pub think_ms: (u64, u64),
    pub store_delay_ms: u64,
    pub deliver_moved: bool,
    /// Sequential families: a read must equal the last acknowledgement when it is certain.
    pub strict: bool,
    pub tally: Tally,
    events: BinaryHeap<Reverse<(Millis, u64, usize)>>,
    slots: HashMap<usize, Ev>,
    seq: u64,
    reqs: HashMap<ReqId, InFlight>,
    next_req: u64,
}

impl World {
    pub fn new(seed: u64, nodes: usize, cfg: PersistentConfig, policy: Policy) -> World {
        let mut w = World {
            now: 1_000_000,
            rng: StdRng::seed_from_u64(seed),
            nodes: Vec::new(),
            store: Store::default(),
            clients: Vec::new(),
            families: Vec::new(),
            policy,
            prefer: (0..nodes).collect(),
            cfg,
            max_inactive_secs: 1800,
            read_only: 0.3,
            think_ms: (1, 30),
            store_delay_ms: 3,
            deliver_moved: true,
            strict: true,
            tally: Tally::default(),
            events: BinaryHeap::new(),
            slots: HashMap::new(),
            seq: 0,
            reqs: HashMap::new(),
            next_req: 0,
        };
        for i in 0..nodes {
            w.nodes.push(Node {
                name: format!("node{}", i + 1),
                core: None,
                gen: 0,
                enabled: true,
                conflicts_before_crash: 0,
            });
            w.boot(i);
        }
        w.schedule(TICK_MS, Ev::Tick);
        w
    }

    fn boot(&mut self, i: usize) {
        let params = CoreParams {
            app: APP.into(),
            node: MemberId([i as u8 + 1; 16]),
            route: self.nodes[i].name.clone(),
            store: "sim".into(),
            max_inactive_secs: self.max_inactive_secs,
            limits: SessionLimits::default(),
        };
        self.cfg
            .validate(self.max_inactive_secs)
            .unwrap_or_else(|e| panic!("config: {e}"));
        let rng = StdRng::seed_from_u64(self.rng.gen());
        self.nodes[i].core = Some(PersistentCore::new(params, self.cfg.clone(), rng));
    }

    /// Re-creates the cores with the current `cfg` / `max_inactive_secs` (before traffic).
    pub fn reconfigure(&mut self) {
        for i in 0..self.nodes.len() {
            self.boot(i);
        }
    }

    pub fn core(&self, i: usize) -> &PersistentCore {
        self.nodes[i]
            .core
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} is down"))
    }

    /// Adds `n` clients sharing one new logical session each (`share` clients per family).
    pub fn add_clients(&mut self, families: usize, share: usize) {
        for _ in 0..families {
            self.families.push(Family::default());
            let f = self.families.len() - 1;
            for j in 0..share {
                self.clients.push(Client {
                    family: f,
                    frozen: None,
                    busy: false,
                    active: true,
                });
                let c = self.clients.len() - 1;
                // Later clients of a family join once the first has its session.
                let d = self.rng.gen_range(0..20) + if j > 0 { 200 } else { 0 };
                self.schedule(d, Ev::Send { client: c });
            }
        }
    }

    fn schedule(&mut self, delay: Millis, ev: Ev) {
        self.seq += 1;
        let slot = self.seq as usize;
        self.slots.insert(slot, ev);
        self.events
            .push(Reverse((self.now + delay, self.seq, slot)));
    }

    pub fn run_for(&mut self, ms: Millis) {
        let until = self.now + ms;
        while let Some(Reverse((t, _, slot))) = self.events.peek().copied() {
            if t > until {
                break;
            }
            self.events.pop();
            self.now = t;
            if let Some(ev) = self.slots.remove(&slot) {
                self.handle(ev);
            }
        }
        self.now = until;
    }

    /// (Re)starts client `c`.
    pub fn wake(&mut self, c: usize) {
        self.clients[c].active = true;
        self.schedule(0, Ev::Send { client: c });
    }

    pub fn stop_clients(&mut self) {
        for c in &mut self.clients {
            c.active = false;
        }
    }

    /// Runs until no client request is in flight (clients stopped first).
    pub fn quiesce(&mut self) {
        self.stop_clients();
        for _ in 0..10_000 {
            if self.reqs.is_empty() {
                return;
            }
            self.run_for(10);
        }
        panic!("requests still in flight: {:?}", self.reqs);
    }

    pub fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(c) = n.core.take() {
            n.conflicts_before_crash += c.stats().conflicts;
        }
        n.gen += 1;
        let dead: Vec<ReqId> = self
            .reqs
            .iter()
            .filter(|(_, r)| r.node == i)
            .map(|(k, _)| *k)
            .collect();
        for req in dead {
            if let Some(r) = self.reqs.remove(&req) {
                self.tally.crashed_in_flight += 1;
                let f = self.clients[r.client].family;
                if r.read.is_some() {
                    self.families[f].uncertain = true;
                }
                self.client_done(r.client, 50);
            }
        }
    }

    pub fn restart(&mut self, i: usize) {
        if self.nodes[i].core.is_none() {
            self.boot(i);
        }
    }

    /// Graceful stop: `stop`, then run until the core is idle, then the node is down.
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i].enabled = false;
        if let Some(c) = self.nodes[i].core.as_mut() {
            c.stop(self.now);
        }
        self.pump(i);
        for _ in 0..10_000 {
            if self.nodes[i].core.as_ref().is_none_or(|c| c.is_idle()) {
                break;
            }
            self.run_for(5);
        }
        let n = &mut self.nodes[i];
        if let Some(c) = n.core.take() {
            assert!(c.is_idle(), "node {i} did not finish stopping");
            n.conflicts_before_crash += c.stats().conflicts;
        }
        n.gen += 1;
    }

    pub fn total_conflicts(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.conflicts_before_crash + n.core.as_ref().map_or(0, |c| c.stats().conflicts))
            .sum()
    }

    fn pick_node(&mut self, cookie: Option<&str>) -> Option<usize> {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].enabled && self.nodes[i].core.is_some())
            .collect();
        if up.is_empty() {
            return None;
        }
        match self.policy {
            Policy::Prefer => self.prefer.iter().copied().find(|i| up.contains(i)),
            Policy::Random => Some(up[self.rng.gen_range(0..up.len())]),
            Policy::Sticky => {
                let route = cookie.and_then(|c| c.split_once('.')).map(|(_, r)| r);
                if let Some(i) = up
                    .iter()
                    .copied()
                    .find(|&i| Some(self.nodes[i].name.as_str()) == route)
                {
                    return Some(i);
                }
                Some(up[self.rng.gen_range(0..up.len())])
            }
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick => {
                for i in 0..self.nodes.len() {
                    if let Some(c) = self.nodes[i].core.as_mut() {
                        c.tick(self.now);
                    }
                    self.pump(i);
                }
                self.schedule(TICK_MS, Ev::Tick);
            }
            Ev::Send { client } => self.send(client),
            Ev::Exec {
                node,
                gen,
                token,
                kind,
            } => {
                let reply = self.store.exec(&kind);
                let d = self.rng.gen_range(0..=self.store_delay_ms);
                self.schedule(
                    d,
                    Ev::Reply {
                        node,
                        gen,
                        token,
                        reply,
                    },
                );
            }
            Ev::Reply {
                node,
                gen,
                token,
                reply,
            } => {
                if self.nodes[node].gen != gen {
                    return;
                }
                if let Some(c) = self.nodes[node].core.as_mut() {
                    c.on_reply(token, reply, self.now);
                }
                self.pump(node);
            }
            Ev::Moved { node, gen, moved } => {
                if self.nodes[node].gen != gen {
                    return;
                }
                if let Some(c) = self.nodes[node].core.as_mut() {
                    c.on_moved(&moved, self.now);
                }
                self.pump(node);
            }
            Ev::End { req } => self.end(req),
        }
    }

    fn send(&mut self, client: usize) {
        let c = &self.clients[client];
        if !c.active || c.busy {
            return;
        }
        let family = c.family;
        let cookie = self.clients[client]
            .frozen
            .take()
            .or_else(|| self.families[family].cookie.clone());
        let Some(node) = self.pick_node(cookie.as_deref()) else {
            self.schedule(50, Ev::Send { client });
            return;
        };
        self.clients[client].busy = true;
        self.tally.requests += 1;
        let req = ReqId(self.next_req);
        self.next_req += 1;
        let f = self.clients[client].family;
        self.reqs.insert(
            req,
            InFlight {
                client,
                node,
                gen: self.nodes[node].gen,
                floor: self.families[f].floor,
                read: None,
                session: None,
                wrote: false,
            },
        );
        if let Some(core) = self.nodes[node].core.as_mut() {
            core.begin(req, cookie.as_deref(), self.now);
        }
        self.pump(node);
    }

    /// Takes every output of node `i`'s core and acts on it.
    fn pump(&mut self, i: usize) {
        loop {
            let Some(out) = self.nodes[i].core.as_mut().and_then(|c| c.poll()) else {
                return;
            };
            let gen = self.nodes[i].gen;
            match out {
                Output::Io(op) => {
                    let d = self.rng.gen_range(0..=self.store_delay_ms);
                    self.schedule(
                        d,
                        Ev::Exec {
                            node: i,
                            gen,
                            token: op.token,
                            kind: op.kind,
                        },
                    );
                }
                Output::Moved(m) => {
                    if self.deliver_moved {
                        for j in 0..self.nodes.len() {
                            if j != i {
                                let d = self.rng.gen_range(0..=5);
                                let gen = self.nodes[j].gen;
                                self.schedule(
                                    d,
                                    Ev::Moved {
                                        node: j,
                                        gen,
                                        moved: m.clone(),
                                    },
                                );
                            }
                        }
                    }
                }
                Output::Step(req, step) => self.on_step(i, req, step),
            }
        }
    }

    fn on_step(&mut self, node: usize, req: ReqId, step: Step) {
        let Some(r) = self.reqs.get(&req) else {
            return;
        };
        let (client, floor) = (r.client, r.floor);
        let f = self.clients[client].family;
        match step {
            Step::Serve(s) => {
                let v = counter_of(&s);
                let fam = &mut self.families[f];
                assert!(
                    v >= floor,
                    "stale read: session {} read {v}, an acknowledged durable write made {floor} before this request began (t={})",
                    s.id,
                    self.now
                );
                if self.strict && !fam.uncertain && v < fam.last_ack {
                    if fam.last_ack_durable {
                        panic!(
                            "stale read: session {} read {v} after {} was acknowledged (t={})",
                            s.id, fam.last_ack, self.now
                        );
                    }
                    self.tally.queued_lost += 1;
                }
                if self.strict && !fam.uncertain && v > fam.last_ack && !s.is_new {
                    panic!(
                        "read {v} ahead of the last acknowledged {} with no uncertain request",
                        fam.last_ack
                    );
                }
                let route = self.nodes[node].name.clone();
                fam.cookie = Some(s.id.with_route(&route));
                fam.id = Some(s.id.clone());
                fam.route = Some(route);
                if let Some(r) = self.reqs.get_mut(&req) {
                    r.read = Some(v);
                    r.session = Some(s.id);
                }
                let d = self.rng.gen_range(0..=5);
                self.schedule(d, Ev::End { req });
            }
            Step::Missing => {
                let fam = &self.families[f];
                if fam.id.is_some() && !fam.acked.is_empty() {
                    self.tally.lost += 1;
                }
                let created = match self.nodes[node].core.as_mut() {
                    Some(c) => c.create(req, self.now),
                    None => return,
                };
                match created {
                    Ok(s) => {
                        // A new session: the family starts again from 0.
                        let fam = &mut self.families[f];
                        *fam = Family::default();
                        if let Some(r) = self.reqs.get_mut(&req) {
                            r.floor = 0;
                        }
                        self.on_step(node, req, Step::Serve(s));
                    }
                    Err(e) => self.failed(req, e),
                }
            }
            Step::Done { queued } => {
                let Some(r) = self.reqs.remove(&req) else {
                    return;
                };
                let fam = &mut self.families[f];
                if let (Some(v), true) = (r.read, r.wrote) {
                    let w = v + 1;
                    if !queued {
                        assert!(
                            !fam.durable.contains(&w),
                            "lost update: value {w} acknowledged durable twice in session family {f}"
                        );
                        fam.durable.push(w);
                    }
                    fam.acked.push(w);
                    fam.last_ack = w;
                    fam.last_ack_durable = !queued;
                    if !queued {
                        fam.floor = fam.floor.max(w);
                    }
                    self.tally.acked += 1;
                    if queued {
                        self.tally.acked_queued += 1;
                    }
                } else if let Some(v) = r.read {
                    fam.last_ack = v;
                }
                fam.uncertain = false;
                self.client_done(client, 0);
            }
            Step::Fail(e) => self.failed(req, e),
        }
    }

    fn failed(&mut self, req: ReqId, e: PersistError) {
        let Some(r) = self.reqs.remove(&req) else {
            return;
        };
        assert!(
            e.retry_after_secs().is_some(),
            "a failure that is not retryable: {e}"
        );
        match e {
            PersistError::Conflict { .. } => self.tally.conflicts += 1,
            PersistError::Unavailable { .. } => self.tally.unavailable += 1,
            PersistError::QueueFull { .. } => self.tally.queue_full += 1,
            _ => self.tally.other_failures += 1,
        }
        self.client_done(r.client, 20);
    }

    fn client_done(&mut self, client: usize, extra: Millis) {
        self.clients[client].busy = false;
        let (lo, hi) = self.think_ms;
        let d = self.rng.gen_range(lo..=hi) + extra;
        self.schedule(d, Ev::Send { client });
    }

    fn end(&mut self, req: ReqId) {
        let Some(r) = self.reqs.get_mut(&req) else {
            return;
        };
        let node = r.node;
        if self.nodes[node].gen != r.gen {
            return;
        }
        let write = !self.rng.gen_bool(self.read_only);
        let r = self.reqs.get_mut(&req).unwrap_or_else(|| panic!("req"));
        let ops = match (write, r.read) {
            (true, Some(v)) => {
                r.wrote = true;
                vec![DeltaOp::Set(
                    "n".into(),
                    AttrValue::Json((v + 1).to_string()),
                )]
            }
            _ => vec![],
        };
        let end = RequestEnd {
            id: r.session.clone(),
            ops,
            invalidate: false,
            accessed: true,
            replicate: true,
        };
        if let Some(c) = self.nodes[node].core.as_mut() {
            c.end(req, end, self.now);
        }
        self.pump(node);
    }

    /// After quiescing: every family's newest value is in the store (nothing acknowledged
    /// was lost), read through the id the clients hold.
    pub fn check_store(&self, allow_queued_loss: bool) {
        for (f, fam) in self.families.iter().enumerate() {
            let Some(id) = fam.id.clone() else { continue };
            if fam.acked.is_empty() {
                continue;
            }
            let stored = self.store.counter(&id);
            let want = if fam.last_ack_durable || !allow_queued_loss {
                fam.last_ack
            } else {
                fam.floor
            };
            let got = stored.unwrap_or_else(|| {
                panic!(
                    "family {f}: session {id} not in the store (acked up to {})",
                    fam.last_ack
                )
            });
            assert!(
                got >= want,
                "family {f}: store has {got}, {want} was acknowledged"
            );
            if !fam.uncertain {
                assert!(
                    got <= fam.last_ack.max(fam.floor) + 1,
                    "family {f}: store {got} ahead of acks {}",
                    fam.last_ack
                );
            }
        }
    }
}
