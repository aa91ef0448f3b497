//! DeltaManager nodes starting at the same instant: state-transfer messages sent while the
//! members are still learning of each other can be lost (the channel refuses a message to a
//! member not yet in its view). Seeded runs drop such messages at random during that window
//! and check that every node is ready within a few seconds, not after the 60 s transfer
//! timeout, and that a joiner still ends with every session.
mod bus;

use bus::{id, set, Bus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_session::{build_manager, AttrValue, ManagerConfig, ManagerKind, SessionId};

/// Loss probability during the start-up window.
const LOSS: f64 = 0.4;
/// Every node must be ready this long after the start (the transfer timeout is 60 s).
const READY_WITHIN_MS: u64 = 5_000;

/// Delivers until quiet, dropping each message with probability `loss`.
fn lossy_pump(bus: &mut Bus, rng: &mut StdRng, loss: f64) {
    while let Some((from, to, payload)) = bus.queue.pop_front() {
        if rng.gen_bool(loss) {
            continue;
        }
        let now = bus.now;
        let Some(mgr) = bus.nodes.get_mut(&to) else {
            continue;
        };
        let r = mgr.handle_payload(from, &payload, now);
        bus.send(to, r.out);
    }
}

/// Advances time in 100 ms steps (timers, then lossless delivery) until every node is
/// ready; returns how long that took.
fn run_until_ready(bus: &mut Bus, seed: u64) -> u64 {
    let start = bus.now;
    while bus.nodes.values().any(|m| !m.is_ready()) {
        assert!(
            bus.now - start <= READY_WITHIN_MS,
            "seed {seed}: a node is still unready {} ms after the start",
            bus.now - start
        );
        bus.now += 100;
        let now = bus.now;
        let ids: Vec<_> = bus.nodes.keys().copied().collect();
        for m in ids {
            let out = bus.nodes.get_mut(&m).map(|x| x.handle_timeout(now));
            bus.send(m, out.unwrap_or_default());
        }
        bus.pump();
    }
    bus.now - start
}

#[test]
fn three_nodes_started_together_all_become_ready() {
    let mut worst = 0;
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bus = Bus::empty();
        let ids = [id(1), id(2), id(3)];
        for (i, m) in ids.iter().enumerate() {
            let mut mgr = build_manager(
                "/app",
                *m,
                &format!("node{}", i + 1),
                ManagerConfig::default(),
                StdRng::seed_from_u64(seed * 10 + i as u64),
            );
            let out = mgr.start(&ids, bus.now);
            bus.nodes.insert(*m, mgr);
            bus.send(*m, out);
        }
        lossy_pump(&mut bus, &mut rng, LOSS);
        worst = worst.max(run_until_ready(&mut bus, seed));
    }
    eprintln!("slowest start: {worst} ms");
}

#[test]
fn a_joiner_whose_transfer_loses_messages_gets_every_session() {
    let cfg = ManagerConfig {
        send_all_sessions_size: 10,
        ..ManagerConfig::default()
    };
    let mut worst = 0;
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bus = Bus::new(ManagerKind::Delta, 2, cfg.clone());
        let sessions: Vec<SessionId> = (0..25)
            .map(|i| bus.request(1 + (i % 2) as u8, None, set("a", &i.to_string())))
            .collect();
        let mut j = build_manager(
            "/app",
            id(3),
            "node3",
            cfg.clone(),
            StdRng::seed_from_u64(seed),
        );
        let now = bus.now;
        let out = j.start(&[id(1), id(2)], now);
        bus.nodes.insert(id(3), j);
        bus.send(id(3), out);
        for m in [1u8, 2] {
            let out = bus.m(m).member_added(id(3), now);
            bus.send(id(m), out);
        }
        lossy_pump(&mut bus, &mut rng, LOSS);
        worst = worst.max(run_until_ready(&mut bus, seed));
        for (i, s) in sessions.iter().enumerate() {
            assert_eq!(
                bus.value(3, s, "a"),
                Some(AttrValue::Json(i.to_string())),
                "seed {seed}: session {i} missing or wrong on the joiner"
            );
        }
    }
    eprintln!("slowest join: {worst} ms");
}
