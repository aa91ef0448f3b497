//! Seeded simulations of a farm (see `sim/`): many seeds per scenario, invariants checked
//! after every event, convergence checked after a quiet period.
mod sim;

use sim::net::Chaos;
use sim::{Report, Sim, SimConfig};

const SEEDS: u64 = 40;

/// `SIM_SEED=n SIM_TRACE=1 cargo test -p shoal-farm --test farm_sim one_seed -- --nocapture`
/// replays one seed of the scenario its range names (1000s rough, 2000s kills, 3000s
/// partitions, 4000s corrupt, else calm).
#[test]
fn one_seed() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) else {
        return;
    };
    let r = Sim::new(scenario(seed)).run();
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
}

fn scenario(seed: u64) -> SimConfig {
    let base = SimConfig::new(seed);
    match seed / 1000 {
        1 => SimConfig {
            nodes: 4,
            chaos: Chaos::rough(),
            ..base
        },
        2 => SimConfig {
            nodes: 5,
            chaos: Chaos::rough(),
            kills: true,
            joiners: 1,
            ..base
        },
        3 => SimConfig {
            nodes: 5,
            chaos: Chaos::rough(),
            partitions: true,
            kills: true,
            ..base
        },
        4 => SimConfig {
            nodes: 3,
            chaos: Chaos {
                corrupt: 0.002,
                ..Chaos::rough()
            },
            bad_deploys: false,
            ..base
        },
        _ => base,
    }
}

fn run_seeds(name: &str, make: impl Fn(u64) -> SimConfig) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut violations = Vec::new();
    for seed in 0..SEEDS {
        let r = Sim::new(make(seed)).run();
        violations.extend(r.violations.iter().cloned());
        reports.push(r);
    }
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    eprintln!(
        "{name}: {SEEDS} seeds, {} activated, {} aborted, {} bad refused, {} kills, {} partitions, {} joiners, {} frames, {} decode errors",
        sum(|r| r.activated),
        sum(|r| r.aborted),
        sum(|r| r.bad_refused),
        sum(|r| r.kills),
        sum(|r| r.partitions),
        sum(|r| r.joiners),
        sum(|r| r.frames),
        sum(|r| r.decode_errors),
    );
    assert!(
        violations.is_empty(),
        "{name}: {} violations, first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        sum(|r| r.activated) > 0,
        "{name}: nothing was ever activated"
    );
    reports
}

#[test]
fn calm_network_three_nodes() {
    run_seeds("calm", scenario);
}

#[test]
fn rough_network_drops_duplicates_reorders() {
    run_seeds("rough", |seed| scenario(1000 + seed));
}

#[test]
fn kills_restarts_and_late_joiners() {
    let r = run_seeds("kills", |seed| scenario(2000 + seed));
    assert!(r.iter().map(|r| r.kills).sum::<u64>() > 0);
}

#[test]
fn partitions_with_a_still_minority() {
    let r = run_seeds("partitions", |seed| scenario(3000 + seed));
    assert!(r.iter().map(|r| r.partitions).sum::<u64>() > 0);
}

#[test]
fn corrupted_frames_never_activate() {
    run_seeds("corrupt", |seed| scenario(4000 + seed));
}

/// Pacing (`transfer_rate`) on every node, with kills, restarts, late joiners and a rough
/// network: transfers are slower, every invariant still holds and every node converges.
#[test]
fn paced_transfers_keep_every_invariant() {
    run_seeds("paced", |seed| SimConfig {
        transfer_rate: Some(16 << 10),
        ..scenario(2000 + seed)
    });
}
