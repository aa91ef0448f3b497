//! The coordinator killed at every step of a rollout, on a simulated 3-node cluster (n0
//! coordinates, n1 and n2 are members, version 1 is live everywhere). The rule under test
//! (`shoal_farm` crate doc, "Everywhere or nowhere"): the coordinator activates its own
//! copy last, after every other member confirmed; the change is committed once an
//! Activate reached any member. So the survivors always end with one outcome, all old
//! (no member was sent Activate) or all new (one was: the others adopt it from it), and
//! the restarted coordinator converges to the survivors' set before it reports ready.
mod sim;

use rand::{RngCore, SeedableRng};
use shoal_farm::{DeployId, Digest, Generation, SignedManifest, Target};
use sim::{KillAt, Sim, SimConfig, CHUNK};

fn bytes(size: u64, seed: u64) -> Vec<u8> {
    let mut b = vec![0; size as usize];
    rand::rngs::SmallRng::seed_from_u64(seed).fill_bytes(&mut b);
    b
}

fn deploy(s: &mut Sim, at: usize, content: &[u8]) -> DeployId {
    let m = s.manifest_for("app", content);
    let sm = SignedManifest::signed(m, &s.trusted_key().sk);
    s.deploy(at, sm, content.to_vec())
        .expect("the deploy starts")
}

/// A quiet 3-node cluster (seeded) running version 1 of `app` (generation 1) on every node.
fn cluster_on_v1(seed: u64) -> (Sim, DeployId) {
    let mut s = Sim::new(SimConfig {
        nodes: 3,
        op_rate: 0.0,
        ..SimConfig::new(seed)
    });
    s.set_quiet();
    s.advance(2_000);
    let v1 = deploy(&mut s, 0, &bytes(3 * CHUNK, seed));
    s.advance(3_000);
    for i in 0..3 {
        assert_eq!(s.applied(i, "app").map(|e| e.deploy), Some(v1.clone()));
    }
    (s, v1)
}

/// What node `i` runs of `app`: (generation, rollout).
fn running(s: &Sim, i: usize) -> Option<(Generation, DeployId)> {
    s.applied(i, "app").map(|e| (e.generation, e.deploy))
}

/// Kills n0 at `point` of the rollout of version 2; returns version 2's rollout id once
/// the survivors settled (well within the reservation TTL of 12 s, so a roll forward
/// comes from the survivors' exchange, not from anything expiring).
fn kill_coordinator_at(seed: u64, point: KillAt) -> (Sim, DeployId, DeployId) {
    let (mut s, v1) = cluster_on_v1(seed);
    s.kill_at(0, point);
    let v2 = deploy(&mut s, 0, &bytes(20 * CHUNK + 7, seed + 100));
    s.advance(4_000);
    assert!(s.core(0).is_none(), "{point:?}: n0 was killed there");
    (s, v1, v2)
}

/// Restarts n0 and checks it reported ready running what the survivors run.
fn restarted_coordinator_converges(mut s: Sim, expect: &(Generation, DeployId)) {
    s.restart_node(0);
    s.advance(3_000);
    assert!(s.is_ready(0), "n0 ready again");
    assert_eq!(
        running(&s, 0).as_ref(),
        Some(expect),
        "n0 runs the survivors' set"
    );
    // The simulation's invariants: a node reports ready only with the versions its ready
    // peers agreed on, never more than two versions live, every node converged.
    let r = s.converged();
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
}

const SEEDS: std::ops::Range<u64> = 0..12;

#[test]
fn killed_before_any_activate_leaves_every_survivor_on_the_old_version() {
    for seed in SEEDS {
        let (mut s, v1, v2) = kill_coordinator_at(seed, KillAt::BeforeFirstActivate);
        for i in 1..3 {
            assert_eq!(
                running(&s, i),
                Some((1, v1.clone())),
                "seed {seed}: n{i} stays on v1"
            );
        }
        // While the coordinator is down the survivors deploy a version 3 of their own, at
        // the same generation n0's version 2 would have had. n0's restart must not bring
        // version 2 back: it never ran it, the survivors never did either.
        s.advance(15_000);
        let v3 = deploy(&mut s, 1, &bytes(5, seed + 200));
        s.advance(3_000);
        for i in 1..3 {
            assert_eq!(
                running(&s, i),
                Some((2, v3.clone())),
                "seed {seed}: n{i} on v3"
            );
        }
        assert!(v3 != v2);
        restarted_coordinator_converges(s, &(2, v3));
    }
}

#[test]
fn killed_after_activate_reached_one_member_every_survivor_rolls_forward() {
    for seed in SEEDS {
        let (s, _, v2) = kill_coordinator_at(seed, KillAt::AfterFirstActivate);
        for i in 1..3 {
            assert_eq!(
                running(&s, i),
                Some((2, v2.clone())),
                "seed {seed}: n{i} on v2 (n1 got Activate, n2 adopted it from n1)"
            );
        }
        restarted_coordinator_converges(s, &(2, v2));
    }
}

#[test]
fn killed_before_its_own_activation_the_members_run_the_new_version_and_it_follows() {
    for seed in SEEDS {
        let (s, v1, v2) = kill_coordinator_at(seed, KillAt::BeforeOwnActivation);
        for i in 1..3 {
            assert_eq!(running(&s, i), Some((2, v2.clone())), "seed {seed}: n{i}");
        }
        // What n0 persisted: still version 1 (it was killed before its own Apply).
        assert_eq!(
            running(&s, 0),
            Some((1, v1)),
            "seed {seed}: n0 persisted v1"
        );
        restarted_coordinator_converges(s, &(2, v2));
    }
}

#[test]
fn killed_after_its_own_activation_everyone_runs_the_new_version() {
    for seed in SEEDS {
        let (s, _, v2) = kill_coordinator_at(seed, KillAt::AfterOwnActivation);
        for i in 0..3 {
            assert_eq!(running(&s, i), Some((2, v2.clone())), "seed {seed}: n{i}");
        }
        restarted_coordinator_converges(s, &(2, v2));
    }
}

#[test]
fn killed_mid_transfer_nobody_activates_and_the_content_is_intact_later() {
    for seed in SEEDS {
        let (mut s, v1) = cluster_on_v1(seed);
        let big = bytes(300 * CHUNK, seed + 300);
        deploy(&mut s, 0, &big);
        s.advance(20);
        s.kill_node(0);
        s.advance(4_000);
        for i in 1..3 {
            assert_eq!(running(&s, i), Some((1, v1.clone())), "seed {seed}: n{i}");
            assert_eq!(s.blob(i, &Digest::of(&big)), None, "seed {seed}: n{i}");
        }
        restarted_coordinator_converges(s, &(1, v1));
    }
}

/// The surviving members' decision does not depend on the reservation TTL: with version 2
/// active on n1 only, n2 (staged) adopts it as soon as it sees n0 leave.
#[test]
fn a_staged_survivor_adopts_the_committed_entry_before_its_reservation_expires() {
    let (mut s, v1) = cluster_on_v1(77);
    s.kill_at(0, KillAt::AfterFirstActivate);
    let v2 = deploy(&mut s, 0, &bytes(8 * CHUNK, 78));
    let mut seen_half = false;
    for _ in 0..4_000 {
        s.advance(1);
        let (a, b) = (running(&s, 1), running(&s, 2));
        if a != b {
            seen_half = true;
            assert!(
                a == Some((2, v2.clone())) && b == Some((1, v1.clone())),
                "{a:?} {b:?}"
            );
        }
        if a == b && a == Some((2, v2.clone())) {
            break;
        }
    }
    assert!(seen_half, "n1 activated before n2 (the window was reached)");
    assert_eq!(
        running(&s, 2),
        Some((2, v2.clone())),
        "n2 rolled forward within 4 s"
    );
    let Target::Deployed(_) = s.applied(2, "app").expect("applied").target else {
        panic!("removed")
    };
    restarted_coordinator_converges(s, &(2, v2));
}
