//! Sans-io manager scenarios driven through a tiny FIFO bus: state transfer retries,
//! BackupManager proxy fetch, promotion and backup re-creation, conflicts, expiry.
use rand::rngs::StdRng;
use rand::SeedableRng;
use shoal_cluster::MemberId;
use shoal_session::message::{decode, SessionMessage};
use shoal_session::{
    build_manager, AttrValue, DeltaOp, Lookup, ManagerConfig, ManagerKind, Outgoing, RequestEnd,
    SessionId, SessionManager,
};
use std::collections::{BTreeMap, VecDeque};

struct Bus {
    nodes: BTreeMap<MemberId, Box<dyn SessionManager>>,
    queue: VecDeque<(MemberId, MemberId, Vec<u8>)>,
    now: u64,
}

fn id(n: u8) -> MemberId {
    MemberId([n; 16])
}

impl Bus {
    fn new(kind: ManagerKind, n: u8, cfg: ManagerConfig) -> Self {
        let mut bus = Bus {
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            now: 1_000_000,
        };
        let ids: Vec<MemberId> = (1..=n).map(id).collect();
        for (i, m) in ids.iter().enumerate() {
            let cfg = ManagerConfig {
                manager: kind,
                ..cfg.clone()
            };
            let mut mgr = build_manager(
                "/app",
                *m,
                &format!("node{}", i + 1),
                cfg,
                StdRng::seed_from_u64(i as u64),
            );
            let out = mgr.start(&ids, bus.now);
            bus.nodes.insert(*m, mgr);
            bus.send(*m, out);
        }
        bus.pump();
        bus
    }

    fn send(&mut self, from: MemberId, out: Vec<Outgoing>) {
        for o in out {
            for to in o.to {
                self.queue.push_back((from, to, o.payload.clone()));
            }
        }
    }

    fn m(&mut self, n: u8) -> &mut Box<dyn SessionManager> {
        self.nodes
            .get_mut(&id(n))
            .unwrap_or_else(|| panic!("node {n} missing"))
    }

    /// Delivers until quiet; returns the kinds delivered.
    fn pump(&mut self) -> Vec<String> {
        let mut kinds = Vec::new();
        while let Some((from, to, payload)) = self.queue.pop_front() {
            let Some(mgr) = self.nodes.get_mut(&to) else {
                continue;
            };
            if let Ok(env) = decode(&payload) {
                kinds.push(env.msg.kind().name().to_owned());
            }
            let r = mgr.handle_payload(from, &payload, self.now);
            self.send(to, r.out);
        }
        kinds
    }

    /// One request on node `n`: find (fetching if needed), apply `ops`, end.
    fn request(&mut self, n: u8, sid: Option<&SessionId>, ops: Vec<DeltaOp>) -> SessionId {
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

    fn kill(&mut self, n: u8) {
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

    fn holders(&self, s: &SessionId) -> Vec<u8> {
        self.nodes
            .iter()
            .filter(|(_, m)| m.session(s).is_some())
            .map(|(k, _)| k.0[0])
            .collect()
    }

    fn value(&self, n: u8, s: &SessionId, key: &str) -> Option<AttrValue> {
        self.nodes
            .get(&id(n))?
            .session(s)?
            .attributes
            .get(key)
            .cloned()
    }
}

fn set(k: &str, v: &str) -> Vec<DeltaOp> {
    vec![DeltaOp::Set(k.into(), AttrValue::Json(v.into()))]
}

#[test]
fn backup_manager_keeps_one_backup_and_proxies_elsewhere() {
    let mut bus = Bus::new(ManagerKind::Backup, 3, ManagerConfig::default());
    let s = bus.request(1, None, set("a", "1"));
    assert_eq!(bus.holders(&s).len(), 2, "primary + 1 backup");
    assert!(bus.holders(&s).contains(&1));
    let proxy = (1..=3).find(|n| !bus.holders(&s).contains(n)).unwrap_or(0);
    assert_eq!(bus.m(proxy).stats().proxy_sessions, 1);

    // A request on the proxy node fetches the value and becomes primary.
    bus.request(proxy, Some(&s), set("a", "2"));
    let h = bus.holders(&s);
    assert!(
        h.contains(&proxy) && h.len() == 2,
        "proxy became primary with one backup: {h:?}"
    );
    for n in h {
        assert_eq!(bus.value(n, &s, "a"), Some(AttrValue::Json("2".into())));
    }
    assert!(bus.m(proxy).stats().fetches >= 1);
    assert_eq!(bus.m(proxy).stats().promotions, 1);
}

#[test]
fn backup_manager_promotes_orphans_and_recreates_lost_backups() {
    let mut bus = Bus::new(ManagerKind::Backup, 4, ManagerConfig::default());
    let sessions: Vec<SessionId> = (0..40)
        .map(|i| bus.request(1, None, set("k", &i.to_string())))
        .collect();
    // Backups spread over nodes 2..4.
    let mut per = [0usize; 5];
    for s in &sessions {
        for h in bus.holders(s) {
            per[h as usize] += 1;
        }
    }
    assert!(
        per[2] > 5 && per[3] > 5 && per[4] > 5,
        "uneven backups {per:?}"
    );

    bus.kill(1); // every session lost its primary
    for (i, s) in sessions.iter().enumerate() {
        let h = bus.holders(s);
        assert_eq!(h.len(), 2, "orphan promoted and a new backup made: {h:?}");
        for n in h {
            assert_eq!(bus.value(n, s, "k"), Some(AttrValue::Json(i.to_string())));
        }
    }
    let promoted: u64 = (2..=4).map(|n| bus.m(n).stats().promotions).sum();
    assert_eq!(promoted, 40);

    // Losing a backup: its primaries make new ones.
    bus.kill(2);
    for s in &sessions {
        assert_eq!(bus.holders(s).len(), 2, "backup re-created");
    }
    let recreated: u64 = (3..=4).map(|n| bus.m(n).stats().backups_recreated).sum();
    assert!(recreated > 0);
}

#[test]
fn delta_transfer_asks_the_next_member_when_one_fails_or_lacks_the_context() {
    // Batches follow the sender's send_all_sessions_size (as in Tomcat).
    let cfg = ManagerConfig {
        send_all_sessions_size: 10,
        ..ManagerConfig::default()
    };
    let mut bus = Bus::new(ManagerKind::Delta, 2, cfg.clone());
    let sessions: Vec<SessionId> = (0..25)
        .map(|_| bus.request(1, None, set("a", "1")))
        .collect();
    // Node 3 joins knowing members 0 (no context), 1 (will vanish) and 2.
    let mut j = build_manager("/app", id(3), "node3", cfg, StdRng::seed_from_u64(3));
    let now = bus.now;
    let out = j.start(&[id(0), id(1), id(2)], now);
    assert!(!j.is_ready());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, vec![id(0)], "asks the first member");
    // Member 0 lacks the context.
    let r = j.handle_message(id(0), SessionMessage::NoContextManager { request: 1 }, now);
    assert_eq!(
        r.out.first().map(|o| o.to.clone()),
        Some(vec![id(1)]),
        "asks the next one"
    );
    // Member 1 disappears before answering.
    let out = j.member_removed(id(1), now);
    assert_eq!(out.first().map(|o| o.to.clone()), Some(vec![id(2)]));
    // Member 2 answers in batches of 10.
    bus.nodes.insert(id(3), j);
    for m in [1u8, 2] {
        let out = bus.m(m).member_added(id(3), now);
        bus.send(id(m), out);
    }
    bus.send(id(3), out);
    // A write on node1 races the transfer: node2's snapshot predates it, node3 queues it.
    bus.request(1, Some(&sessions[0]), set("a", "2"));
    let kinds = bus.pump();
    assert!(bus.m(3).is_ready());
    assert_eq!(bus.m(2).stats().state_transfers_served, 1);
    assert_eq!(
        bus.m(3)
            .stats()
            .received
            .iter()
            .find(|(k, _)| *k == "all_session_data")
            .map(|x| x.1),
        Some(3),
        "{kinds:?}"
    );
    assert_eq!(
        bus.value(3, &sessions[0], "a"),
        Some(AttrValue::Json("2".into())),
        "queued write applied"
    );
    for s in &sessions[1..] {
        assert_eq!(bus.value(3, s, "a"), Some(AttrValue::Json("1".into())));
    }
    assert_eq!(bus.m(3).stats().state_transfers, 1);
    assert_eq!(bus.m(3).stats().last_transfer_sessions, 25);
}

#[test]
fn delta_transfer_times_out_and_starts_alone_when_nobody_answers() {
    let cfg = ManagerConfig {
        state_transfer_timeout_secs: 1,
        ..ManagerConfig::default()
    };
    let mut j = build_manager("/app", id(3), "node3", cfg, StdRng::seed_from_u64(3));
    let out = j.start(&[id(1), id(2)], 0);
    assert_eq!(out[0].to, vec![id(1)]);
    // Messages arriving meanwhile are queued and applied after, in version order.
    let out = j.handle_timeout(1000);
    assert_eq!(
        out.first().map(|o| o.to.clone()),
        Some(vec![id(2)]),
        "timeout: ask the next"
    );
    assert!(!j.is_ready());
    j.handle_timeout(2000);
    assert!(j.is_ready(), "nobody left to ask: serve with what we have");
}

#[test]
fn concurrent_writes_on_two_nodes_converge_by_the_documented_rule() {
    let mut bus = Bus::new(
        ManagerKind::Delta,
        3,
        ManagerConfig {
            replication: shoal_session::ReplicationMode::Async,
            ..ManagerConfig::default()
        },
    );
    let s = bus.request(1, None, set("a", "0"));
    // Both node1 and node2 write version 2 before seeing each other's write.
    let now = bus.now;
    let e1 = RequestEnd {
        id: Some(s.clone()),
        ops: set("a", "from1"),
        accessed: true,
        replicate: true,
        invalidate: false,
    };
    let out1 = bus.m(1).end_request(e1, now).unwrap_or_default();
    let e2 = RequestEnd {
        id: Some(s.clone()),
        ops: set("a", "from2"),
        accessed: true,
        replicate: true,
        invalidate: false,
    };
    let out2 = bus.m(2).end_request(e2, now).unwrap_or_default();
    bus.send(id(1), out1);
    bus.send(id(2), out2);
    bus.pump();
    let conflicts: u64 = (1..=3).map(|n| bus.m(n).stats().conflicts).sum();
    assert!(
        conflicts >= 2,
        "conflict detected and counted ({conflicts})"
    );
    // Equal versions and times: the higher node id (node2) wins everywhere.
    for n in 1..=3 {
        assert_eq!(
            bus.value(n, &s, "a"),
            Some(AttrValue::Json("from2".into())),
            "node{n}"
        );
        assert_eq!(bus.m(n).session(&s).map(|x| x.version), Some(2));
    }
}

#[test]
fn replicas_apply_out_of_order_deltas_in_version_order() {
    let mut bus = Bus::new(
        ManagerKind::Delta,
        2,
        ManagerConfig {
            replication: shoal_session::ReplicationMode::Async,
            ..ManagerConfig::default()
        },
    );
    let s = bus.request(1, None, set("n", "0"));
    let mut outs = Vec::new();
    for i in 1..=5 {
        let e = RequestEnd {
            id: Some(s.clone()),
            ops: set("n", &i.to_string()),
            accessed: true,
            replicate: true,
            invalidate: false,
        };
        let now = bus.now;
        outs.push(bus.m(1).end_request(e, now).unwrap_or_default());
    }
    outs.reverse(); // deliver newest first
    for o in outs {
        bus.send(id(1), o);
    }
    bus.pump();
    assert_eq!(bus.value(2, &s, "n"), Some(AttrValue::Json("5".into())));
    assert_eq!(bus.m(2).session(&s).map(|x| x.version), Some(6));
    assert!(bus.m(2).stats().buffered_deltas >= 4);
}

#[test]
fn expiry_propagates_and_replicas_of_sessions_in_use_survive() {
    let cfg = ManagerConfig {
        max_inactive_secs: 10,
        ..ManagerConfig::default()
    };
    let mut bus = Bus::new(ManagerKind::Delta, 2, cfg);
    let idle = bus.request(1, None, set("a", "1"));
    let busy = bus.request(1, None, set("a", "1"));
    // `busy` is read (unchanged) on node1 every 3 s for 30 s; node2 never sees a request.
    for _ in 0..10 {
        bus.now += 3000;
        bus.request(1, Some(&busy), vec![]);
        for n in 1..=2 {
            let now = bus.now;
            let out = bus.m(n).handle_timeout(now);
            bus.send(id(n), out);
        }
        bus.pump();
    }
    assert_eq!(
        bus.holders(&idle),
        Vec::<u8>::new(),
        "idle session expired on both nodes"
    );
    assert_eq!(
        bus.holders(&busy),
        vec![1, 2],
        "replica of a session in use did not expire"
    );
    assert!(bus
        .m(2)
        .stats()
        .received
        .iter()
        .any(|(k, n)| *k == "session_accessed" && *n > 0));
}

#[test]
fn a_node_that_started_before_seeing_anyone_still_gets_the_state() {
    let mut bus = Bus::new(ManagerKind::Delta, 2, ManagerConfig::default());
    let s = bus.request(1, None, set("a", "1"));
    // Node 3 starts while its channel knows nobody yet: ready at once, and empty.
    let mut late = build_manager(
        "/app",
        id(3),
        "node3",
        ManagerConfig::default(),
        StdRng::seed_from_u64(9),
    );
    let now = bus.now;
    assert!(late.start(&[], now).is_empty());
    assert!(late.is_ready());
    // Then the channel finds node 1: it asks for the state.
    let out = late.member_added(id(1), now);
    assert!(!late.is_ready(), "a late joiner transfers state");
    bus.nodes.insert(id(3), late);
    bus.send(id(3), out);
    for m in [1u8, 2] {
        let out = bus.m(m).member_added(id(3), now);
        bus.send(id(m), out);
    }
    bus.pump();
    assert!(bus.m(3).is_ready());
    assert_eq!(bus.value(3, &s, "a"), Some(AttrValue::Json("1".into())));
    // A second member appearing later does not restart the transfer.
    assert!(bus.m(3).member_added(id(4), now).is_empty());
}
