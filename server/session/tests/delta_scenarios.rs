//! DeltaManager scenarios over the FIFO bus: state transfer retries and late joiners,
//! conflicts, ordering, expiry.
mod bus;

use bus::{id, set, Bus};
use rand::rngs::StdRng;
use rand::SeedableRng;
use shoal_session::SessionMessage;
use shoal_session::{build_manager, AttrValue, ManagerConfig, ManagerKind, RequestEnd, SessionId};

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
    // A second member appearing later does not restart the transfer (it is asked for a
    // digest).
    let out = bus.m(3).member_added(id(4), now);
    assert!(bus.m(3).is_ready());
    let kinds: Vec<&str> = out
        .iter()
        .filter_map(|o| shoal_session::decode(&o.payload).ok())
        .map(|e| e.msg.kind().name())
        .collect();
    assert_eq!(kinds, ["digest_request"]);
}

/// A plain join: the members ask the joiner for a digest, which it does not answer while
/// it transfers, so no digest travels (the joiner's memory holds just its sessions).
#[test]
fn a_plain_join_sends_no_digest() {
    let mut bus = Bus::new(ManagerKind::Delta, 2, ManagerConfig::default());
    let s = bus.request(1, None, set("a", "1"));
    bus.add(3, &[1, 2, 3], ManagerConfig::default());
    bus.connect(1, 3);
    bus.connect(2, 3);
    let kinds = bus.pump();
    assert!(bus.m(3).is_ready());
    assert_eq!(bus.value(3, &s, "a"), Some(AttrValue::Json("1".into())));
    assert_eq!(kinds.iter().filter(|k| *k == "digest_request").count(), 2);
    assert!(!kinds.iter().any(|k| k == "digest"), "{kinds:?}");
}

/// Node 1 and node 2 both start seeing only node 3 (a partial mesh: their links come up
/// later), each serves sessions, then they find each other. Neither asks the other for the
/// state (both are ready), yet each must end with the other's sessions — also those only
/// read since — and sync writes to the late member must not fail for want of a base.
#[test]
fn members_that_meet_late_exchange_what_the_other_missed() {
    let mut bus = Bus::empty();
    bus.add(3, &[1, 2, 3], ManagerConfig::default());
    bus.add(1, &[1, 3], ManagerConfig::default());
    bus.add(2, &[2, 3], ManagerConfig::default());
    bus.pump();
    assert!(bus.nodes.values().all(|m| m.is_ready()));
    let written = bus.request(2, None, set("a", "1"));
    let read_only = bus.request(2, None, set("r", "1"));
    let on_node1 = bus.request(1, None, set("b", "1"));
    // A session everyone holds, logged out on node 1: node 2 does not hear of it.
    let gone = bus.request(3, None, set("c", "1"));
    assert_eq!(bus.holders(&gone), vec![1, 2, 3]);
    let end = RequestEnd {
        id: Some(gone.clone()),
        invalidate: true,
        ..RequestEnd::default()
    };
    let now = bus.now;
    let out = bus.m(1).end_request(end, now).expect("invalidate");
    bus.send(id(1), out);
    bus.pump();
    assert_eq!(bus.holders(&gone), vec![2]);
    assert_eq!(bus.holders(&written), vec![2, 3]);
    assert_eq!(bus.holders(&on_node1), vec![1, 3]);

    bus.connect(1, 2);
    // Written before the digests were answered: the change goes whole, behind the digest
    // on the same ordered link, so node 1 does not refuse a delta it has no base for.
    bus.request(2, Some(&written), set("a", "2"));
    bus.request(1, Some(&on_node1), set("b", "2"));
    assert!(bus.nacks.is_empty(), "refused: {:?}", bus.nacks);
    for s in [&written, &read_only, &on_node1] {
        assert_eq!(bus.holders(s), vec![1, 2, 3], "{s:?} not everywhere");
    }
    assert!(bus.holders(&gone).is_empty());
    assert_eq!(
        bus.value(1, &written, "a"),
        Some(AttrValue::Json("2".into()))
    );
    assert_eq!(
        bus.value(2, &on_node1, "b"),
        Some(AttrValue::Json("2".into()))
    );
    assert_eq!(
        bus.value(1, &read_only, "r"),
        Some(AttrValue::Json("1".into()))
    );
}
