//! Send outcomes: per destination, with reasons that name the member.
use shoal_cluster::interceptors::Coordinator;
use shoal_cluster::sim::Sim;
use shoal_cluster::{DeliveryStatus, Event, MemberId, SendOptions};
use std::time::Duration;

fn joined(sim: &mut Sim) {
    assert!(
        sim.run_until(Duration::from_secs(3), |s| s.fully_connected()),
        "cluster did not form"
    );
}

fn outcome(sim: &Sim, from: usize, id: u64) -> Vec<(MemberId, DeliveryStatus)> {
    sim.nodes[from]
        .outcomes
        .get(&id)
        .cloned()
        .unwrap_or_else(|| panic!("send {id} has no outcome"))
}

#[test]
fn non_member_and_oversized_fail_at_once_with_reasons() {
    let mut sim = Sim::cluster(1, 2);
    sim.config.max_frame = 4096;
    sim.restart(0);
    sim.restart(1);
    joined(&mut sim);
    let stranger = MemberId([0xee; 16]);
    let now = sim.now;
    let node2 = sim.id(1).expect("up");
    let n = sim.nodes[0].node.as_mut().expect("up");
    let id = n.send(
        now,
        &[stranger, node2],
        vec![0; 10_000],
        SendOptions(SendOptions::USE_ACK),
    );
    let mut results = None;
    while let Some(e) = n.poll_event() {
        if let Event::SendComplete { id: i, results: r } = e {
            assert_eq!(i, id);
            results = Some(r);
        }
    }
    let r = results.expect("outcome is immediate: nothing can succeed");
    assert!(
        matches!(&r[0].1, DeliveryStatus::Failed(s) if s.contains(&format!("{stranger:?}")) && s.contains("not a member")),
        "{r:?}"
    );
    assert!(
        matches!(&r[1].1, DeliveryStatus::Failed(s) if s.contains("exceeds the limit of 4096")),
        "{r:?}"
    );
}

#[test]
fn ack_timeout_names_the_silent_member() {
    let mut sim = Sim::cluster(2, 3);
    // Keep node3 a member while it is cut off, so the ack timeout fires first.
    sim.config.suspect_after = Duration::from_secs(30);
    sim.config.verify_timeout = Duration::from_secs(30);
    for i in 0..3 {
        sim.restart(i);
    }
    joined(&mut sim);
    sim.partition(&[0], &[2]);
    let id = sim
        .send(0, &[1, 2], b"x".to_vec(), SendOptions(SendOptions::USE_ACK))
        .expect("up");
    sim.run_for(Duration::from_millis(3100));
    let r = outcome(&sim, 0, id);
    assert_eq!(r[0].1, DeliveryStatus::Acked);
    assert_eq!(
        r[1].1,
        DeliveryStatus::Failed("no ack from node3 within 3000ms".into())
    );
}

#[test]
fn sync_ack_waits_for_the_application() {
    let mut sim = Sim::cluster(3, 2);
    sim.auto_complete = false;
    joined(&mut sim);
    let opts = SendOptions(SendOptions::SYNCHRONIZED_ACK);
    let ok = sim.send(0, &[1], b"a".to_vec(), opts).expect("up");
    let bad = sim.send(0, &[1], b"b".to_vec(), opts).expect("up");
    sim.run_for(Duration::from_millis(500));
    assert!(
        sim.nodes[0].outcomes.is_empty(),
        "no outcome before the receiver completes"
    );
    assert_eq!(sim.nodes[1].received.len(), 2);
    let from = sim.id(0).expect("up");
    sim.with_node(1, |n, now| {
        n.complete(now, from, ok, Ok(()));
        n.complete(now, from, bad, Err("session store is read-only".into()));
        n.complete(now, from, bad, Ok(())); // a second completion is ignored
    });
    sim.run_for(Duration::from_millis(50));
    assert_eq!(outcome(&sim, 0, ok)[0].1, DeliveryStatus::Processed);
    let r = outcome(&sim, 0, bad);
    assert!(
        matches!(&r[0].1, DeliveryStatus::Failed(s) if s.contains("node2") && s.contains("read-only")),
        "{r:?}"
    );
}

#[test]
fn async_sends_report_delivered_and_ids_increase() {
    let mut sim = Sim::cluster(4, 3);
    joined(&mut sim);
    let mut last = 0;
    for k in 0..50u8 {
        let id = sim
            .send(0, &[1, 2], vec![k], SendOptions(SendOptions::ASYNCHRONOUS))
            .expect("up");
        assert!(id > last, "ids strictly increase");
        last = id;
        let r = outcome(&sim, 0, id);
        assert!(
            r.iter().all(|(_, s)| *s == DeliveryStatus::Delivered),
            "{r:?}"
        );
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.nodes[1].received.len(), 50);
    let stats = sim.node(0).expect("up").peer_stats();
    assert_eq!(stats.len(), 2);
    for (m, s) in stats {
        assert_eq!(s.tx_messages, 50, "{}", m.name);
        assert!(s.connected && !s.suspected);
    }
    let s = sim.node(1).expect("up").peer_stats();
    let from1 = s.iter().find(|(m, _)| m.name == "node1").expect("node1");
    assert_eq!(from1.1.rx_messages, 50);
}

#[test]
fn coordinator_agrees_across_the_cluster_and_moves_on_crash() {
    let mut sim = Sim::new(5).with_stack(|_| {
        shoal_cluster::InterceptorStack::new()
            .with(Box::new(Coordinator::new(Default::default())))
            .expect("stack")
    });
    for name in ["node1", "node2", "node3"] {
        sim.add_node(name);
    }
    joined(&mut sim);
    let coord = |sim: &Sim, i: usize| {
        sim.node(i)
            .and_then(|n| n.stack().get::<Coordinator>())
            .and_then(|c| c.coordinator().map(|m| m.name.clone()))
    };
    // Equal incarnations (all started at 1): the lowest id decides, the same everywhere.
    let c0 = coord(&sim, 0).expect("known");
    assert!((1..3).all(|i| coord(&sim, i).as_ref() == Some(&c0)));
    let ci = ["node1", "node2", "node3"]
        .iter()
        .position(|n| *n == c0)
        .expect("a node");
    sim.kill(ci);
    let others: Vec<usize> = (0..3).filter(|&i| i != ci).collect();
    assert!(sim.run_until(Duration::from_secs(2), |s| others
        .iter()
        .all(|&i| s.view(i).len() == 1)));
    let next = coord(&sim, others[0]).expect("known");
    assert_ne!(next, c0);
    assert_eq!(coord(&sim, others[1]), Some(next));
}

#[test]
fn node_config_defaults_validate_and_bad_timings_are_named() {
    use shoal_cluster::NodeConfig;
    let d = NodeConfig::default();
    d.validate().expect("defaults are valid");
    assert_eq!(
        (
            d.ping_interval,
            d.suspect_after,
            d.verify_timeout,
            d.ack_timeout
        ),
        (
            Duration::from_millis(200),
            Duration::from_millis(600),
            Duration::from_millis(300),
            Duration::from_millis(3000)
        )
    );
    let bad = NodeConfig {
        suspect_after: Duration::from_millis(100),
        ..NodeConfig::default()
    };
    let e = bad
        .validate()
        .expect_err("suspect_after below ping_interval");
    assert!(
        e.contains("suspect_after") && e.contains("ping_interval"),
        "{e}"
    );
    let bad = NodeConfig {
        heartbeat: Duration::ZERO,
        ..NodeConfig::default()
    };
    assert!(bad.validate().expect_err("zero").contains("heartbeat"));
}

/// A send still waiting on a member that crashes fails with "member ... disappeared", and
/// the MemberDisappeared event comes first: a caller that checks the view when told of the
/// failure must not find the member still there (the session layer counts a failure to a
/// member still in the view as a replication failure: HTTP 503 on a request whose other
/// replicas acknowledged it).
#[test]
fn a_crashed_member_leaves_the_view_before_its_sends_fail() {
    let mut sim = Sim::cluster(4, 3);
    sim.auto_complete = false;
    joined(&mut sim);
    let opts = SendOptions(SendOptions::SYNCHRONIZED_ACK);
    let id = sim.send(0, &[2], b"x".to_vec(), opts).expect("up");
    sim.run_for(Duration::from_millis(100));
    assert!(
        sim.nodes[0].outcomes.is_empty(),
        "completed before the crash"
    );
    sim.kill(2);
    assert!(
        sim.run_until(Duration::from_secs(2), |s| s.nodes[0]
            .outcomes
            .contains_key(&id)),
        "the send to the crashed member never failed"
    );
    let r = outcome(&sim, 0, id);
    assert!(
        matches!(&r[0].1, DeliveryStatus::Failed(s) if s.contains("node3 disappeared")),
        "{r:?}"
    );
    let order: Vec<&str> = sim.nodes[0]
        .log
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MemberDisappeared { member, .. } if member.name == "node3" => Some("gone"),
            Event::SendComplete { id: i, .. } if *i == id => Some("failed"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["gone", "failed"]);
}
