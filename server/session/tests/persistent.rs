//! The persistent core in a simulated cluster (see `persistent_sim`): seed 000's two
//! scenarios, random routing in both modes, concurrent requests on one session, expiry
//! while in use elsewhere, store outages, and a stale node stopping last. Every run checks
//! that a read never returns less than the newest acknowledged durable value, that no
//! durable value is acknowledged twice (a lost update), that every failure is retryable,
//! and at the end that the store holds every acknowledged value.
mod persistent_sim;

use persistent_sim::{Policy, World};
use shoal_session::persistent::{PersistMode, PersistentConfig};

fn sticky() -> PersistentConfig {
    PersistentConfig {
        process_expires_frequency: 2,
        ..PersistentConfig::default()
    }
}

fn per_request() -> PersistentConfig {
    PersistentConfig {
        mode: PersistMode::PerRequest,
        process_expires_frequency: 2,
        ..PersistentConfig::default()
    }
}

fn seeds(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| 0x5eed_0000 + i)
}

/// Seed 000 (a): the balancer cuts node1 off, restores it, cuts it again. With a balancer
/// that prefers node1 whenever it is in (the site's set-up), Tomcat serves 4, 5 again on
/// node1; here the counter goes up by one per acknowledged write, never back.
#[test]
fn seed000_a_cut_restore_cut() {
    for (mode, policy) in [
        (sticky(), Policy::Prefer),
        (sticky(), Policy::Sticky),
        (per_request(), Policy::Prefer),
    ] {
        for seed in seeds(40) {
            let mut w = World::new(seed, 2, mode.clone(), policy);
            w.add_clients(4, 1);
            w.run_for(300);
            w.nodes[0].enabled = false;
            w.run_for(300);
            w.nodes[0].enabled = true;
            w.run_for(300);
            w.nodes[0].enabled = false;
            w.run_for(300);
            w.nodes[0].enabled = true;
            w.run_for(200);
            w.quiesce();
            assert_eq!(w.tally.lost, 0, "seed {seed:#x}: {:?}", w.tally);
            assert_eq!(w.tally.queued_lost, 0, "seed {seed:#x}");
            assert_eq!(w.tally.other_failures, 0, "seed {seed:#x}: {:?}", w.tally);
            w.check_store(false);
            // One client per session and a sticky route: nothing ever conflicts.
            assert_eq!(w.tally.conflicts, 0, "seed {seed:#x}: {:?}", w.tally);
            assert!(w.tally.acked > 50, "seed {seed:#x}: {:?}", w.tally);
            if mode.mode == PersistMode::Sticky && policy == Policy::Prefer {
                let takeovers: u64 = (0..2).map(|i| w.core(i).stats().takeovers).sum();
                assert!(takeovers >= 4 * 3, "seed {seed:#x}: {takeovers} takeovers");
            }
        }
    }
}

/// Seed 000 (b): node2 goes down twice in a row, failing over to node1 each time (Tomcat:
/// node1 serves 6, 7 again from its old memory copy after the second failure).
#[test]
fn seed000_b_two_failovers() {
    for mode in [sticky(), per_request()] {
        for seed in seeds(40) {
            let mut w = World::new(seed, 2, mode.clone(), Policy::Prefer);
            w.prefer = vec![1, 0];
            w.add_clients(4, 1);
            w.run_for(300);
            w.crash(1);
            w.run_for(300);
            w.restart(1);
            w.run_for(300);
            w.crash(1);
            w.run_for(300);
            w.restart(1);
            w.run_for(200);
            w.quiesce();
            assert_eq!(w.tally.lost, 0, "seed {seed:#x}: {:?}", w.tally);
            assert_eq!(w.tally.other_failures, 0, "seed {seed:#x}");
            w.check_store(false);
        }
    }
}

/// No stickiness at all: every request may land on any of three nodes.
#[test]
fn random_routing_per_request_mode() {
    for seed in seeds(200) {
        let mut w = World::new(seed, 3, per_request(), Policy::Random);
        w.add_clients(5, 1);
        w.run_for(400);
        w.quiesce();
        assert_eq!(w.tally.lost, 0, "seed {seed:#x}");
        assert_eq!(
            w.tally.conflicts, 0,
            "seed {seed:#x}: one client per session"
        );
        w.check_store(false);
    }
}

/// Sticky mode behind a balancer that is not sticky: every hop is a takeover (three round
/// trips), never a stale copy.
#[test]
fn random_routing_sticky_mode() {
    for (seed, moved) in seeds(200).zip([true, false].into_iter().cycle()) {
        let mut w = World::new(seed, 3, sticky(), Policy::Random);
        w.deliver_moved = moved;
        w.add_clients(5, 1);
        w.run_for(400);
        w.quiesce();
        assert_eq!(w.tally.lost, 0, "seed {seed:#x}");
        w.check_store(false);
    }
}

/// Two clients share each session and send at the same time through a random balancer:
/// concurrent requests on one session on two nodes. One compare-and-set wins, the other
/// request gets a retryable conflict; no durable value is acknowledged twice.
#[test]
fn concurrent_requests_on_one_session() {
    for mode in [per_request(), sticky()] {
        let mut conflicts = 0;
        for seed in seeds(200) {
            let mut w = World::new(seed, 2, mode.clone(), Policy::Random);
            w.strict = false;
            w.think_ms = (0, 3);
            w.read_only = 0.1;
            w.add_clients(2, 2);
            w.run_for(300);
            w.quiesce();
            assert_eq!(w.tally.lost, 0, "seed {seed:#x}");
            w.check_store(false);
            assert!(
                w.tally.conflicts <= w.total_conflicts(),
                "seed {seed:#x}: every conflict is counted"
            );
            conflicts += w.tally.conflicts;
        }
        assert!(conflicts > 0, "the scenario should produce conflicts");
    }
}

/// A session expires on node1 (its stale copy there, idle) while the client keeps using it
/// on node2: the row survives. Reads only, mostly, so the touch rule keeps it fresh.
#[test]
fn expiry_on_one_node_while_in_use_on_another() {
    for (mode, policy) in [(sticky(), Policy::Prefer), (per_request(), Policy::Random)] {
        for (seed, moved) in seeds(30).zip([false, true].into_iter().cycle()) {
            let mut w = World::new(seed, 2, mode.clone(), policy);
            w.max_inactive_secs = 4;
            w.cfg.process_expires_frequency = 1;
            w.reconfigure();
            w.deliver_moved = moved;
            w.add_clients(3, 1);
            w.run_for(500);
            w.nodes[0].enabled = false; // sticky: the sessions move to node2
            w.read_only = 0.95;
            w.think_ms = (300, 900);
            w.run_for(15_000);
            assert_eq!(w.tally.lost, 0, "seed {seed:#x}: {:?}", w.tally);
            // The abandoned side: one client stops; its session expires everywhere.
            w.clients[0].active = false;
            w.run_for(12_000);
            w.quiesce();
            assert_eq!(w.tally.lost, 0, "seed {seed:#x}: {:?}", w.tally);
            let gone = w.families[0]
                .id
                .as_ref()
                .is_some_and(|id| w.store.counter(id).is_none());
            assert!(
                gone,
                "seed {seed:#x}: the abandoned session was not expired"
            );
            for f in 1..3 {
                let id = w.families[f]
                    .id
                    .clone()
                    .unwrap_or_else(|| panic!("family {f}"));
                assert!(
                    w.store.counter(&id).is_some(),
                    "seed {seed:#x}: a session in use was expired"
                );
            }
            if mode.mode == PersistMode::Sticky && !moved {
                let s = w.core(0).stats();
                assert!(s.dropped_not_owner >= 1, "seed {seed:#x}: {s:?}");
            }
        }
    }
}

/// The store goes down for two seconds. Sticky: requests keep being served from memory,
/// writes queue and drain afterwards. Per-request: retryable "unavailable", then recovery.
#[test]
fn store_outage_then_recovery() {
    for seed in seeds(40) {
        let mut w = World::new(seed, 2, sticky(), Policy::Sticky);
        w.add_clients(4, 1);
        w.run_for(500);
        w.store.down = true;
        w.run_for(2_000);
        assert!(w.core(0).degraded().is_some() || w.core(1).degraded().is_some());
        let depth: u64 = (0..2).map(|i| w.core(i).stats().queue_depth).sum();
        assert!(depth > 0, "seed {seed:#x}: changes should be queued");
        assert_eq!(
            w.tally.unavailable, 0,
            "seed {seed:#x}: sticky serves from memory"
        );
        w.store.down = false;
        w.run_for(2_000);
        w.quiesce();
        // Requests probe the store at most once per retry interval while it is down, so
        // recovery is noticed within `retry_max_ms`.
        w.run_for(sticky().retry_max_ms + 1_000);
        for i in 0..2 {
            let s = w.core(i).stats();
            assert_eq!(s.queue_depth, 0, "seed {seed:#x}: queue drained: {s:?}");
            assert!(!s.degraded);
            assert!(s.served_unverified > 0 || s.in_memory == 0);
        }
        assert!(w.tally.acked_queued > 0);
        assert_eq!(w.tally.queued_lost, 0, "seed {seed:#x}");
        w.check_store(false);
    }
    for seed in seeds(40) {
        let mut w = World::new(seed, 2, per_request(), Policy::Random);
        w.add_clients(4, 1);
        w.run_for(500);
        w.store.down = true;
        w.run_for(1_000);
        let failed = w.tally.unavailable;
        assert!(failed > 0, "seed {seed:#x}");
        w.store.down = false;
        let acked = w.tally.acked;
        w.run_for(1_000);
        w.quiesce();
        assert!(w.tally.acked > acked + 10, "seed {seed:#x}: recovered");
        assert_eq!(w.tally.lost, 0);
        w.check_store(false);
    }
}

/// A real store that is down answers each op only after its connect timeout, so a degraded
/// sticky node must not ask it per request: once degraded, requests for sessions in memory
/// are served unverified and their changes queued; at most one request per retry interval
/// (100 ms doubling) probes the store. Requests keep being acknowledged, and once the store
/// is back the queue drains.
#[test]
fn degraded_sticky_node_does_not_ask_the_store_per_request() {
    for seed in seeds(30) {
        let mut w = World::new(seed, 2, sticky(), Policy::Sticky);
        w.add_clients(4, 1);
        w.run_for(500);
        w.store.down = true;
        w.run_for(500);
        let degraded: Vec<usize> = (0..2).filter(|i| w.core(*i).degraded().is_some()).collect();
        assert!(
            !degraded.is_empty(),
            "seed {seed:#x}: no node noticed the outage"
        );
        let before: Vec<_> = (0..2).map(|i| w.core(i).stats()).collect();
        let acked = w.tally.acked_queued;
        w.run_for(1_500);
        let (mut all_checks, mut all_served) = (0, 0);
        for i in &degraded {
            let s = w.core(*i).stats();
            let checks = s.version_checks - before[*i].version_checks;
            all_checks += checks;
            all_served += s.served_unverified - before[*i].served_unverified;
            assert!(
                checks <= 15,
                "seed {seed:#x}: node{i} asked the store {checks} times in 1.5 s while it was down"
            );
        }
        assert!(
            all_served > 2 * all_checks,
            "seed {seed:#x}: {all_checks} version checks for {all_served} requests served while down"
        );
        assert!(
            w.tally.acked_queued > acked,
            "seed {seed:#x}: requests kept being acknowledged (queued)"
        );
        assert_eq!(w.tally.unavailable, 0, "seed {seed:#x}");
        w.store.down = false;
        w.run_for(2_000);
        w.quiesce();
        // Requests probe the store at most once per retry interval while it is down, so
        // recovery is noticed within `retry_max_ms`.
        w.run_for(sticky().retry_max_ms + 1_000);
        for i in 0..2 {
            let s = w.core(i).stats();
            assert_eq!(s.queue_depth, 0, "seed {seed:#x}: queue drained: {s:?}");
            assert!(!s.degraded, "seed {seed:#x}: {s:?}");
        }
        assert_eq!(w.tally.queued_lost, 0, "seed {seed:#x}");
        w.check_store(false);
    }
}

/// Write-behind: node1 holds changes not yet saved when the balancer moves the client to
/// node2 (which takes over the older row: the queued changes are lost, as documented).
/// Then node2 stops, and node1 stops last with its stale copy: `save_on_restart` must not
/// write it over the newer row.
#[test]
fn save_on_restart_stale_node_stopping_last() {
    for seed in seeds(30) {
        let cfg = PersistentConfig {
            max_idle_backup: 1,
            process_expires_frequency: 1,
            ..sticky()
        };
        let mut w = World::new(seed, 2, cfg, Policy::Prefer);
        w.add_clients(3, 1);
        w.think_ms = (1_500, 2_000);
        w.run_for(6_000); // idle gaps: backups reach the store
        w.think_ms = (1, 20);
        w.run_for(2_500); // changes queued on node1 (no idle second: not backed up)
        let stale_dirty = w.core(0).stats().queue_depth;
        assert!(stale_dirty > 0, "seed {seed:#x}");
        w.nodes[0].enabled = false;
        w.run_for(1_000); // taken over by node2
        w.quiesce();
        assert_eq!(w.tally.lost, 0, "seed {seed:#x}: {:?}", w.tally);
        w.stop_node(1);
        w.stop_node(0);
        assert!(
            w.nodes[0].conflicts_before_crash >= stale_dirty,
            "seed {seed:#x}: node1's stale saves must lose their compare-and-set"
        );
        // Whatever node2 acknowledged (queued or not) was saved at its stop and survived.
        w.check_store(false);
    }
}

/// Sticky mode's version check: a client sends the cookie of a session that has since
/// been taken over by another node (an old tab), to the node that still holds the old copy
/// in memory, and no `Moved` notice arrives. The check sees the tombstone's newer
/// version and follows it; without it that node would serve the old counter (seed 000's
/// "4, 5 again").
#[test]
fn old_cookie_on_the_node_holding_the_old_copy() {
    for seed in seeds(50) {
        let mut w = World::new(seed, 2, sticky(), Policy::Sticky);
        w.deliver_moved = false;
        w.strict = false;
        w.add_clients(1, 2);
        w.clients[1].active = false;
        w.run_for(300); // client 0 on node1 (the only one with a route yet: random pick)
        let cookie = w.families[0].cookie.clone();
        let first = w.families[0].route.clone();
        let Some(first) = first else { continue };
        let holder = usize::from(first == "node2");
        w.nodes[holder].enabled = false;
        w.run_for(300); // taken over by the other node
        w.nodes[holder].enabled = true;
        w.clients[1].frozen = cookie;
        w.wake(1); // the old tab: its cookie routes to `holder`, which has the old copy
        w.run_for(1);
        assert!(w.families[0].floor > 0, "seed {seed:#x}");
        w.run_for(400);
        w.quiesce();
        assert_eq!(w.tally.lost, 0, "seed {seed:#x}");
        let s = w.core(holder).stats();
        assert!(s.tombstones_followed > 0, "seed {seed:#x}: {s:?}");
        w.check_store(false);
    }
}

/// More sessions than `max_active_sessions` on sticky nodes: new sessions make room by
/// dropping clean idle copies (a batch at a time), memory never holds more than the limit,
/// and the sessions dropped are loaded again from the store with nothing lost.
#[test]
fn more_sessions_than_max_active() {
    let cfg = PersistentConfig {
        max_active_sessions: 64,
        ..sticky()
    };
    for seed in seeds(20) {
        let mut w = World::new(seed, 2, cfg.clone(), Policy::Sticky);
        w.add_clients(150, 1);
        w.run_for(600);
        w.quiesce();
        assert_eq!(w.tally.lost, 0, "seed {seed:#x}: {:?}", w.tally);
        assert_eq!(w.tally.other_failures, 0, "seed {seed:#x}: {:?}", w.tally);
        w.check_store(false);
        let mut swapped = 0;
        for i in 0..2 {
            let st = w.core(i).stats();
            assert!(st.in_memory <= 64, "seed {seed:#x} node {i}: {st:?}");
            swapped += st.swapped_out;
        }
        assert!(
            swapped > 0,
            "seed {seed:#x}: 150 sessions on 2 nodes of 64 swapped none out"
        );
    }
}
