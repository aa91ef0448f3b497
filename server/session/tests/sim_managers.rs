//! Deterministic simulations of the managers (see `sim/mod.rs`), over several seeds.
mod sim;

use shoal_session::{ManagerKind, ReplicationMode};
use sim::{Report, Sim, SimConfig};

fn base(seed: u64, kind: ManagerKind, mode: ReplicationMode) -> SimConfig {
    SimConfig {
        seed,
        kind,
        mode,
        nodes: 4,
        clients: 16,
        duration_ms: 15_000,
        delay_ms: (1, 15),
        drop_p: 0.0,
        kills: false,
        partitions: false,
        isolations: false,
        majority: false,
        random_routing: false,
        fifo: false,
    }
}

fn run(cfg: SimConfig) -> Report {
    let label = format!("{:?}/{:?} seed {}", cfg.kind, cfg.mode, cfg.seed);
    let r = Sim::new(cfg).run();
    println!(
        "{label}: requests {} acked {} failed {} kills {} partitions {} conflicts {} wrong {}",
        r.requests, r.acked, r.failed, r.kills, r.partitions, r.conflicts, r.wrong_sessions
    );
    assert!(
        r.violations.is_empty(),
        "{label}: {:#?}",
        &r.violations[..r.violations.len().min(10)]
    );
    assert!(
        r.acked > 500,
        "{label}: too little work done ({} acked)",
        r.acked
    );
    r
}

#[test]
fn async_without_failures_converges_to_zero_wrong_sessions() {
    for kind in [ManagerKind::Delta, ManagerKind::Backup] {
        for seed in 1..=4 {
            let r = run(base(seed, kind, ReplicationMode::Async));
            assert_eq!(r.wrong_sessions, 0, "{kind:?} seed {seed}");
            assert_eq!(r.failed, 0);
        }
    }
}

#[test]
fn sync_without_failures_acknowledges_everything() {
    for kind in [ManagerKind::Delta, ManagerKind::Backup] {
        let r = run(base(7, kind, ReplicationMode::Sync));
        assert_eq!(r.wrong_sessions, 0, "{kind:?}");
        assert_eq!(r.failed, 0, "{kind:?}");
    }
}

/// Seeds 10..14; `SHOAL_SIM_SEEDS=100..200` explores more.
#[test]
fn sync_with_kills_restarts_and_partitions_loses_no_acknowledged_write() {
    let kinds = match std::env::var("SHOAL_SIM_KIND").as_deref() {
        Ok("backup") => vec![ManagerKind::Backup],
        Ok("delta") => vec![ManagerKind::Delta],
        _ => vec![ManagerKind::Delta, ManagerKind::Backup],
    };
    for kind in kinds {
        for seed in sim::seeds(10..14) {
            let cfg = SimConfig {
                kills: true,
                partitions: true,
                drop_p: 0.001,
                ..base(seed, kind, ReplicationMode::Sync)
            };
            let r = run(cfg);
            assert!(r.kills + r.partitions >= 2, "chaos did not happen");
        }
    }
}

#[test]
fn async_with_kills_never_goes_backwards() {
    for kind in [ManagerKind::Delta, ManagerKind::Backup] {
        let cfg = SimConfig {
            kills: true,
            ..base(21, kind, ReplicationMode::Async)
        };
        let r = run(cfg);
        assert!(r.kills >= 2);
    }
}
