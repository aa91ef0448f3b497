//! A tiny FIFO bus connecting sans-io managers, for scenario tests.
#![allow(dead_code)]
use rand::rngs::StdRng;
use rand::SeedableRng;
use shoal_cluster::MemberId;
use shoal_session::decode;
use shoal_session::{
    build_manager, AttrValue, DeltaOp, Lookup, ManagerConfig, ManagerKind, Outgoing, RequestEnd,
    SessionId, SessionManager,
};
use std::collections::{BTreeMap, VecDeque};

pub struct Bus {
    pub nodes: BTreeMap<MemberId, Box<dyn SessionManager>>,
    pub queue: VecDeque<(MemberId, MemberId, Vec<u8>)>,
    pub now: u64,
    /// Negative acknowledgements seen by `pump`: (receiver, message kind, error).
    pub nacks: Vec<(MemberId, String, String)>,
    /// Links that drop what is sent over them, one direction each: (from, to).
    pub cut: Vec<(u8, u8)>,
}

pub fn id(n: u8) -> MemberId {
    MemberId([n; 16])
}

impl Bus {
    /// No node yet (see `add`).
    pub fn empty() -> Self {
        Bus {
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            now: 1_000_000,
            nacks: Vec::new(),
            cut: Vec::new(),
        }
    }

    /// Starts node `n` (route `node<n>`) seeing `members` (itself included or not).
    pub fn add(&mut self, n: u8, members: &[u8], cfg: ManagerConfig) {
        let mut mgr = build_manager(
            "/app",
            id(n),
            &format!("node{n}"),
            cfg,
            StdRng::seed_from_u64(u64::from(n)),
        );
        let view: Vec<MemberId> = members.iter().map(|m| id(*m)).collect();
        let out = mgr.start(&view, self.now);
        self.nodes.insert(id(n), mgr);
        self.send(id(n), out);
    }

    /// Nodes `a` and `b` learn of each other.
    pub fn connect(&mut self, a: u8, b: u8) {
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            let out = self.m(x).member_added(id(y), now);
            self.send(id(x), out);
        }
    }

    pub fn new(kind: ManagerKind, n: u8, cfg: ManagerConfig) -> Self {
        let mut bus = Bus::empty();
        let all: Vec<u8> = (1..=n).collect();
        for i in 1..=n {
            let cfg = ManagerConfig {
                manager: kind,
                ..cfg.clone()
            };
            bus.add(i, &all, cfg);
        }
        bus.pump();
        bus
    }

    pub fn send(&mut self, from: MemberId, out: Vec<Outgoing>) {
        for o in out {
            for to in o.to {
                self.queue.push_back((from, to, o.payload.clone()));
            }
        }
    }

    pub fn m(&mut self, n: u8) -> &mut Box<dyn SessionManager> {
        self.nodes
            .get_mut(&id(n))
            .unwrap_or_else(|| panic!("node {n} missing"))
    }

    /// Delivers until quiet; returns the kinds delivered.
    pub fn pump(&mut self) -> Vec<String> {
        let mut kinds = Vec::new();
        while let Some((from, to, payload)) = self.queue.pop_front() {
            if self.cut.contains(&(from.0[0], to.0[0])) {
                continue;
            }
            let Some(mgr) = self.nodes.get_mut(&to) else {
                continue;
            };
            let kind = decode(&payload)
                .map(|env| env.msg.kind().name().to_owned())
                .unwrap_or_default();
            let r = mgr.handle_payload(from, &payload, self.now);
            if let Err(e) = r.ack {
                self.nacks.push((to, kind.clone(), e));
            }
            kinds.push(kind);
            self.send(to, r.out);
        }
        kinds
    }

    /// One request on node `n`: find (fetching if needed), apply `ops`, end.
    pub fn request(&mut self, n: u8, sid: Option<&SessionId>, ops: Vec<DeltaOp>) -> SessionId {
        let now = self.now;
        let sid = match sid {
            None => self.m(n).create(now).id,
            Some(s) => {
                for _ in 0..3 {
                    match self.m(n).find(s, now) {
                        Lookup::Found(_) => break,
                        Lookup::Missing => panic!("node{n}: session {s:?} missing"),
                        Lookup::Pending(out) => {
                            self.send(id(n), out);
                            self.pump();
                        }
                    }
                }
                s.clone()
            }
        };
        let end = RequestEnd {
            id: Some(sid.clone()),
            ops,
            accessed: true,
            replicate: true,
            invalidate: false,
        };
        let out = self
            .m(n)
            .end_request(end, now)
            .unwrap_or_else(|e| panic!("{e}"));
        self.send(id(n), out);
        self.pump();
        sid
    }

    pub fn kill(&mut self, n: u8) {
        self.nodes.remove(&id(n));
        self.queue.retain(|(f, t, _)| *f != id(n) && *t != id(n));
        let now = self.now;
        let alive: Vec<MemberId> = self.nodes.keys().copied().collect();
        for m in alive {
            let out = self
                .nodes
                .get_mut(&m)
                .map(|x| x.member_removed(id(n), now))
                .unwrap_or_default();
            self.send(m, out);
        }
        self.pump();
    }

    pub fn holders(&self, s: &SessionId) -> Vec<u8> {
        self.nodes
            .iter()
            .filter(|(_, m)| m.session(s).is_some())
            .map(|(k, _)| k.0[0])
            .collect()
    }

    pub fn value(&self, n: u8, s: &SessionId, key: &str) -> Option<AttrValue> {
        self.nodes
            .get(&id(n))?
            .session(s)?
            .attributes
            .get(key)
            .cloned()
    }
}

pub fn set(k: &str, v: &str) -> Vec<DeltaOp> {
    vec![DeltaOp::Set(k.into(), AttrValue::Json(v.into()))]
}
