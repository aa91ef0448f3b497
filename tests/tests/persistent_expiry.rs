//! Expiry on one node while the session is in use on another, with real processes over a
//! shared SQLite file: `max_inactive_secs = 2`, the session made on node2, then used on
//! node1 for three times that interval. node2's expiry (its memory copy, its store sweep)
//! must not remove it: every request counts on (a removed row would restart the counter).
//! Once really idle, expiry removes the row and both nodes answer that there is no session.
use shoal_testkit::get_blocking;
use shoal_tests::persistent::{persistent_config, wait_for, Client, Nodes, StoreKind, TestStore};
use std::time::{Duration, Instant};

const MAX_INACTIVE_SECS: u32 = 2;

fn expiry(mode: &str, store: &TestStore) {
    let what = |s: &str| format!("{mode} on {:?}: {s}", store.kind);
    let toml = store.toml();
    let mut nodes = Nodes::start(2, |p| {
        persistent_config(mode, &toml, MAX_INACTIVE_SECS, p.http, p.admin)
    });
    let mut c = Client::new();
    c.count(&nodes.http(2), &what("new session on node2"));
    let old_cookie = c.cookie.clone();
    // In use on node1 for 3 × max_inactive: one request every 250 ms (bounded).
    let busy = Duration::from_secs(3 * u64::from(MAX_INACTIVE_SECS));
    let start = Instant::now();
    for _ in 0..100 {
        if start.elapsed() > busy {
            break;
        }
        c.count(&nodes.http(1), &what("in use on node1 while node2 expires"));
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        start.elapsed() > busy,
        "{}",
        what("the busy phase was cut short")
    );
    let id = c.id().expect("cookie");
    assert_eq!(
        store.stored_counter(&id),
        Ok(c.seen.last().copied()),
        "{}",
        what("the row holds the newest value")
    );

    // Idle now: polled in the store only (a request would keep it alive).
    wait_for(
        &what("expiry removes the idle session from the store"),
        Duration::from_secs(8 * u64::from(MAX_INACTIVE_SECS) + 10),
        || Ok(store.stored_counter(&id)?.is_none()),
    );
    for i in [1, 2] {
        for cookie in [c.cookie.as_deref(), old_cookie.as_deref()] {
            let r = get_blocking(&nodes.http(i), "/app/get?key=counter", cookie, &[])
                .unwrap_or_else(|e| panic!("{}", what(&e)));
            assert_eq!(
                (r.status, r.field("error")),
                (404, Some("no-session")),
                "{}",
                what(&format!("node{i} after expiry with {cookie:?}: {}", r.body))
            );
        }
    }
    nodes.kill9(1);
    nodes.kill9(2);
}

#[test]
fn expiry_on_one_node_while_in_use_on_another() {
    let store = TestStore::start(StoreKind::Sqlite);
    expiry("sticky", &store);
    expiry("per-request", &store);
}
