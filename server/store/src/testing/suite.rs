//! The conformance suite: one function per behaviour of [`Store`], and [`run_all`] to run
//! them all against one store. Every implementation (and the in-memory twin) runs it, so
//! they cannot drift apart. Each run works in apps of its own (`<tag>/…`), so a suite can run
//! against a server other tests use.
//!
//! Times are an hour in the future: Redis expires records by its own clock, and the suite's
//! records must outlive the run there while being "expired" for the `now_ms` it passes.
use crate::{Cas, Expect, Store, StoreError, StoredSession};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Run every behaviour against `store` (after `check`, twice: it must be idempotent).
pub async fn run_all(store: Arc<dyn Store>) {
    let s = store.as_ref();
    s.check().await.unwrap_or_else(|e| panic!("check: {e}"));
    s.check()
        .await
        .unwrap_or_else(|e| panic!("second check: {e}"));
    let tag = format!("suite{:08x}", rand::random::<u32>());
    round_trip(s, &format!("/{tag}/rt")).await;
    insert_over_existing_conflicts(s, &format!("/{tag}/ins")).await;
    stale_version_conflicts(s, &format!("/{tag}/stale")).await;
    version_must_move_forward(s, &format!("/{tag}/fwd")).await;
    remove_never_deletes_newer(s, &format!("/{tag}/rm")).await;
    touch_moves_last_access_only(s, &format!("/{tag}/touch")).await;
    keys_and_count(s, &format!("/{tag}/keys"), &format!("/{tag}/keys2")).await;
    expired_lists_only_expired_of_app(s, &format!("/{tag}/exp"), &format!("/{tag}/exp2")).await;
    apps_are_isolated(s, &format!("/{tag}/iso"), &format!("/{tag}/iso2")).await;
    ids_are_case_sensitive(s, &format!("/{tag}/case")).await;
    large_data(s, &format!("/{tag}/large")).await;
    bad_keys_are_refused(s, &format!("/{tag}/bad")).await;
    concurrent_cas_one_winner(store.clone(), &format!("/{tag}/cas")).await;
    concurrent_insert_one_winner(store.clone(), &format!("/{tag}/cins")).await;
}

/// Epoch milliseconds an hour from now: the suite's "present".
pub fn base_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now + 3_600_000
}

/// A record with every field set to something that shows if it is dropped.
pub fn session(app: &str, id: &str, version: u64) -> StoredSession {
    StoredSession {
        id: id.into(),
        app: app.into(),
        version,
        valid: true,
        max_inactive_s: 1800,
        last_access_ms: base_ms(),
        owner: Some("node-a".into()),
        data: format!("data of {id} v{version}").into_bytes(),
    }
}

async fn save(s: &dyn Store, rec: &StoredSession, expect: Expect) -> Cas {
    s.save(rec, expect)
        .await
        .unwrap_or_else(|e| panic!("{}: save {}: {e}", s.describe(), rec.id))
}

async fn load(s: &dyn Store, app: &str, id: &str) -> Option<StoredSession> {
    s.load(app, id)
        .await
        .unwrap_or_else(|e| panic!("{}: load {id}: {e}", s.describe()))
}

/// A saved record comes back field for field, byte for byte; `version` reads the version.
pub async fn round_trip(s: &dyn Store, app: &str) {
    let mut rec = session(app, "RT1", 1);
    rec.data = (0..=255u8).chain((0..=255u8).rev()).collect();
    assert_eq!(
        save(s, &rec, Expect::Absent).await,
        Cas::Done,
        "{}",
        s.describe()
    );
    assert_eq!(
        load(s, app, "RT1").await.as_ref(),
        Some(&rec),
        "{}",
        s.describe()
    );
    assert_eq!(s.version(app, "RT1").await.ok().flatten(), Some(1));
    assert_eq!(load(s, app, "NONE").await, None);
    assert_eq!(s.version(app, "NONE").await.ok().flatten(), None);
    // No owner, invalid, never expires, empty data.
    let odd = StoredSession {
        owner: None,
        valid: false,
        max_inactive_s: -1,
        data: Vec::new(),
        ..session(app, "RT2", 3)
    };
    assert_eq!(save(s, &odd, Expect::Absent).await, Cas::Done);
    assert_eq!(load(s, app, "RT2").await, Some(odd), "{}", s.describe());
}

/// An insert over an existing record is a conflict naming the stored version.
pub async fn insert_over_existing_conflicts(s: &dyn Store, app: &str) {
    let first = session(app, "I1", 4);
    assert_eq!(save(s, &first, Expect::Absent).await, Cas::Done);
    let mut second = session(app, "I1", 9);
    second.data = b"intruder".to_vec();
    assert_eq!(
        save(s, &second, Expect::Absent).await,
        Cas::Conflict { current: Some(4) },
        "{}",
        s.describe()
    );
    assert_eq!(
        load(s, app, "I1").await,
        Some(first),
        "{}: the loser wrote",
        s.describe()
    );
}

/// An update expecting an old version, or a record that is not there, conflicts.
pub async fn stale_version_conflicts(s: &dyn Store, app: &str) {
    assert_eq!(
        save(s, &session(app, "S1", 1), Expect::Absent).await,
        Cas::Done
    );
    let v2 = session(app, "S1", 2);
    assert_eq!(save(s, &v2, Expect::Version(1)).await, Cas::Done);
    assert_eq!(
        save(s, &session(app, "S1", 3), Expect::Version(1)).await,
        Cas::Conflict { current: Some(2) },
        "{}: a stale copy overwrote a newer one",
        s.describe()
    );
    assert_eq!(load(s, app, "S1").await, Some(v2));
    assert_eq!(
        save(s, &session(app, "S9", 6), Expect::Version(5)).await,
        Cas::Conflict { current: None },
        "{}",
        s.describe()
    );
    assert_eq!(
        load(s, app, "S9").await,
        None,
        "{}: an update inserted",
        s.describe()
    );
}

/// A write that does not bump the version is the caller's error, and writes nothing.
pub async fn version_must_move_forward(s: &dyn Store, app: &str) {
    let r = s.save(&session(app, "F1", 0), Expect::Absent).await;
    assert!(
        matches!(r, Err(StoreError::InvalidRecord { .. })),
        "{}: {r:?}",
        s.describe()
    );
    assert_eq!(
        save(s, &session(app, "F1", 5), Expect::Absent).await,
        Cas::Done
    );
    let r = s.save(&session(app, "F1", 5), Expect::Version(5)).await;
    assert!(
        matches!(r, Err(StoreError::InvalidRecord { .. })),
        "{}: {r:?}",
        s.describe()
    );
    assert_eq!(s.version(app, "F1").await.ok().flatten(), Some(5));
}

/// A remove names the version it expired; a newer record survives it.
pub async fn remove_never_deletes_newer(s: &dyn Store, app: &str) {
    assert_eq!(
        save(s, &session(app, "R1", 1), Expect::Absent).await,
        Cas::Done
    );
    assert_eq!(
        save(s, &session(app, "R1", 2), Expect::Version(1)).await,
        Cas::Done
    );
    let r = s.remove(app, "R1", 1).await.ok();
    assert_eq!(
        r,
        Some(Cas::Conflict { current: Some(2) }),
        "{}",
        s.describe()
    );
    assert_eq!(
        s.version(app, "R1").await.ok().flatten(),
        Some(2),
        "{}: newer row deleted",
        s.describe()
    );
    assert_eq!(s.remove(app, "R1", 2).await.ok(), Some(Cas::Done));
    assert_eq!(load(s, app, "R1").await, None);
    assert_eq!(
        s.remove(app, "R1", 2).await.ok(),
        Some(Cas::Conflict { current: None })
    );
}

/// Touch moves the last access forward at the named version, and nothing else.
pub async fn touch_moves_last_access_only(s: &dyn Store, app: &str) {
    let rec = session(app, "T1", 3);
    assert_eq!(save(s, &rec, Expect::Absent).await, Cas::Done);
    let later = rec.last_access_ms + 5_000;
    assert_eq!(
        s.touch(app, "T1", 2, later).await.ok(),
        Some(Cas::Conflict { current: Some(3) }),
        "{}",
        s.describe()
    );
    assert_eq!(
        s.touch(app, "T1", 3, later).await.ok(),
        Some(Cas::Done),
        "{}",
        s.describe()
    );
    let got = load(s, app, "T1").await;
    assert_eq!(
        got,
        Some(StoredSession {
            last_access_ms: later,
            ..rec.clone()
        }),
        "{}",
        s.describe()
    );
    // Never backwards; an unchanged value still counts as done.
    assert_eq!(
        s.touch(app, "T1", 3, rec.last_access_ms).await.ok(),
        Some(Cas::Done)
    );
    assert_eq!(s.touch(app, "T1", 3, later).await.ok(), Some(Cas::Done));
    assert_eq!(
        load(s, app, "T1").await.map(|r| r.last_access_ms),
        Some(later)
    );
    assert_eq!(
        s.touch(app, "T9", 1, later).await.ok(),
        Some(Cas::Conflict { current: None })
    );
}

/// `keys` and `count` see exactly the app's records.
pub async fn keys_and_count(s: &dyn Store, app: &str, other: &str) {
    for id in ["K1", "K2", "K3"] {
        assert_eq!(
            save(s, &session(app, id, 1), Expect::Absent).await,
            Cas::Done
        );
    }
    assert_eq!(
        save(s, &session(other, "K4", 1), Expect::Absent).await,
        Cas::Done
    );
    let mut keys = s.keys(app).await.unwrap_or_else(|e| panic!("keys: {e}"));
    keys.sort();
    assert_eq!(keys, ["K1", "K2", "K3"], "{}", s.describe());
    assert_eq!(s.count(app).await.ok(), Some(3), "{}", s.describe());
    assert_eq!(s.count(other).await.ok(), Some(1));
    assert_eq!(s.remove(app, "K2", 1).await.ok(), Some(Cas::Done));
    assert_eq!(s.count(app).await.ok(), Some(2), "{}", s.describe());
    let empty = format!("{app}-empty");
    assert_eq!(s.keys(&empty).await.ok(), Some(Vec::new()));
    assert_eq!(s.count(&empty).await.ok(), Some(0));
}

/// `expired` lists the app's records past their expiry, oldest first, with versions; not
/// the fresh ones, not those that never expire, not another app's.
pub async fn expired_lists_only_expired_of_app(s: &dyn Store, app: &str, other: &str) {
    let now = base_ms();
    let at = |id: &str, version: u64, app: &str, last: i64, max_inactive_s: i64| StoredSession {
        last_access_ms: last,
        max_inactive_s,
        ..session(app, id, version)
    };
    for rec in [
        at("OLD", 2, app, now - 20_000, 5),
        at("OLDER", 7, app, now - 30_000, 5),
        at("EDGE", 1, app, now - 5_000, 5), // expires exactly now: not yet expired
        at("FRESH", 1, app, now, 5),
        at("NEVER", 1, app, now - 10_000_000, 0),
        at("NEG", 1, app, now - 10_000_000, -1),
        at("THEIRS", 1, other, now - 30_000, 5),
    ] {
        assert_eq!(save(s, &rec, Expect::Absent).await, Cas::Done);
    }
    let got = s
        .expired(app, now, 100)
        .await
        .unwrap_or_else(|e| panic!("expired: {e}"));
    assert_eq!(
        got,
        [("OLDER".to_string(), 7), ("OLD".to_string(), 2)],
        "{}",
        s.describe()
    );
    let got = s.expired(app, now, 1).await.ok();
    assert_eq!(
        got,
        Some(vec![("OLDER".to_string(), 7)]),
        "{}: limit",
        s.describe()
    );
    // A touch (the session is in use elsewhere) takes it off the list.
    assert_eq!(s.touch(app, "OLDER", 7, now).await.ok(), Some(Cas::Done));
    let got = s.expired(app, now, 100).await.ok();
    assert_eq!(
        got,
        Some(vec![("OLD".to_string(), 2)]),
        "{}: after touch",
        s.describe()
    );
    // Later, FRESH and EDGE have expired too; NEVER and NEG never do.
    let mut later: Vec<String> = s
        .expired(app, now + 60_000, 100)
        .await
        .unwrap_or_else(|e| panic!("expired: {e}"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    later.sort();
    assert_eq!(later, ["EDGE", "FRESH", "OLD", "OLDER"], "{}", s.describe());
}

/// The same id in two apps is two records.
pub async fn apps_are_isolated(s: &dyn Store, app: &str, other: &str) {
    let mut a = session(app, "SAME", 1);
    a.data = b"in a".to_vec();
    let mut b = session(other, "SAME", 5);
    b.data = b"in b".to_vec();
    assert_eq!(save(s, &a, Expect::Absent).await, Cas::Done);
    assert_eq!(
        save(s, &b, Expect::Absent).await,
        Cas::Done,
        "{}: apps share ids",
        s.describe()
    );
    assert_eq!(load(s, app, "SAME").await, Some(a));
    assert_eq!(load(s, other, "SAME").await, Some(b.clone()));
    assert_eq!(s.remove(app, "SAME", 1).await.ok(), Some(Cas::Done));
    assert_eq!(load(s, other, "SAME").await, Some(b), "{}", s.describe());
}

/// `abc` and `ABC` are two sessions (MySQL's default collation would make them one).
pub async fn ids_are_case_sensitive(s: &dyn Store, app: &str) {
    assert_eq!(
        save(s, &session(app, "abc", 1), Expect::Absent).await,
        Cas::Done
    );
    assert_eq!(
        save(s, &session(app, "ABC", 2), Expect::Absent).await,
        Cas::Done,
        "{}",
        s.describe()
    );
    assert_eq!(s.version(app, "abc").await.ok().flatten(), Some(1));
    assert_eq!(s.version(app, "ABC").await.ok().flatten(), Some(2));
}

/// 1 MiB of data round-trips, and is replaced by a small value.
pub async fn large_data(s: &dyn Store, app: &str) {
    let mut rec = session(app, "BIG", 1);
    rec.data = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(save(s, &rec, Expect::Absent).await, Cas::Done);
    let got = load(s, app, "BIG").await;
    assert!(
        got.as_ref() == Some(&rec),
        "{}: 1 MiB did not round-trip",
        s.describe()
    );
    let small = session(app, "BIG", 2);
    assert_eq!(save(s, &small, Expect::Version(1)).await, Cas::Done);
    assert_eq!(load(s, app, "BIG").await, Some(small));
}

/// Ids that could name a path, a key separator or nothing are refused by every operation.
pub async fn bad_keys_are_refused(s: &dyn Store, app: &str) {
    for bad in ["../x", "a/b", "", "a\0b", "..", "a:b", "x y"] {
        let invalid = |r: Result<(), StoreError>| matches!(r, Err(StoreError::InvalidKey { .. }));
        assert!(
            invalid(s.load(app, bad).await.map(drop)),
            "{}: load {bad:?}",
            s.describe()
        );
        assert!(
            invalid(s.version(app, bad).await.map(drop)),
            "{}: version {bad:?}",
            s.describe()
        );
        let rec = StoredSession {
            id: bad.into(),
            ..session(app, "X", 1)
        };
        assert!(
            invalid(s.save(&rec, Expect::Absent).await.map(drop)),
            "{}: save {bad:?}",
            s.describe()
        );
        assert!(
            invalid(s.remove(app, bad, 1).await.map(drop)),
            "{}: remove {bad:?}",
            s.describe()
        );
        assert!(
            invalid(s.touch(app, bad, 1, 0).await.map(drop)),
            "{}: touch {bad:?}",
            s.describe()
        );
    }
    let r = s.keys("bad\napp").await;
    assert!(
        matches!(r, Err(StoreError::InvalidKey { .. })),
        "{}: {r:?}",
        s.describe()
    );
    assert_eq!(
        s.keys(app).await.ok(),
        Some(Vec::new()),
        "{}: a bad key was stored",
        s.describe()
    );
}

/// 8 tasks race to write each next version of one key: exactly one wins every round, the
/// losers see the winner's version, and the stored data is the winner's.
pub async fn concurrent_cas_one_winner(store: Arc<dyn Store>, app: &str) {
    const TASKS: usize = 8;
    let s = store.as_ref();
    assert_eq!(
        save(s, &session(app, "C1", 1), Expect::Absent).await,
        Cas::Done
    );
    for v in 2..=6u64 {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (store, barrier, app) = (store.clone(), barrier.clone(), app.to_owned());
                tokio::spawn(async move {
                    let mut rec = session(&app, "C1", v);
                    rec.data = format!("task {t} wrote v{v}").into_bytes();
                    barrier.wait().await;
                    (t, store.save(&rec, Expect::Version(v - 1)).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (t, r) = task.await.unwrap_or_else(|e| panic!("task: {e}"));
            match r {
                Ok(Cas::Done) => winners.push(t),
                Ok(Cas::Conflict { current }) => {
                    assert_eq!(
                        current,
                        Some(v),
                        "{}: loser of v{v} saw {current:?}",
                        s.describe()
                    )
                }
                Err(e) => panic!("{}: v{v} task {t}: {e}", s.describe()),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "{}: v{v} winners {winners:?}",
            s.describe()
        );
        let data = format!("task {} wrote v{v}", winners[0]).into_bytes();
        let got = load(s, app, "C1").await.map(|r| (r.version, r.data));
        assert_eq!(got, Some((v, data)), "{}", s.describe());
    }
}

/// 8 tasks insert one new id at once: exactly one insert wins.
pub async fn concurrent_insert_one_winner(store: Arc<dyn Store>, app: &str) {
    const TASKS: usize = 8;
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (store, barrier, app) = (store.clone(), barrier.clone(), app.to_owned());
            tokio::spawn(async move {
                let rec = session(&app, "NEW", t as u64 + 1);
                barrier.wait().await;
                store.save(&rec, Expect::Absent).await
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        match task.await.unwrap_or_else(|e| panic!("task: {e}")) {
            Ok(Cas::Done) => done += 1,
            Ok(Cas::Conflict { current: Some(_) }) => {}
            other => panic!("{}: concurrent insert: {other:?}", store.describe()),
        }
    }
    assert_eq!(done, 1, "{}: {done} inserts won", store.describe());
}

/// Several store instances over one place (two nodes' stores on one SQLite file, one
/// directory, one database or one Redis), each with `tasks` tasks incrementing one counter
/// `rounds` times by load + compare-and-set, retrying on conflict: no acknowledged write is
/// lost (every acknowledged version is distinct, and the final version counts them all).
/// Returns the acknowledged versions.
pub async fn shared_cas_no_lost_write(
    stores: &[Arc<dyn Store>],
    app: &str,
    tasks: usize,
    rounds: usize,
) -> Vec<u64> {
    for s in stores {
        s.check()
            .await
            .unwrap_or_else(|e| panic!("{}: check: {e}", s.describe()));
    }
    let mut handles = Vec::new();
    for store in stores {
        for _ in 0..tasks {
            let (store, app) = (store.clone(), app.to_owned());
            handles.push(tokio::spawn(async move {
                increment(store.as_ref(), &app, "SHARED", rounds).await
            }));
        }
    }
    let mut acked = Vec::new();
    for h in handles {
        acked.extend(h.await.unwrap_or_else(|e| panic!("task: {e}")));
    }
    let total = (stores.len() * tasks * rounds) as u64;
    check_increments(stores[0].as_ref(), app, "SHARED", &acked, total).await;
    acked
}

/// `rounds` increments of the counter at (app, id) through `s`, each a load then a
/// compare-and-set on the version loaded, retried on conflict. The acknowledged versions.
pub async fn increment(s: &dyn Store, app: &str, id: &str, rounds: usize) -> Vec<u64> {
    let mut acked = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(
                attempts < 10_000,
                "{}: no increment of {id} after 10,000 attempts",
                s.describe()
            );
            let cur = load(s, app, id).await.map(|r| r.version);
            let next = cur.unwrap_or(0) + 1;
            let mut rec = session(app, id, next);
            rec.data = format!("count={next}").into_bytes();
            let expect = cur.map_or(Expect::Absent, Expect::Version);
            if save(s, &rec, expect).await == Cas::Done {
                acked.push(next);
                break;
            }
        }
    }
    acked
}

/// After concurrent [`increment`]s: `acked` holds `total` distinct versions and the stored
/// counter is at `total` with its data.
pub async fn check_increments(s: &dyn Store, app: &str, id: &str, acked: &[u64], total: u64) {
    let mut sorted = acked.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        acked.len(),
        "{}: two writers were both told they wrote the same version (a lost write)",
        s.describe()
    );
    assert_eq!(acked.len() as u64, total, "{}", s.describe());
    let got = load(s, app, id).await.map(|r| (r.version, r.data));
    assert_eq!(
        got,
        Some((total, format!("count={total}").into_bytes())),
        "{}: the counter lost increments",
        s.describe()
    );
}
