//! Whole-cluster restarts of a DeltaManager context (sync replication) with a write-behind
//! store, with real processes: three nodes write sessions; once the write-behind lag has
//! passed (every session's newest value is in the store, read back from the store itself),
//! `kill -9` of every node and a new cluster: every acknowledged write is there. Then every
//! session is changed once more and every node stopped at once with SIGTERM, without waiting
//! for the lag: a graceful stop flushes the queue, so a new cluster has every session.
use shoal_tests::persistent::{
    cookie_id, wait_for, write_behind_config, Nodes, StoreKind, TestStore,
};
use shoal_tests::sessions::Http;
use std::time::Duration;

const SESSIONS_PER_NODE: usize = 10;

fn check_everywhere(nodes: &Nodes, http: &Http, cookies: &[String], expected: i64, what: &str) {
    for i in 1..=3 {
        let ck = http.check_counters(&nodes.http(i), cookies, expected, 4);
        assert_eq!(
            ck.ok,
            ck.total,
            "{what}: node{i} {ck:?}\nnode{i} log:\n{}",
            nodes.log(i)
        );
    }
}

fn whole_cluster(store: &TestStore) {
    let what = |s: &str| format!("delta + write-behind on {:?}: {s}", store.kind);
    let toml = store.toml();
    let config =
        |p: shoal_tests::persistent::Ports| write_behind_config("delta", &toml, p.http, p.admin);
    let mut nodes = Nodes::start(3, config);
    let http = Http::new();
    let mut cookies = Vec::new();
    for i in 1..=3 {
        cookies.extend(http.create_sessions(&nodes.http(i), SESSIONS_PER_NODE, 3, 4));
    }

    // The lag has passed once the store holds every session's acknowledged value.
    wait_for(
        &what("every acknowledged write is in the store"),
        Duration::from_secs(30),
        || {
            for c in &cookies {
                if store.stored_counter(cookie_id(c))? != Some(3) {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    );
    for i in 1..=3 {
        nodes.kill9(i);
    }
    for i in 1..=3 {
        nodes.spawn(i);
    }
    nodes.wait_mesh();
    check_everywhere(
        &nodes,
        &http,
        &cookies,
        3,
        &what("after kill -9 of every node"),
    );

    // One more write on every session, then SIGTERM to all at once, without waiting.
    for (n, c) in cookies.iter().enumerate() {
        let r = http.get(&nodes.http(n % 3 + 1), "/app/counter", Some(c));
        assert_eq!(
            (r.status, r.field("counter")),
            (200, Some("4")),
            "{}",
            what(&format!("fourth write of {c}: {r:?}"))
        );
    }
    nodes.term_all();
    for i in 1..=3 {
        nodes.spawn(i);
    }
    nodes.wait_mesh();
    check_everywhere(
        &nodes,
        &http,
        &cookies,
        4,
        &what("after SIGTERM of every node"),
    );
    for i in 1..=3 {
        nodes.kill9(i);
    }
}

#[test]
fn whole_cluster_restart_with_write_behind_on_sqlite() {
    whole_cluster(&TestStore::start(StoreKind::Sqlite));
}

#[test]
fn whole_cluster_restart_with_write_behind_on_redis() {
    whole_cluster(&TestStore::start(StoreKind::Redis));
}
