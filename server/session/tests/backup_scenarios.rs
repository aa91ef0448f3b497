//! BackupManager scenarios over the FIFO bus: proxies, fetch, promotion, backup re-creation.
mod bus;

use bus::{set, Bus};
use shoal_session::{AttrValue, ManagerConfig, ManagerKind, SessionId};

#[test]
fn backup_manager_keeps_one_backup_and_proxies_elsewhere() {
    let mut bus = Bus::new(ManagerKind::Backup, 3, ManagerConfig::default());
    let s = bus.request(1, None, set("a", "1"));
    assert_eq!(bus.holders(&s).len(), 2, "primary + 1 backup");
    assert!(bus.holders(&s).contains(&1));
    let proxy = (1..=3).find(|n| !bus.holders(&s).contains(n)).unwrap_or(0);
    assert_eq!(bus.m(proxy).stats().proxy_sessions, 1);

    // A request on the proxy node fetches the value and becomes primary.
    bus.request(proxy, Some(&s), set("a", "2"));
    let h = bus.holders(&s);
    assert!(
        h.contains(&proxy) && h.len() == 2,
        "proxy became primary with one backup: {h:?}"
    );
    for n in h {
        assert_eq!(bus.value(n, &s, "a"), Some(AttrValue::Json("2".into())));
    }
    assert!(bus.m(proxy).stats().fetches >= 1);
    assert_eq!(bus.m(proxy).stats().promotions, 1);
}

#[test]
fn backup_manager_promotes_orphans_and_recreates_lost_backups() {
    let mut bus = Bus::new(ManagerKind::Backup, 4, ManagerConfig::default());
    let sessions: Vec<SessionId> = (0..40)
        .map(|i| bus.request(1, None, set("k", &i.to_string())))
        .collect();
    // Backups spread over nodes 2..4.
    let mut per = [0usize; 5];
    for s in &sessions {
        for h in bus.holders(s) {
            per[h as usize] += 1;
        }
    }
    assert!(
        per[2] > 5 && per[3] > 5 && per[4] > 5,
        "uneven backups {per:?}"
    );

    bus.kill(1); // every session lost its primary
    for (i, s) in sessions.iter().enumerate() {
        let h = bus.holders(s);
        assert_eq!(h.len(), 2, "orphan promoted and a new backup made: {h:?}");
        for n in h {
            assert_eq!(bus.value(n, s, "k"), Some(AttrValue::Json(i.to_string())));
        }
    }
    let promoted: u64 = (2..=4).map(|n| bus.m(n).stats().promotions).sum();
    assert_eq!(promoted, 40);

    // Losing a backup: its primaries make new ones.
    bus.kill(2);
    for s in &sessions {
        assert_eq!(bus.holders(s).len(), 2, "backup re-created");
    }
    let recreated: u64 = (3..=4).map(|n| bus.m(n).stats().backups_recreated).sum();
    assert!(recreated > 0);
}

#[test]
fn backup_joining_node_learns_every_location_before_it_is_ready() {
    let mut bus = Bus::new(ManagerKind::Backup, 2, ManagerConfig::default());
    let sessions: Vec<SessionId> = (0..30)
        .map(|i| bus.request(1 + (i % 2) as u8, None, set("k", "v")))
        .collect();
    let now = bus.now;
    let out = start_node3(&mut bus);
    bus.send(bus::id(3), out);
    for m in [1u8, 2] {
        let out = bus.m(m).member_added(bus::id(3), now);
        bus.send(bus::id(m), out);
    }
    bus.pump();
    assert!(bus.m(3).is_ready());
    assert_eq!(bus.m(3).stats().proxy_sessions, 30);
    // Any of them can be served there (fetched, then owned by node3).
    bus.request(3, Some(&sessions[7]), set("k", "w"));
    assert!(bus.holders(&sessions[7]).contains(&3));
    assert_eq!(
        bus.value(3, &sessions[7], "k"),
        Some(AttrValue::Json("w".into()))
    );
}

/// A joiner whose first GET_ALL_SESSIONS (or its answer) is lost asks again after 2 s, and is
/// ready then, not at the 60 s state-transfer timeout.
#[test]
fn backup_joiner_asks_again_when_an_answer_is_lost() {
    let mut bus = Bus::new(ManagerKind::Backup, 2, ManagerConfig::default());
    for i in 0..10u8 {
        bus.request(1 + (i % 2), None, set("k", "v"));
    }
    let start = bus.now;
    let mut out = start_node3(&mut bus);
    // Only node1's ask goes out; node2's is lost on the way.
    out.retain(|o| o.to == vec![bus::id(1)]);
    assert_eq!(out.len(), 1);
    bus.send(bus::id(3), out);
    bus.pump();
    assert!(!bus.m(3).is_ready(), "node2 has not answered");
    let mut ready_at = None;
    for step in 1..=50u64 {
        bus.now = start + step * 100;
        let now = bus.now;
        let out = bus.m(3).handle_timeout(now);
        bus.send(bus::id(3), out);
        bus.pump();
        if bus.m(3).is_ready() {
            ready_at = Some(bus.now - start);
            break;
        }
    }
    let at = ready_at.expect("the joiner asked node2 again and became ready within 5 s");
    assert!((2_000..=2_100).contains(&at), "ready after {at} ms");
    assert_eq!(bus.m(3).stats().proxy_sessions, 10);
}

/// Starts a BackupManager node3 beside nodes 1 and 2 of `bus`; returns its first messages
/// (one GET_ALL_SESSIONS per member), not yet sent.
fn start_node3(bus: &mut Bus) -> Vec<shoal_session::Outgoing> {
    let cfg = ManagerConfig {
        manager: ManagerKind::Backup,
        ..ManagerConfig::default()
    };
    let mut joiner = shoal_session::build_manager(
        "/app",
        bus::id(3),
        "node3",
        cfg,
        rand::SeedableRng::seed_from_u64(3),
    );
    let out = joiner.start(&[bus::id(1), bus::id(2)], bus.now);
    assert_eq!(out.len(), 2, "asks both members");
    assert!(!joiner.is_ready());
    bus.nodes.insert(bus::id(3), joiner);
    out
}
