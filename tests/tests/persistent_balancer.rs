//! Seed 000's two scenarios behind a real `shoal balancer`, for each persistent mode
//! (`sticky`, `per-request`) on each store (a shared SQLite file, a directory of files,
//! Redis, PostgreSQL, MariaDB): one function, [`seed000`], runs the matrix; each store's
//! server starts once per test and serves both modes.
//!
//! (a) The balancer's path to node1 is cut (a forwarder between them closes: node1 keeps
//!     running with its memory copy), restored, and cut again.
//! (b) node2 is killed (-9) and restarted twice in a row; each time the balancer fails over.
//!
//! Every answer is 200 and the counter of `/app/counter` goes 1, 2, 3, … strictly: a stale
//! copy (Tomcat serves 4, 5 again in (a) and 6, 7 again in (b)) or a lost write fails. A
//! browser tab that kept an older cookie replays it after each restore: that is what sends a
//! request back to the node holding the older copy.
use shoal_tests::cut::Cut;
use shoal_tests::front::Front;
use shoal_tests::persistent::{
    balancer_status, persistent_config, wait_for, Client, Nodes, StoreKind, TestStore,
};
use shoal_tests::sessions::SECRET;
use std::time::Duration;

const MODES: [&str; 2] = ["sticky", "per-request"];

fn seed000(mode: &str, store: &TestStore) {
    let what = |s: &str| format!("{mode} on {:?}: {s}", store.kind);
    let toml = store.toml();
    let mut nodes = Nodes::start(2, |p| persistent_config(mode, &toml, 1800, p.http, p.admin));
    let mut cut1 = Cut::open(&nodes.http(1));
    let cut2 = Cut::open(&nodes.http(2));
    let front = Front::balancer(
        &[
            ("node1".to_string(), cut1.addr()),
            ("node2".to_string(), cut2.addr()),
        ],
        &[],
        SECRET,
    );
    let f = front.addr.clone();
    let up = |route: &str| {
        wait_for(
            &what(&format!("the balancer sees {route} up")),
            Duration::from_secs(10),
            || Ok(balancer_status(&f, route)? == "up"),
        )
    };
    let served_by = |a: &shoal_tests::persistent::Answer, node: &str, step: &str| {
        assert_eq!(a.backend.as_deref(), Some(node), "{}", what(step));
    };

    // (a) A session made on node1, then everything through the balancer.
    let mut a = Client::new();
    a.count(&nodes.http(1), &what("(a) new session on node1"));
    for _ in 0..2 {
        let r = a.count(&f, &what("(a) on node1"));
        served_by(&r, "node1", "(a) before the cut");
    }
    cut1.cut();
    for _ in 0..2 {
        let r = a.count(&f, &what("(a) node1 cut off"));
        served_by(&r, "node2", "(a) node1 cut off");
    }
    cut1.restore();
    up("node1");
    a.count(&f, &what("(a) node1 restored"));
    let old = a.first_cookie.clone();
    let r = a.count_with(&f, old.as_deref(), &what("(a) old cookie, node1 restored"));
    served_by(&r, "node1", "(a) the old cookie's route");
    a.count(&f, &what("(a) node1 restored, current cookie"));
    cut1.cut();
    for _ in 0..2 {
        let r = a.count(&f, &what("(a) node1 cut off again"));
        served_by(&r, "node2", "(a) node1 cut off again");
    }
    a.count_with(
        &f,
        old.as_deref(),
        &what("(a) old cookie, node1 cut off again"),
    );
    cut1.restore();
    up("node1");

    // (b) A session made on node2; node2 killed and restarted twice.
    let mut b = Client::new();
    b.count(&nodes.http(2), &what("(b) new session on node2"));
    for _ in 0..2 {
        let r = b.count(&f, &what("(b) on node2"));
        served_by(&r, "node2", "(b) before the first failure");
    }
    for round in 1..=2 {
        nodes.kill9(2);
        for _ in 0..2 {
            let r = b.count(&f, &what(&format!("(b) failure {round}: node2 down")));
            served_by(&r, "node1", "(b) node2 down");
        }
        nodes.spawn(2);
        nodes.wait_mesh();
        up("node2");
        // Back on node2: the tab with the first cookie (routed to node2) and the current one.
        let old = b.first_cookie.clone();
        let r = b.count_with(&f, old.as_deref(), &what("(b) old cookie, node2 back"));
        served_by(&r, "node2", "(b) the old cookie's route");
        b.count(&f, &what("(b) node2 back, current cookie"));
    }
    // node1 still holds its copy from the failovers: a kill of node2 must not bring it back.
    nodes.kill9(2);
    b.count(&f, &what("(b) node2 down a third time"));
    b.count(&f, &what("(b) node2 down a third time"));
    assert_eq!(a.seen, (1..=11).collect::<Vec<_>>(), "{}", what("(a)"));
    assert_eq!(b.seen, (1..=13).collect::<Vec<_>>(), "{}", what("(b)"));
}

fn matrix(kind: StoreKind) {
    let store = TestStore::start(kind);
    for mode in MODES {
        seed000(mode, &store);
    }
}

#[test]
fn seed000_behind_the_balancer_on_a_shared_sqlite_file() {
    matrix(StoreKind::Sqlite);
}

#[test]
fn seed000_behind_the_balancer_on_a_directory_of_files() {
    matrix(StoreKind::Files);
}

#[test]
fn seed000_behind_the_balancer_on_redis() {
    matrix(StoreKind::Redis);
}

#[test]
fn seed000_behind_the_balancer_on_postgres() {
    matrix(StoreKind::Postgres);
}

#[test]
fn seed000_behind_the_balancer_on_mariadb() {
    matrix(StoreKind::MariaDb);
}
