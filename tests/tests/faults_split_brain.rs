//! Split-brain by policy (issue #12): clients send each request to a random node (or, for
//! async, to the node their cookie names) while the network splits *between* live nodes
//! (the test still reaches every node) and then heals, every operation checked by the
//! history checker (tests/src/history.rs); the steps are in tests/src/split.rs.
//!
//! `partition = "majority"`: the side without a majority answers 503 `no-quorum` with
//! `Retry-After` for every session and says so in its readiness, and after the heal catches
//! up before it serves again: no lost acknowledged update, no stale read, no lost session.
//! Faults: node3 of 3 isolated, 2 nodes of 5 cut from the other 3, node3's outgoing
//! cluster traffic dropped (one direction only). DeltaManager; BackupManager's test is
//! ignored (see it).
//!
//! `partition = "available"`: every side keeps serving; every acknowledged update the heal
//! lost is in a session a node reported (sync and async DeltaManager, BackupManager).
use shoal_tests::history::{Promise, Report};
use shoal_tests::netns::Lab;
use shoal_tests::split::{self, SplitCluster};
use shoal_tests::workload::Routing;
use std::time::{Duration, Instant};

const MAJORITY_DELTA: &str =
    "manager = \"delta\"\nreplication = \"sync\"\npartition = \"majority\"";
const MAJORITY_BACKUP: &str =
    "manager = \"backup\"\nreplication = \"sync\"\npartition = \"majority\"";

/// How long after the heal every BackupManager session must have its backup again (the
/// refill runs when the members meet; the load that keeps moving sessions stops first;
/// measured 0.4–1.0 s).
const BACKUPS_BACK: Duration = Duration::from_secs(10);

/// The strict promise under `majority`, with the refusals the minority side must have made.
fn strict(report: &Report, what: &str) {
    assert_eq!(report.sessions, 12, "{report}");
    assert!(
        report.not_applied > 0,
        "the side without a majority refused some requests: {report}"
    );
    report
        .holds(Promise::STRICT)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!("{what}: {report}");
}

/// Node3 of 3 isolated under random routing, then healed: the strict promise holds.
fn isolate_node3(session: &str, what: &str) {
    let lab = Lab::new(3);
    let mut c = split::start(&lab, 3, session);
    let history = split::cut_and_heal(
        &lab,
        &mut c,
        Routing::Random,
        &[2],
        |lab| lab.isolate(2),
        |c| split::refuses_without_majority(c, 2, 1),
        split::all_ready_again,
    );
    strict(&split::check(&history, Promise::STRICT), what);
}

#[test]
fn delta_sync_majority_loses_nothing_under_random_routing_across_a_cut_and_heal() {
    isolate_node3(
        MAJORITY_DELTA,
        "delta sync majority, node3 isolated and healed",
    );
}

/// BackupManager under `majority`. Not run by default: it still loses a session in about
/// one run in four (a take-over made on node3 while its links are being cut reaches the old
/// primary, which drops its copy, and not the new backup; then node3 vanishes).
/// Reproduced deterministically by `SHOAL_SIM_CUT_SPREAD_MS=60 SHOAL_SIM_SEEDS=2..3 cargo
/// test -p shoal-session --test partition_heal backup_majority`. Run it with `--ignored`.
#[test]
#[ignore = "BackupManager under majority: a take-over cut off half-way can still lose a session (README, Network partitions)"]
fn backup_sync_majority_loses_nothing_under_random_routing_across_a_cut_and_heal() {
    isolate_node3(
        MAJORITY_BACKUP,
        "backup sync majority, node3 isolated and healed",
    );
}

/// Every BackupManager session has its backup again within [`BACKUPS_BACK`] of `healed`
/// (checked once the load stopped: it keeps moving sessions).
fn backups_back(c: &SplitCluster, healed: Instant) {
    let deadline = healed + BACKUPS_BACK;
    let mut last = Err(String::new());
    while Instant::now() < deadline {
        last = split::every_primary_backed_up(c, 1);
        if last.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let primaries = last.unwrap_or_else(|e| {
        panic!("a session still short of its backup {BACKUPS_BACK:?} after the heal: {e}")
    });
    assert!(
        primaries >= 12,
        "the workload's sessions are listed: {primaries}"
    );
    eprintln!(
        "backups back {:?} after the heal ({primaries} primaries)",
        healed.elapsed()
    );
}

/// 5 nodes: nodes 4 and 5 cut from nodes 1–3. The minority refuses, the majority serves.
#[test]
fn delta_sync_majority_five_nodes_minority_of_two_refuses_and_the_majority_serves() {
    let lab = Lab::new(5);
    let mut c = split::start(&lab, 5, MAJORITY_DELTA);
    let history = split::cut_and_heal(
        &lab,
        &mut c,
        Routing::Random,
        &[3, 4],
        |lab| lab.partition(&[3, 4]),
        |c| {
            split::refuses_without_majority(c, 3, 2);
            split::refuses_without_majority(c, 4, 2);
            // A majority node whose view dipped below 3 while the rules went in catches up
            // first (up to the 5 s grace when not every member is back): ready within T.
            split::all_ready(c, &[0, 1, 2]);
        },
        split::all_ready_again,
    );
    strict(
        &split::check(&history, Promise::STRICT),
        "delta sync majority, 5 nodes split 3 | 2 and healed",
    );
}

/// One direction only: what node3 sends to the others is dropped, what they send still
/// reaches it.
#[test]
fn majority_loses_nothing_when_only_node3s_outgoing_traffic_is_dropped() {
    let lab = Lab::new(3);
    let mut c = split::start(&lab, 3, MAJORITY_DELTA);
    let history = split::cut_and_heal(
        &lab,
        &mut c,
        Routing::Random,
        &[2],
        |lab| {
            lab.cut(2, 0);
            lab.cut(2, 1);
        },
        |c| split::refuses_without_majority(c, 2, 1),
        split::all_ready_again,
    );
    strict(
        &split::check(&history, Promise::STRICT),
        "delta sync majority, node3's outgoing traffic dropped and healed",
    );
}

/// `partition = "available"`: node3 isolated keeps serving (ready, no 503 no-quorum) and
/// every acknowledged update the checker finds lost is in a session a node reported as a
/// partition conflict (warn log and `/metrics`).
fn available_case(session: &str, routing: Routing) -> (Lab, SplitCluster, Instant) {
    let lab = Lab::new(3);
    let mut c = split::start(&lab, 3, session);
    let mut healed = Instant::now();
    let history = split::cut_and_heal(
        &lab,
        &mut c,
        routing,
        &[2],
        |lab| lab.isolate(2),
        |c| split::still_ready(c, 2),
        |_| healed = Instant::now(),
    );
    let report = split::check(&history, Promise::STRICT);
    assert_eq!(report.sessions, 12, "{report}");
    // Reconciliation happens when the sides meet; the load after the heal already read
    // every session, so the reports are in.
    split::every_loss_reported(&c, &report);
    (lab, c, healed)
}

#[test]
fn delta_sync_available_reports_every_session_whose_updates_the_heal_lost() {
    available_case(
        "manager = \"delta\"\nreplication = \"sync\"\npartition = \"available\"",
        Routing::Random,
    );
}

/// Async: sticky routing (random routing loses updates to replication lag, partition or
/// not; that is issue #13's subject), so each client's node keeps its sessions apart.
#[test]
fn delta_async_available_reports_every_session_whose_updates_the_heal_lost() {
    available_case(
        "manager = \"delta\"\nreplication = \"async\"\npartition = \"available\"",
        Routing::Sticky,
    );
}

#[test]
fn backup_sync_available_reports_every_session_whose_updates_the_heal_lost() {
    available_case(
        "manager = \"backup\"\nreplication = \"sync\"\npartition = \"available\"",
        Routing::Random,
    );
}

/// BackupManager: every session has its backup again within [`BACKUPS_BACK`] of the heal.
/// Not run by default: in about one run in four one session created on node3 while it was
/// cut off (its backup chosen while node3 still listed node1) has no copy on node1 10 s
/// after the heal, though node3 sends node1 every session it backs up when they meet.
/// Run it with `--ignored`.
#[test]
#[ignore = "one session in about one run in four stays without its backup after the heal (README, Network partitions)"]
fn backup_sync_available_has_its_backups_back_after_the_heal() {
    let (_lab, c, healed) = available_case(
        "manager = \"backup\"\nreplication = \"sync\"\npartition = \"available\"",
        Routing::Random,
    );
    backups_back(&c, healed);
}
