//! Deterministic simulation of a farm: N cores with a simulated runtime each (storage,
//! applied set), a seeded network that delays, reorders, drops, duplicates and corrupts,
//! kills and restarts (storage survives, staging files do not), partitions with the
//! minority side holding still, late joiners, and clients that deploy good and bad
//! artifacts, undeploy and roll back. Invariants are checked after every event.
#![allow(dead_code)]
pub mod net;
pub mod store;

use ed25519_compact::{KeyPair, Seed};
use net::Chaos;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use shoal_farm::{
    decode, encode, Action, DeployId, Digest, Entry, Event, FarmConfig, FarmCore, FarmError, Kind,
    Manifest, NodeId, Outcome, SignedManifest, Target, TrustPolicy,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};
use store::Store;

pub const CHUNK: u64 = 1024;
const TICK_US: u64 = 100_000;
const DETECT_US: u64 = 300_000;
const NAMES: [&str; 3] = ["app", "plug", "file"];

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    pub chaos: Chaos,
    pub duration_ms: u64,
    pub kills: bool,
    pub partitions: bool,
    pub joiners: usize,
    /// Client operations per tick (probability).
    pub op_rate: f64,
    pub bad_deploys: bool,
    /// Pacing per receiver (`FarmConfig::transfer_rate`), bytes per second; None = unpaced.
    pub transfer_rate: Option<u64>,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            nodes: 3,
            chaos: Chaos::calm(),
            duration_ms: 30_000,
            kills: false,
            partitions: false,
            joiners: 0,
            op_rate: 0.15,
            bad_deploys: true,
            transfer_rate: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    pub activated: u64,
    pub aborted: u64,
    pub refused_at_start: u64,
    pub bad_refused: u64,
    pub kills: u64,
    pub partitions: u64,
    pub joiners: u64,
    pub decode_errors: u64,
    pub frames: u64,
    /// Every chunk handed to the network: (time in µs, sender, receiver, bytes).
    pub chunks: Vec<(u64, usize, usize, u64)>,
}

enum Ev {
    Deliver {
        from: usize,
        to: usize,
        to_inc: u64,
        frame: Vec<u8>,
    },
    Verified {
        node: usize,
        inc: u64,
        digest: Digest,
        result: Result<(), String>,
    },
    Tick,
    ViewSync,
    /// The core's `poll_timeout` (a paced chunk may leave).
    Wake {
        node: usize,
        inc: u64,
    },
}

struct SimNode {
    id: NodeId,
    core: Option<FarmCore>,
    store: Store,
    inc: u64,
    /// What the runtime made live, per name (tombstones included).
    applied: BTreeMap<String, Entry>,
    /// Peers (and their incarnation) this node was told are up.
    view: BTreeMap<usize, u64>,
    ready: bool,
    joined: bool,
    /// When the current incarnation started, and when each applied entry was applied.
    started_us: u64,
    applied_at: BTreeMap<String, u64>,
    /// The Wake scheduled for this node (µs), if any.
    wake_us: Option<u64>,
}

/// What a bad deploy must be refused with.
struct Expect {
    label: String,
    node: NodeId,
}

pub struct Sim {
    cfg: SimConfig,
    rng: SmallRng,
    base: Instant,
    now_us: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    nodes: Vec<SimNode>,
    /// Partition side per node (all 0 = no partition).
    side: Vec<u8>,
    /// Nodes back from a minority side: stale until their catalog exchange is done, so
    /// not counted in the two-versions check (without a quorum they cannot know better).
    rejoining: BTreeMap<usize, u64>,
    chaos: Chaos,
    quiet: bool,
    trusted: KeyPair,
    rogue: KeyPair,
    versions: u64,
    /// Nodes that accept unsigned manifests (a misconfigured coordinator, for tests).
    lax: BTreeSet<usize>,
    expect_refusal: HashMap<DeployId, Expect>,
    aborted: BTreeSet<DeployId>,
    applied_ever: BTreeSet<DeployId>,
    pub report: Report,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let rng = SmallRng::seed_from_u64(cfg.seed);
        let mut sim = Sim {
            chaos: cfg.chaos.clone(),
            rng,
            base: Instant::now(),
            now_us: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes: Vec::new(),
            side: Vec::new(),
            rejoining: BTreeMap::new(),
            quiet: false,
            trusted: KeyPair::from_seed(Seed::new([7; 32])),
            rogue: KeyPair::from_seed(Seed::new([9; 32])),
            versions: 0,
            lax: BTreeSet::new(),
            expect_refusal: HashMap::new(),
            aborted: BTreeSet::new(),
            applied_ever: BTreeSet::new(),
            report: Report::default(),
            cfg,
        };
        for _ in 0..sim.cfg.nodes {
            sim.add_node();
        }
        sim.schedule(0, Ev::ViewSync);
        sim.schedule(TICK_US, Ev::Tick);
        sim
    }

    pub fn farm_config(&self, inc: u64) -> FarmConfig {
        self.config_for(usize::MAX, inc)
    }

    fn config_for(&self, i: usize, inc: u64) -> FarmConfig {
        FarmConfig {
            incarnation: inc,
            chunk_size: CHUNK,
            retry_after: Duration::from_millis(200),
            stage_deadline: Duration::from_secs(8),
            reservation_ttl: Duration::from_secs(12),
            sync_interval: Duration::from_secs(1),
            window: 4,
            transfer_rate: self.cfg.transfer_rate,
            transfer_burst: 4 * CHUNK,
            min_members: self.cfg.nodes / 2 + 1,
            trust: TrustPolicy {
                require_signatures: !self.lax.contains(&i),
                trusted_keys: vec![*self.trusted.pk],
            },
            // Every simulated node shares the virtual clock.
            clock_origin_ms: 1_000_000,
        }
    }

    fn now(&self) -> Instant {
        self.base + Duration::from_micros(self.now_us)
    }

    fn schedule(&mut self, after_us: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((self.now_us + after_us, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn index(&self, id: &NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == *id)
    }

    fn add_node(&mut self) {
        let i = self.nodes.len();
        let id = NodeId::new(format!("n{i}"));
        let core = FarmCore::new(
            id.clone(),
            self.config_for(i, 1),
            Default::default(),
            [],
            self.now(),
        );
        self.nodes.push(SimNode {
            id,
            core: Some(core),
            store: Store::default(),
            inc: 1,
            applied: BTreeMap::new(),
            view: BTreeMap::new(),
            ready: false,
            joined: false,
            started_us: self.now_us,
            applied_at: BTreeMap::new(),
            wake_us: None,
        });
        self.side.push(0);
    }

    // ---- running ------------------------------------------------------------------------

    pub fn run(mut self) -> Report {
        let chaos_end = self.cfg.duration_ms * 1000;
        let end = chaos_end + 40_000_000;
        let mut joiners_at: Vec<u64> = (0..self.cfg.joiners)
            .map(|_| self.rng.gen_range(chaos_end / 4..chaos_end))
            .collect();
        joiners_at.sort_unstable();
        while let Some(Reverse((t, seq))) = self.queue.pop() {
            if t > end {
                break;
            }
            self.now_us = t;
            if !self.quiet && t >= chaos_end {
                self.calm_down();
            }
            while joiners_at.first().is_some_and(|&j| j <= t) {
                joiners_at.remove(0);
                self.report.joiners += 1;
                self.add_node();
                self.schedule(DETECT_US, Ev::ViewSync);
            }
            if let Some(ev) = self.events.remove(&seq) {
                self.step(ev);
            }
            self.check_live_versions();
            if self.report.violations.len() > 20 {
                break;
            }
        }
        self.check_converged();
        self.report
    }

    fn calm_down(&mut self) {
        self.quiet = true;
        self.chaos = Chaos::calm();
        self.heal();
        for i in 0..self.nodes.len() {
            if self.nodes[i].core.is_none() {
                self.restart(i);
            }
        }
        self.schedule(DETECT_US, Ev::ViewSync);
    }

    fn step(&mut self, ev: Ev) {
        let now = self.now();
        match ev {
            Ev::Deliver {
                from,
                to,
                to_inc,
                frame,
            } => {
                if self.nodes[to].inc != to_inc || self.side[from] != self.side[to] {
                    return;
                }
                let from_id = self.nodes[from].id.clone();
                let Some(core) = self.nodes[to].core.as_mut() else {
                    return;
                };
                self.report.frames += 1;
                match decode(&frame) {
                    Ok(msg) => {
                        if std::env::var_os("SIM_TRACE_MSGS").is_some() {
                            let m = format!("{msg:?}");
                            let m: String = m.chars().take(120).collect();
                            eprintln!("{:>8.3}s {from_id} -> n{to}: {m}", self.now_us as f64 / 1e6);
                        }
                        core.handle_message(now, from_id, msg)
                    }
                    Err(_) => self.report.decode_errors += 1,
                }
                self.drive(to);
            }
            Ev::Verified {
                node,
                inc,
                digest,
                result,
            } => {
                if self.nodes[node].inc != inc {
                    return;
                }
                if let Some(core) = self.nodes[node].core.as_mut() {
                    core.handle_verified(now, digest, result);
                    self.drive(node);
                }
            }
            Ev::Tick => {
                for i in 0..self.nodes.len() {
                    if let Some(core) = self.nodes[i].core.as_mut() {
                        core.handle_timeout(now);
                        self.drive(i);
                    }
                }
                if !self.quiet {
                    self.chaos_ops();
                }
                self.schedule(TICK_US, Ev::Tick);
            }
            Ev::ViewSync => {
                for i in 0..self.nodes.len() {
                    self.sync_view(i);
                }
            }
            Ev::Wake { node, inc } => {
                if self.nodes[node].inc != inc || self.nodes[node].wake_us != Some(self.now_us) {
                    return;
                }
                self.nodes[node].wake_us = None;
                if let Some(core) = self.nodes[node].core.as_mut() {
                    core.handle_timeout(now);
                    self.drive(node);
                }
            }
        }
    }

    /// Tells node `i` about the peers it can reach now (the cluster channel's view).
    fn sync_view(&mut self, i: usize) {
        if self.nodes[i].core.is_none() {
            return;
        }
        let now = self.now();
        let want: BTreeMap<usize, u64> = (0..self.nodes.len())
            .filter(|&j| j != i && self.nodes[j].core.is_some() && self.side[j] == self.side[i])
            .map(|j| (j, self.nodes[j].inc))
            .collect();
        let have = self.nodes[i].view.clone();
        for (j, inc) in &have {
            if want.get(j) != Some(inc) {
                let id = self.nodes[*j].id.clone();
                if let Some(c) = self.nodes[i].core.as_mut() {
                    c.handle_member_down(now, id);
                }
            }
        }
        for (j, inc) in &want {
            if have.get(j) != Some(inc) {
                let id = self.nodes[*j].id.clone();
                if let Some(c) = self.nodes[i].core.as_mut() {
                    c.handle_member_up(now, id);
                }
            }
        }
        self.nodes[i].view = want;
        if !self.nodes[i].joined {
            // The channel's start-up discovery ends with the first view (symmetric: peers
            // learn of this node in the same round).
            self.nodes[i].joined = true;
            if let Some(c) = self.nodes[i].core.as_mut() {
                c.handle_joined(now);
            }
        }
        self.drive(i);
    }

    fn kill(&mut self, i: usize) {
        self.trace(|| format!("kill n{i}"));
        self.report.kills += 1;
        let n = &mut self.nodes[i];
        n.core = None;
        n.inc += 1;
        n.wake_us = None;
        n.ready = false;
        n.view.clear();
        n.store.partial.clear();
        self.schedule(DETECT_US, Ev::ViewSync);
    }

    fn restart(&mut self, i: usize) {
        self.trace(|| format!("restart n{i}"));
        let now = self.now();
        let cfg = self.config_for(i, self.nodes[i].inc);
        let n = &mut self.nodes[i];
        n.inc += 1;
        n.wake_us = None;
        n.ready = false;
        n.joined = false;
        n.view.clear();
        n.started_us = self.now_us;
        let verified: Vec<Digest> = n.store.blobs.keys().copied().collect();
        // The runtime re-applies its persisted catalog at start.
        n.applied = n
            .store
            .catalog
            .slots()
            .map(|s| (s.current.name.clone(), s.current.clone()))
            .collect();
        n.core = Some(FarmCore::new(
            n.id.clone(),
            cfg,
            n.store.catalog.clone(),
            verified,
            now,
        ));
        self.schedule(DETECT_US, Ev::ViewSync);
    }

    fn heal(&mut self) {
        self.trace(|| "heal".to_string());
        for (i, s) in self.side.iter_mut().enumerate() {
            if *s != 0 {
                self.rejoining.insert(i, self.now_us);
            }
            *s = 0;
        }
    }

    fn chaos_ops(&mut self) {
        let alive: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].core.is_some())
            .collect();
        let n = self.nodes.len();
        if self.cfg.kills && self.rng.gen_bool(0.01) && alive.len() > n / 2 + 1 {
            let i = alive[self.rng.gen_range(0..alive.len())];
            self.kill(i);
        }
        if self.cfg.kills && self.rng.gen_bool(0.04) {
            if let Some(i) = (0..n).find(|&i| self.nodes[i].core.is_none()) {
                self.restart(i);
            }
        }
        let partitioned = self.side.iter().any(|&s| s != 0);
        if self.cfg.partitions && !partitioned && self.rng.gen_bool(0.01) {
            self.report.partitions += 1;
            // A minority (at most half, rounded down) goes to side 1.
            let k = self.rng.gen_range(1..=(n / 2).max(1));
            for _ in 0..k {
                let i = self.rng.gen_range(0..n);
                self.side[i] = 1;
            }
            let side = self.side.clone();
            self.trace(|| format!("partition {side:?}"));
            self.schedule(DETECT_US, Ev::ViewSync);
        } else if partitioned && self.rng.gen_bool(0.05) {
            self.heal();
            self.schedule(DETECT_US, Ev::ViewSync);
        }
        if self.rng.gen_bool(self.cfg.op_rate) {
            self.client_op();
        }
    }

    // ---- clients ------------------------------------------------------------------------

    fn content(&mut self) -> Vec<u8> {
        let sizes = [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK - 1,
            3 * CHUNK,
            3 * CHUNK + 1,
            7 * CHUNK + 13,
        ];
        let size = sizes[self.rng.gen_range(0..sizes.len())];
        let mut b = vec![0u8; size as usize];
        self.rng.fill_bytes(&mut b);
        b
    }

    fn manifest(&mut self, name: &str, bytes: &[u8]) -> Manifest {
        self.versions += 1;
        let kind = match name {
            "app" => Kind::Application,
            "plug" => Kind::Plugin,
            _ => Kind::File,
        };
        Manifest {
            name: name.into(),
            version: format!("v{}", self.versions),
            kind,
            sha256: Digest::of(bytes),
            size: bytes.len() as u64,
            metadata: [("context".to_string(), format!("/{name}"))].into(),
        }
    }

    /// Nodes a client may talk to: alive, ready, and on the majority side.
    fn coordinators(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].core.is_some() && self.nodes[i].ready && self.side[i] == 0)
            .collect()
    }

    pub fn deploy(
        &mut self,
        at: usize,
        sm: SignedManifest,
        upload: Vec<u8>,
    ) -> Result<DeployId, FarmError> {
        let now = self.now();
        let m = sm.manifest.to_string();
        self.trace(|| format!("n{at}: deploy {m}"));
        self.nodes[at]
            .store
            .partial
            .insert(sm.manifest.sha256, upload);
        let Some(core) = self.nodes[at].core.as_mut() else {
            return Err(FarmError::NotReady);
        };
        let r = core.deploy(now, sm);
        self.drive(at);
        r
    }

    fn client_op(&mut self) {
        let cands = self.coordinators();
        if cands.is_empty() {
            return;
        }
        let at = cands[self.rng.gen_range(0..cands.len())];
        let name = NAMES[self.rng.gen_range(0..NAMES.len())];
        let now = self.now();
        let roll = self.rng.gen_range(0..100);
        let bad = self.cfg.bad_deploys;
        match roll {
            0..60 => {
                let bytes = self.content();
                let m = self.manifest(name, &bytes);
                let sm = SignedManifest::signed(m, &self.trusted.sk);
                let _ = self.deploy(at, sm, bytes);
            }
            60..64 if bad => {
                // Signed by a key nobody trusts: refused before anything moves.
                let bytes = self.content();
                let m = self.manifest(name, &bytes);
                let label = format!("{}@{}", m.name, m.version);
                let sm = SignedManifest::signed(m, &self.rogue.sk);
                match self.deploy(at, sm, bytes) {
                    Err(FarmError::Refused(r)) if r.contains(&label) => {
                        self.report.bad_refused += 1
                    }
                    other => self.violation(format!("rogue signature {label}: {other:?}")),
                }
            }
            64..72 if bad => {
                // Wrong digest or a truncated upload: the coordinator's own check refuses it.
                // Fresh content (an empty file's digest is often verified already, and
                // content-addressed storage rightly reuses it).
                let mut bytes = self.content();
                bytes.push(self.rng.gen());
                let m = self.manifest(name, &bytes);
                if roll < 68 {
                    bytes.push(1);
                } else {
                    bytes.pop();
                }
                let label = format!("{}@{}", m.name, m.version);
                let sm = SignedManifest::signed(m, &self.trusted.sk);
                let node = self.nodes[at].id.clone();
                if let Ok(d) = self.deploy(at, sm, bytes) {
                    self.expect_refusal.insert(d, Expect { label, node });
                }
            }
            72..75 if bad => {
                let bytes = self.content();
                let m = self.manifest(name, &bytes);
                let label = format!("{}@{}", m.name, m.version);
                match self.deploy(at, SignedManifest::unsigned(m), bytes) {
                    Err(FarmError::Refused(r)) if r.contains(&label) && r.contains("unsigned") => {
                        self.report.bad_refused += 1
                    }
                    other => self.violation(format!("unsigned {label}: {other:?}")),
                }
            }
            75..85 => {
                if let Some(c) = self.nodes[at].core.as_mut() {
                    let _ = c.undeploy(now, name);
                }
                self.drive(at);
            }
            85..93 => {
                if let Some(c) = self.nodes[at].core.as_mut() {
                    let _ = c.rollback(now, name);
                }
                self.drive(at);
            }
            _ => {
                // Two coordinators deploy the same name at the same instant.
                let other = cands[self.rng.gen_range(0..cands.len())];
                for n in [at, other] {
                    let bytes = self.content();
                    let m = self.manifest(name, &bytes);
                    let sm = SignedManifest::signed(m, &self.trusted.sk);
                    let _ = self.deploy(n, sm, bytes);
                }
            }
        }
    }

    // ---- the simulated runtime --------------------------------------------------------

    fn drive(&mut self, i: usize) {
        loop {
            let Some(core) = self.nodes[i].core.as_mut() else {
                return;
            };
            let actions = core.take_actions();
            if actions.is_empty() {
                break;
            }
            for a in actions {
                self.act(i, a);
            }
        }
        // The runtime's timer: wake the core when pacing lets its next chunk leave.
        let Some(at) = self.nodes[i].core.as_ref().and_then(|c| c.poll_timeout()) else {
            return;
        };
        let at_us = (at.saturating_duration_since(self.base).as_micros() as u64).max(self.now_us);
        if self.nodes[i].wake_us.is_none_or(|w| at_us < w) {
            self.nodes[i].wake_us = Some(at_us);
            let inc = self.nodes[i].inc;
            self.schedule(at_us - self.now_us, Ev::Wake { node: i, inc });
        }
    }

    fn act(&mut self, i: usize, a: Action) {
        let now = self.now();
        match a {
            Action::Send { to, msg } => {
                if let Some(j) = self.index(&to) {
                    if let shoal_farm::Message::Chunk { bytes, .. } = &msg {
                        self.report
                            .chunks
                            .push((self.now_us, i, j, bytes.len() as u64));
                    }
                    self.net_send(i, j, encode(&msg));
                }
            }
            Action::StageBegin { digest, .. } => {
                self.nodes[i].store.partial.insert(digest, Vec::new());
            }
            Action::StageDiscard { digest } => {
                self.nodes[i].store.partial.remove(&digest);
            }
            Action::WriteChunk {
                digest,
                offset,
                bytes,
            } => {
                if let Err(e) = self.nodes[i].store.write(digest, offset, &bytes) {
                    self.violation(format!("{}: {e}", self.nodes[i].id));
                }
            }
            Action::Verify { digest, size } => {
                let result = self.nodes[i].store.verify(digest, size);
                let inc = self.nodes[i].inc;
                let delay = self.rng.gen_range(500..3_000);
                self.schedule(
                    delay,
                    Ev::Verified {
                        node: i,
                        inc,
                        digest,
                        result,
                    },
                );
            }
            Action::ReadChunk {
                to,
                digest,
                offset,
                len,
            } => {
                let r = self.nodes[i].store.read(digest, offset, len);
                if let Some(c) = self.nodes[i].core.as_mut() {
                    c.handle_chunk_read(now, to, digest, offset, r);
                }
            }
            Action::Apply { slot } => self.apply(i, slot.current),
            Action::Event(e) => self.event(i, e),
        }
    }

    fn net_send(&mut self, from: usize, to: usize, mut frame: Vec<u8>) {
        if self.nodes[to].core.is_none() || self.side[from] != self.side[to] {
            return;
        }
        if self.rng.gen_bool(self.chaos.drop) {
            return;
        }
        if !frame.is_empty() && self.rng.gen_bool(self.chaos.corrupt) {
            let k = self.rng.gen_range(0..frame.len());
            frame[k] ^= 1 << self.rng.gen_range(0..8);
        }
        let copies = if self.rng.gen_bool(self.chaos.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.chaos.delay_us;
            let d = self.rng.gen_range(lo..=hi);
            let to_inc = self.nodes[to].inc;
            self.schedule(
                d,
                Ev::Deliver {
                    from,
                    to,
                    to_inc,
                    frame: frame.clone(),
                },
            );
        }
    }

    // ---- invariants ---------------------------------------------------------------------

    fn trace(&self, what: impl FnOnce() -> String) {
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!("{:>8.3}s {}", self.now_us as f64 / 1e6, what());
        }
    }

    fn violation(&mut self, v: String) {
        self.report.violations.push(format!(
            "seed {} t={}ms: {v}",
            self.cfg.seed,
            self.now_us / 1000
        ));
    }

    /// No node ever makes live content that does not verify, nor a rollout that aborted.
    fn apply(&mut self, i: usize, e: Entry) {
        let id = self.nodes[i].id.clone();
        if let Target::Deployed(sm) = &e.target {
            let m = &sm.manifest;
            match self.nodes[i].store.blobs.get(&m.sha256) {
                Some(b) if Digest::of(b) == m.sha256 && b.len() as u64 == m.size => {}
                _ => self.violation(format!("{id} activated {m} without verified content")),
            }
            if let Err(r) = self.farm_config(0).trust.check(sm) {
                self.violation(format!("{id} activated an untrusted manifest: {r}"));
            }
        }
        if self.aborted.contains(&e.deploy) {
            self.violation(format!("{id} activated aborted rollout {}", e.deploy));
        }
        self.trace(|| format!("{id} applies {} ({})", e.describe(), e.deploy));
        self.applied_ever.insert(e.deploy.clone());
        self.nodes[i].applied_at.insert(e.name.clone(), self.now_us);
        self.nodes[i].applied.insert(e.name.clone(), e);
        if let Some(c) = self.nodes[i].core.as_ref() {
            self.nodes[i].store.catalog = c.catalog().clone();
        }
    }

    fn event(&mut self, i: usize, e: Event) {
        match e {
            Event::RolloutFinished {
                deploy, outcome, ..
            } => {
                self.trace(|| format!("rollout {deploy} finished: {outcome:?}"));
                let expect = self.expect_refusal.remove(&deploy);
                match &outcome {
                    Outcome::Activated { .. } => {
                        self.report.activated += 1;
                        if let Some(x) = expect {
                            self.violation(format!("bad artifact {} was activated", x.label));
                        }
                    }
                    Outcome::Aborted { failures, .. } => {
                        self.report.aborted += 1;
                        if self.applied_ever.contains(&deploy) {
                            self.violation(format!(
                                "rollout {deploy} aborted after a node activated it"
                            ));
                        }
                        self.aborted.insert(deploy.clone());
                        if let Some(x) = expect {
                            let s = outcome.summary();
                            let named = failures
                                .iter()
                                .any(|(n, r)| *n == x.node && r.contains(&x.label));
                            if named && s.contains(&format!("node {}", x.node)) {
                                self.report.bad_refused += 1;
                            } else if !s.contains("conflict")
                                && !s.contains("stale")
                                && !s.contains("superseded")
                            {
                                self.violation(format!(
                                    "bad artifact {} aborted without naming it and {}: {s}",
                                    x.label, x.node
                                ));
                            }
                        }
                    }
                }
            }
            Event::Ready => {
                self.trace(|| format!("n{i} ready"));
                self.nodes[i].ready = true;
                self.check_ready_converged(i);
            }
            Event::Refused { .. } if self.cfg.chaos.corrupt > 0.0 => {
                // A corrupted manifest fails its signature: the protection at work.
            }
            Event::Refused { reason, .. } => {
                self.violation(format!(
                    "{} refused a peer's entry: {reason}",
                    self.nodes[i].id
                ));
            }
        }
    }

    /// Ready nodes of one side run at most two versions of each name (old and new during
    /// the commit window).
    fn check_live_versions(&mut self) {
        let (nodes, now) = (&self.nodes, self.now_us);
        // Stale until the channel reported the other side (after DETECT) and the catalog
        // exchange with it is done.
        self.rejoining.retain(|&i, since| {
            now <= *since + DETECT_US || nodes[i].core.as_ref().is_some_and(|c| !c.in_sync())
        });
        for side in [0u8, 1] {
            let ready: Vec<&SimNode> = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, n)| {
                    n.core.is_some()
                        && n.ready
                        && self.side[*i] == side
                        && !self.rejoining.contains_key(i)
                })
                .map(|(_, n)| n)
                .collect();
            let mut bad = Vec::new();
            for name in NAMES {
                let versions: BTreeSet<Option<&DeployId>> = ready
                    .iter()
                    .map(|n| n.applied.get(name).map(|e| &e.deploy))
                    .collect();
                if versions.len() > 2 {
                    bad.push(format!(
                        "{name}: {} versions live on side {side}: {versions:?}",
                        versions.len()
                    ));
                }
            }
            for v in bad {
                self.violation(v);
            }
        }
    }

    /// A node reporting ready runs (at least) every version its ready peers agreed on
    /// before it started.
    fn check_ready_converged(&mut self, i: usize) {
        let started = self.nodes[i].started_us;
        let peers: Vec<&SimNode> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, n)| {
                *j != i && n.core.is_some() && n.ready && self.side[*j] == self.side[i]
            })
            .map(|(_, n)| n)
            .collect();
        let mut bad = Vec::new();
        for name in NAMES {
            let old = |n: &&SimNode| n.applied_at.get(name).is_some_and(|&t| t <= started);
            if !peers.iter().all(old) {
                continue;
            }
            let agreed: BTreeSet<Option<&DeployId>> = peers
                .iter()
                .map(|n| n.applied.get(name).map(|e| &e.deploy))
                .collect();
            let e = peers.first().and_then(|n| n.applied.get(name));
            if let (1, Some(e)) = (agreed.len(), e) {
                let mine = self.nodes[i].applied.get(name);
                if mine.is_none_or(|m| m.order(e) == std::cmp::Ordering::Less) {
                    bad.push(format!(
                        "{} ready without {}",
                        self.nodes[i].id,
                        e.describe()
                    ));
                }
            }
        }
        for b in bad {
            self.violation(b);
        }
    }

    /// After the quiet period: everyone alive is ready and runs the same current set.
    fn check_converged(&mut self) {
        let mut first: Option<(NodeId, Vec<Entry>)> = None;
        let mut bad = Vec::new();
        for n in &self.nodes {
            let Some(c) = n.core.as_ref() else {
                bad.push(format!("{} still down at the end", n.id));
                continue;
            };
            if !c.is_ready() {
                bad.push(format!("{} not ready after quiescence", n.id));
            }
            let cur = c.catalog().currents();
            let applied: Vec<Entry> = n.applied.values().cloned().collect();
            if applied != cur {
                bad.push(format!("{} applied set differs from its catalog", n.id));
            }
            for name in NAMES {
                if c.rollout(name).is_some_and(|r| r.outcome.is_none()) {
                    bad.push(format!("{}: rollout of {name} never finished", n.id));
                }
            }
            match &first {
                None => first = Some((n.id.clone(), cur)),
                Some((id, f)) if *f != cur => {
                    let show = |v: &Vec<Entry>| {
                        v.iter().map(Entry::describe).collect::<Vec<_>>().join(", ")
                    };
                    bad.push(format!(
                        "{} runs [{}] but {} runs [{}]",
                        n.id,
                        show(&cur),
                        id,
                        show(f)
                    ));
                }
                _ => {}
            }
        }
        for b in bad {
            self.violation(b);
        }
    }

    // ---- direct access for focused tests ------------------------------------------------

    pub fn node_id(&self, i: usize) -> NodeId {
        self.nodes[i].id.clone()
    }
    pub fn core(&self, i: usize) -> Option<&FarmCore> {
        self.nodes[i].core.as_ref()
    }
    pub fn applied(&self, i: usize, name: &str) -> Option<Entry> {
        self.nodes[i].applied.get(name).cloned()
    }
    pub fn blob(&self, i: usize, d: &Digest) -> Option<Vec<u8>> {
        self.nodes[i].store.blobs.get(d).cloned()
    }
    pub fn trusted_key(&self) -> &KeyPair {
        &self.trusted
    }
    /// Virtual time since the start, in µs.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }
    /// Runs events for `ms` of virtual time (no client operations unless chaos is on).
    pub fn advance(&mut self, ms: u64) {
        let end = self.now_us + ms * 1000;
        while let Some(Reverse((t, seq))) = self.queue.peek().copied() {
            if t > end {
                break;
            }
            self.queue.pop();
            self.now_us = t;
            if let Some(ev) = self.events.remove(&seq) {
                self.step(ev);
            }
            self.check_live_versions();
        }
        self.now_us = end;
    }
    /// Restarts node `i` with a policy that accepts unsigned manifests.
    pub fn make_lax(&mut self, i: usize) {
        self.lax.insert(i);
        self.kill(i);
        self.restart(i);
    }
    /// Runs `f` on node `at`'s core at the current time, then carries out its actions.
    pub fn with_core<T>(
        &mut self,
        at: usize,
        f: impl FnOnce(&mut FarmCore, Instant) -> Result<T, FarmError>,
    ) -> Result<T, FarmError> {
        let now = self.now();
        let core = self.nodes[at].core.as_mut().ok_or(FarmError::NotReady)?;
        let r = f(core, now);
        self.drive(at);
        r
    }
    pub fn set_quiet(&mut self) {
        self.quiet = true;
    }
    pub fn kill_node(&mut self, i: usize) {
        self.kill(i);
    }
    pub fn restart_node(&mut self, i: usize) {
        self.restart(i);
    }
    pub fn join_node(&mut self) -> usize {
        self.add_node();
        self.schedule(DETECT_US, Ev::ViewSync);
        self.nodes.len() - 1
    }
    pub fn converged(mut self) -> Report {
        self.check_converged();
        self.report
    }
    pub fn manifest_for(&mut self, name: &str, bytes: &[u8]) -> Manifest {
        self.manifest(name, bytes)
    }
}
