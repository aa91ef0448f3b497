//! Focused rollouts on a simulated cluster: edge sizes, refusals with their reasons,
//! conflicts, rollback, undeploy, a dying coordinator, late joiners, progress.
mod sim;

use rand::{RngCore, SeedableRng};
use shoal_farm::{
    chunk_count, DeployId, Digest, FarmError, NodeState, Outcome, Phase, SignedManifest, Target,
};
use sim::{Sim, SimConfig, CHUNK};

fn quiet_sim(nodes: usize) -> Sim {
    let mut s = Sim::new(SimConfig {
        nodes,
        op_rate: 0.0,
        ..SimConfig::new(7)
    });
    s.set_quiet();
    s.advance(2_000);
    s
}

fn bytes(size: u64, seed: u64) -> Vec<u8> {
    let mut b = vec![0; size as usize];
    rand::rngs::SmallRng::seed_from_u64(seed).fill_bytes(&mut b);
    b
}

fn deploy(s: &mut Sim, at: usize, name: &str, content: &[u8]) -> Result<DeployId, FarmError> {
    let m = s.manifest_for(name, content);
    let sm = SignedManifest::signed(m, &s.trusted_key().sk);
    s.deploy(at, sm, content.to_vec())
}

fn outcome(s: &Sim, at: usize, name: &str) -> Outcome {
    let r = s.core(at).and_then(|c| c.rollout(name)).expect("a rollout");
    let st = format!("{r:?}");
    r.outcome
        .unwrap_or_else(|| panic!("rollout of {name} unfinished: {st}"))
}

#[test]
fn edge_sizes_reach_every_node_intact() {
    for size in [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        5 * CHUNK - 1,
        5 * CHUNK,
        5 * CHUNK + 1,
    ] {
        let mut s = quiet_sim(3);
        let content = bytes(size, size);
        deploy(&mut s, 0, "app", &content).expect("deploy starts");
        s.advance(3_000);
        assert_eq!(
            outcome(&s, 0, "app"),
            Outcome::Activated { generation: 1 },
            "size {size}"
        );
        for i in 0..3 {
            let e = s.applied(i, "app").expect("applied");
            let Target::Deployed(sm) = &e.target else {
                panic!("removed")
            };
            assert_eq!(sm.manifest.size, size);
            assert_eq!(
                s.blob(i, &Digest::of(&content)),
                Some(content.clone()),
                "node {i}, size {size}"
            );
        }
        assert_eq!(chunk_count(size, CHUNK), size.div_ceil(CHUNK));
        let r = s.converged();
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }
}

#[test]
fn progress_is_observable_per_node() {
    let mut s = quiet_sim(3);
    let content = bytes(40 * CHUNK, 1);
    deploy(&mut s, 0, "app", &content).expect("deploy starts");
    // Step until bytes flow to n1, and catch it part-way.
    let mut seen_partial = false;
    for _ in 0..200 {
        s.advance(1);
        let st = s.core(0).and_then(|c| c.rollout("app")).expect("status");
        assert_eq!(st.nodes.len(), 3);
        let n1 = &st.nodes[&s.node_id(1)];
        assert_eq!(n1.size, 40 * CHUNK);
        assert!(n1.bytes_staged <= n1.bytes_sent, "{n1:?}");
        if n1.bytes_sent > 0 && n1.bytes_staged < n1.size {
            assert_eq!(st.phase, Phase::Staging);
            seen_partial = true;
            break;
        }
    }
    assert!(seen_partial, "never saw a transfer in progress");
    s.advance(3_000);
    let st = s.core(0).and_then(|c| c.rollout("app")).expect("status");
    assert_eq!(st.phase, Phase::Done);
    assert!(st
        .nodes
        .values()
        .all(|n| n.state == NodeState::Activated && n.bytes_staged == n.size));
}

#[test]
fn wrong_digest_and_truncated_upload_are_refused_naming_artifact_and_node() {
    let mut s = quiet_sim(3);
    let content = bytes(3 * CHUNK, 2);
    let m = s.manifest_for("app", &content);
    let label = format!("app@{}", m.version);
    let sm = SignedManifest::signed(m, &s.trusted_key().sk);
    let mut truncated = content.clone();
    truncated.pop();
    s.deploy(1, sm, truncated).expect("starts");
    s.advance(3_000);
    let summary = outcome(&s, 1, "app").summary();
    assert!(
        summary.contains("node n1") && summary.contains(&label) && summary.contains("size"),
        "{summary}"
    );
    assert!((0..3).all(|i| s.applied(i, "app").is_none()));

    let m = s.manifest_for("app", &content);
    let sm = SignedManifest::signed(m, &s.trusted_key().sk);
    let mut other = content.clone();
    other[0] ^= 1;
    s.deploy(1, sm, other).expect("starts");
    s.advance(3_000);
    let summary = outcome(&s, 1, "app").summary();
    assert!(
        summary.contains("node n1") && summary.contains("sha256"),
        "{summary}"
    );
    assert!((0..3).all(|i| s.applied(i, "app").is_none()));
}

#[test]
fn members_refuse_unsigned_from_a_lax_coordinator() {
    let mut s = quiet_sim(3);
    s.make_lax(0);
    s.advance(2_000);
    let content = bytes(10, 3);
    let m = s.manifest_for("plug", &content);
    let label = format!("plug@{}", m.version);
    s.deploy(0, SignedManifest::unsigned(m), content)
        .expect("the lax node starts it");
    s.advance(3_000);
    let Outcome::Aborted { failures, .. } = outcome(&s, 0, "plug") else {
        panic!("activated")
    };
    assert!(!failures.is_empty());
    for (node, reason) in &failures {
        assert_ne!(node.0, "n0");
        assert!(
            reason.contains(&label) && reason.contains("unsigned"),
            "{reason}"
        );
    }
    assert!((0..3).all(|i| s.applied(i, "plug").is_none()));
}

#[test]
fn second_deploy_of_a_name_gets_a_conflict() {
    let mut s = quiet_sim(3);
    let a = bytes(20 * CHUNK, 4);
    let first = deploy(&mut s, 0, "app", &a).expect("first starts");
    let err = deploy(&mut s, 0, "app", &bytes(5, 5)).expect_err("second refused");
    assert!(
        matches!(&err, FarmError::Conflict { holder, .. } if holder.deploy == first),
        "{err}"
    );
    // From another node, while the first holds its reservation there.
    s.advance(20);
    let err = deploy(&mut s, 1, "app", &bytes(6, 6)).expect_err("refused on n1 too");
    assert!(matches!(err, FarmError::Conflict { .. }), "{err}");
    s.advance(3_000);
    assert_eq!(outcome(&s, 0, "app"), Outcome::Activated { generation: 1 });
}

/// Two deploys of one name started at the same instant on two nodes (neither has heard of
/// the other): the smaller rollout id wins everywhere, whichever started first; the other
/// aborts with the winner as the typed reason, and nothing of it is active anywhere.
#[test]
fn two_deploys_at_once_the_smaller_rollout_id_wins() {
    for first in [0, 1] {
        let mut s = quiet_sim(3);
        let (x, y) = (bytes(20 * CHUNK, 40), bytes(20 * CHUNK + 3, 41));
        let (ix, iy) = (first, 1 - first);
        let dx = deploy(&mut s, ix, "app", &x).expect("starts");
        let dy = deploy(&mut s, iy, "app", &y).expect("starts too: it has not heard of the other");
        s.advance(5_000);
        let (win, lose, wi, li, content) = if dx < dy {
            (dx, dy, ix, iy, &x)
        } else {
            (dy, dx, iy, ix, &y)
        };
        assert_eq!(outcome(&s, wi, "app"), Outcome::Activated { generation: 1 });
        let Outcome::Aborted { failures, conflict } = outcome(&s, li, "app") else {
            panic!("both activated")
        };
        let holder = conflict.expect("a typed conflict");
        assert_eq!(holder.deploy, win, "the winner is named: {failures:?}");
        assert!(holder.version.is_some());
        assert!(
            failures.iter().any(|(_, r)| r.contains("conflict")),
            "{failures:?}"
        );
        for i in 0..3 {
            let e = s.applied(i, "app").expect("deployed");
            assert_eq!(e.deploy, win, "n{i} runs the winner, never {lose}");
            let Target::Deployed(sm) = &e.target else {
                panic!("removed")
            };
            assert_eq!(sm.manifest.sha256, Digest::of(content));
        }
        let r = s.converged();
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }
}

/// Each member reports when it activated; the coordinator reports the spread.
#[test]
fn the_activation_skew_is_reported() {
    let mut s = quiet_sim(3);
    deploy(&mut s, 0, "app", &bytes(3 * CHUNK, 42)).expect("starts");
    s.advance(3_000);
    let st = s.core(0).and_then(|c| c.rollout("app")).expect("status");
    assert!(
        st.nodes.values().all(|p| p.activated_ms.is_some()),
        "{st:?}"
    );
    let skew = st.activation_skew_ms().expect("a skew once finished");
    // One message delay at most on the simulated network (all nodes share its clock).
    assert!(skew < 1_000, "{skew} ms");
    // An aborted rollout has none.
    let mut s = quiet_sim(3);
    s.make_lax(1);
    s.advance(2_000);
    let content = bytes(10, 43);
    let m = s.manifest_for("plug", &content);
    s.deploy(1, SignedManifest::unsigned(m), content)
        .expect("the lax node starts it");
    s.advance(3_000);
    let st = s.core(1).and_then(|c| c.rollout("plug")).expect("status");
    assert!(matches!(st.outcome, Some(Outcome::Aborted { .. })));
    assert_eq!(st.activation_skew_ms(), None);
}

#[test]
fn rollback_and_undeploy_everywhere() {
    let mut s = quiet_sim(3);
    let v1 = bytes(2 * CHUNK, 7);
    let v2 = bytes(3 * CHUNK + 1, 8);
    deploy(&mut s, 0, "app", &v1).expect("v1");
    s.advance(2_000);
    deploy(&mut s, 1, "app", &v2).expect("v2");
    s.advance(2_000);
    for i in 0..3 {
        assert_eq!(s.applied(i, "app").map(|e| e.generation), Some(2));
    }
    let now_v2 = s.applied(0, "app").expect("v2");
    s.core(2).expect("alive");
    let mut s = s;
    rollback(&mut s, 2, "app");
    s.advance(2_000);
    assert_eq!(outcome(&s, 2, "app"), Outcome::Activated { generation: 3 });
    for i in 0..3 {
        let e = s.applied(i, "app").expect("rolled back");
        let Target::Deployed(sm) = &e.target else {
            panic!()
        };
        assert_eq!(sm.manifest.sha256, Digest::of(&v1));
        assert_eq!(
            s.core(i)
                .and_then(|c| c.catalog().get("app"))
                .and_then(|sl| sl.previous.clone()),
            Some(now_v2.clone())
        );
    }
    undeploy(&mut s, 0, "app");
    s.advance(2_000);
    for i in 0..3 {
        assert_eq!(s.applied(i, "app").map(|e| e.target), Some(Target::Removed));
    }
    let r = s.converged();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

fn rollback(s: &mut Sim, at: usize, name: &str) {
    s.with_core(at, |c, now| c.rollback(now, name).map(|_| ()))
        .expect("rollback starts");
}

fn undeploy(s: &mut Sim, at: usize, name: &str) {
    s.with_core(at, |c, now| c.undeploy(now, name).map(|_| ()))
        .expect("undeploy starts");
}

#[test]
fn coordinator_dying_mid_transfer_leaves_nothing_active() {
    let mut s = quiet_sim(3);
    let v1 = bytes(CHUNK, 9);
    deploy(&mut s, 0, "app", &v1).expect("v1");
    s.advance(2_000);
    deploy(&mut s, 0, "app", &bytes(200 * CHUNK, 10)).expect("v2 starts");
    s.advance(10);
    s.kill_node(0);
    s.advance(30_000);
    for i in 1..3 {
        assert_eq!(
            s.applied(i, "app").map(|e| e.generation),
            Some(1),
            "n{i} stays on v1"
        );
    }
    // The survivors can deploy again (reservations expired or were excluded).
    deploy(&mut s, 1, "app", &bytes(3, 11)).expect("v2' starts");
    s.advance(2_000);
    assert_eq!(outcome(&s, 1, "app"), Outcome::Activated { generation: 2 });
    s.restart_node(0);
    s.advance(5_000);
    let r = s.converged();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn member_dying_mid_rollout_is_excluded_and_converges_on_return() {
    let mut s = quiet_sim(4);
    deploy(&mut s, 0, "app", &bytes(100 * CHUNK, 12)).expect("starts");
    s.advance(5);
    s.kill_node(3);
    s.advance(3_000);
    assert_eq!(outcome(&s, 0, "app"), Outcome::Activated { generation: 1 });
    let st = s.core(0).and_then(|c| c.rollout("app")).expect("status");
    assert_eq!(st.nodes[&s.node_id(3)].state, NodeState::Excluded);
    s.restart_node(3);
    s.advance(3_000);
    assert!(s.core(3).is_some_and(|c| c.is_ready()));
    assert_eq!(s.applied(3, "app").map(|e| e.generation), Some(1));
    let r = s.converged();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn late_joiner_pulls_current_set_before_ready() {
    let mut s = quiet_sim(3);
    deploy(&mut s, 0, "app", &bytes(9 * CHUNK, 13)).expect("app");
    deploy(&mut s, 1, "plug", &bytes(0, 14)).expect("plug");
    s.advance(2_000);
    deploy(&mut s, 2, "file", &bytes(4, 15)).expect("file");
    s.advance(2_000);
    undeploy(&mut s, 2, "file");
    s.advance(2_000);
    let j = s.join_node();
    s.advance(3_000);
    let c = s.core(j).expect("alive");
    assert!(c.is_ready());
    assert_eq!(
        c.catalog().currents(),
        s.core(0).expect("n0").catalog().currents()
    );
    let r = s.converged();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn a_node_coordinates_only_once_ready() {
    let s = quiet_sim(1);
    assert!(
        s.core(0).is_some_and(|c| c.is_ready()),
        "a lone node is ready once joined"
    );
    let mut s = quiet_sim(3);
    s.restart_node(2);
    let err = deploy(&mut s, 2, "app", &bytes(3, 16)).expect_err("not joined yet");
    assert_eq!(err, FarmError::NotReady);
    s.advance(1_000);
    deploy(&mut s, 2, "app", &bytes(3, 16)).expect("ready now");
}
