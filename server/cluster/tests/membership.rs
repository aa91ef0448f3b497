//! Failure detection, restarts, leave, partitions, on virtual time.
use shoal_cluster::sim::Sim;
use shoal_cluster::{DisappearReason, Event, SendOptions};
use std::time::Duration;

/// (virtual time, reason) of each MemberDisappeared for `name` seen by node `i`.
fn disappeared(sim: &Sim, i: usize, name: &str) -> Vec<(Duration, DisappearReason)> {
    sim.nodes[i]
        .log
        .iter()
        .filter_map(|(t, e)| match e {
            Event::MemberDisappeared { member, reason } if member.name == name => {
                Some((*t, reason.clone()))
            }
            _ => None,
        })
        .collect()
}

fn joined(seed: u64, n: usize) -> Sim {
    let mut sim = Sim::cluster(seed, n);
    assert!(
        sim.run_until(Duration::from_secs(3), |s| s.fully_connected()),
        "seed {seed}: cluster did not form"
    );
    sim
}

#[test]
fn kill_is_detected_within_one_second() {
    let mut took = Vec::new();
    for seed in 0..20 {
        let mut sim = joined(seed, 3);
        sim.run_for(Duration::from_millis(700));
        let killed_at = sim.elapsed();
        sim.kill(2);
        let gone = sim.run_until(Duration::from_secs(1), |s| {
            !s.view(0).contains(&"node3".into()) && !s.view(1).contains(&"node3".into())
        });
        assert!(
            gone,
            "seed {seed}: node3 still seen after 1 s: {:?} {:?}",
            sim.view(0),
            sim.view(1)
        );
        for i in 0..2 {
            let d = disappeared(&sim, i, "node3");
            assert_eq!(d.len(), 1, "seed {seed}");
            assert!(
                d[0].0 - killed_at <= Duration::from_secs(1),
                "seed {seed}: took {:?}",
                d[0].0 - killed_at
            );
            assert!(
                matches!(d[0].1, DisappearReason::Crashed(_)),
                "seed {seed}: {:?}",
                d[0].1
            );
            took.push(d[0].0 - killed_at);
        }
    }
    took.sort();
    let (median, max) = (took[took.len() / 2], took[took.len() - 1]);
    eprintln!("kill -9 → drop (virtual time): median {median:?}, max {max:?}");
}

#[test]
fn silent_member_is_dropped_within_one_second() {
    // A frozen host: no reset, no answer. Suspected after 600 ms of silence, dropped 300 ms later.
    let mut sim = joined(5, 3);
    sim.run_for(Duration::from_millis(500));
    let t0 = sim.elapsed();
    sim.partition(&[2], &[0, 1]);
    assert!(
        sim.run_until(Duration::from_secs(2), |s| s.view(0) == ["node2"]
            && s.view(1) == ["node1"])
    );
    let d = disappeared(&sim, 0, "node3");
    assert_eq!(d[0].1, DisappearReason::Timeout);
    assert!(
        d[0].0 - t0 <= Duration::from_millis(1100),
        "took {:?}",
        d[0].0 - t0
    );
}

#[test]
fn restart_is_a_new_incarnation() {
    let mut sim = joined(7, 3);
    let old = sim.id(2).expect("up");
    sim.restart(2);
    let new = sim.id(2).expect("up");
    assert_ne!(old, new);
    assert!(sim.run_until(Duration::from_secs(3), |s| s.fully_connected()));
    for i in 0..2 {
        let d = disappeared(&sim, i, "node3");
        assert_eq!(d.len(), 1, "node{}: {:?}", i + 1, d);
        // Detected either as a crash (reset seen first) or as a restart (new id handshakes first).
        assert!(matches!(
            d[0].1,
            DisappearReason::Restarted | DisappearReason::Crashed(_)
        ));
        let added: Vec<u64> = sim.nodes[i]
            .log
            .iter()
            .filter_map(|(_, e)| match e {
                Event::MemberAdded(m) if m.name == "node3" => Some(m.incarnation),
                _ => None,
            })
            .collect();
        assert_eq!(added, vec![1, 2], "node{}", i + 1);
    }
}

#[test]
fn quick_restart_reports_restarted() {
    // The old incarnation's reset is lost (cut link), the new one handshakes at once: node1
    // learns of the restart from the handshake (same name, new id).
    let mut sim = joined(8, 2);
    sim.partition(&[0], &[1]);
    sim.restart(1);
    sim.run_for(Duration::from_millis(10));
    sim.heal();
    sim.discover_now();
    assert!(sim.run_until(Duration::from_secs(3), |s| s.fully_connected()));
    let d = disappeared(&sim, 0, "node2");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, DisappearReason::Restarted);
}

#[test]
fn leave_is_reported_as_left() {
    let mut sim = joined(9, 3);
    sim.stop(1);
    assert!(
        sim.run_until(Duration::from_secs(1), |s| s.view(0) == ["node3"]
            && s.view(2) == ["node1"])
    );
    assert_eq!(
        disappeared(&sim, 0, "node2")[0].1,
        DisappearReason::Left,
        "{:#?}",
        sim.nodes[0].log
    );
    assert_eq!(disappeared(&sim, 2, "node2")[0].1, DisappearReason::Left);
}

#[test]
fn partition_drops_both_sides_and_heal_readds() {
    for seed in 0..30 {
        let mut sim = joined(seed, 4);
        sim.partition(&[0, 1], &[2, 3]);
        let split = sim.run_until(Duration::from_secs(3), |s| {
            s.view(0) == ["node2"]
                && s.view(1) == ["node1"]
                && s.view(2) == ["node4"]
                && s.view(3) == ["node3"]
        });
        assert!(
            split,
            "seed {seed}: views {:?}",
            (0..4).map(|i| sim.view(i)).collect::<Vec<_>>()
        );
        sim.run_for(Duration::from_secs(5));
        sim.heal();
        assert!(
            sim.run_until(Duration::from_secs(5), |s| s.fully_connected()),
            "seed {seed}: not healed: {:?}",
            (0..4).map(|i| sim.view(i)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn busy_member_is_never_dropped() {
    let mut sim = joined(11, 3);
    sim.chaos.max_delay = Duration::from_millis(2);
    for k in 0..3000u32 {
        // Continuous traffic from every node, with acks, for 6 s of virtual time.
        let from = (k % 3) as usize;
        let to = [(from + 1) % 3, (from + 2) % 3];
        sim.send(
            from,
            &to,
            vec![k as u8; 1024],
            SendOptions(SendOptions::USE_ACK),
        );
        sim.run_for(Duration::from_millis(2));
    }
    sim.run_for(Duration::from_secs(4));
    for i in 0..3 {
        let bad = sim.nodes[i]
            .log
            .iter()
            .filter(|(_, e)| matches!(e, Event::MemberDisappeared { .. }))
            .count();
        assert_eq!(bad, 0, "node{} dropped a live member", i + 1);
        let failed = sim.nodes[i]
            .outcomes
            .values()
            .flatten()
            .filter(|(_, s)| !matches!(s, shoal_cluster::DeliveryStatus::Acked))
            .collect::<Vec<_>>();
        assert_eq!(failed.len(), 0, "{failed:?}");
        assert_eq!(failed.len(), 0, "node{}: every send acked", i + 1);
        assert_eq!(
            sim.nodes[i].received.len(),
            2000,
            "node{} received all",
            i + 1
        );
    }
}

#[test]
fn scripted_partition_of_one_node_and_heal() {
    use shoal_cluster::sim::Op;
    for seed in 0..10 {
        let mut sim = Sim::cluster(seed, 3);
        let alone =
            |s: &Sim| s.view(0).is_empty() && s.view(1) == ["node3"] && s.view(2) == ["node2"];
        sim.script(vec![
            Op::WaitFor(
                "formed",
                Duration::from_secs(2),
                Box::new(|s: &Sim| s.fully_connected()),
            ),
            Op::Partition(vec![0], vec![1, 2]),
            Op::WaitFor("node1 isolated", Duration::from_secs(2), Box::new(alone)),
            Op::Wait(Duration::from_secs(10)),
            Op::Assert("still isolated", Box::new(alone)),
            Op::Heal,
            Op::WaitFor(
                "healed",
                Duration::from_secs(5),
                Box::new(|s: &Sim| s.fully_connected()),
            ),
            Op::Kill(2),
            Op::WaitFor(
                "node3 gone",
                Duration::from_secs(1),
                Box::new(|s: &Sim| s.view(0) == ["node2"]),
            ),
            Op::Restart(2),
            Op::WaitFor(
                "node3 back",
                Duration::from_secs(3),
                Box::new(|s: &Sim| s.fully_connected()),
            ),
        ]);
    }
}
