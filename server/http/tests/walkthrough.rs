//! Tomcat's "How it works" walk-through (cluster-howto), in-process with two nodes:
//! A starts; B starts and receives state; A creates S1; A crashes; B serves S1 (route
//! rewritten); A restarts and receives state from B; A invalidates S1 and B drops it;
//! B creates S2; S2 expires on A by inactivity.
mod common;

use common::{config, get, TestCluster};
use shoal_session::ManagerConfig;
use shoal_testkit::eventually;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tomcat_how_it_works_walkthrough() {
    let session = ManagerConfig {
        max_inactive_secs: 2,
        sweep_interval_ms: 50,
        ..ManagerConfig::default()
    };
    // TomcatA starts up.
    let mut c = TestCluster::start(1, config(session)).await;
    let a_first = get(c.node(1).addr, "/app/counter", None).await;
    let s0 = a_first
        .session_id()
        .unwrap_or_else(|| panic!("{a_first:?}"));

    // TomcatB starts up and receives the state before serving (start_node waits for ready).
    c.start_node(2).await;
    assert!(
        c.holds(2, &s0),
        "B received A's sessions in the state transfer"
    );
    let transfers = c
        .node(2)
        .node
        .registry()
        .service("/app")
        .map(|s| s.stats().state_transfers);
    assert_eq!(transfers, Some(1));

    // TomcatA receives a request, a session S1 is created.
    let r = get(c.node(1).addr, "/app/counter", None).await;
    let s1 = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    assert!(s1.ends_with(".node1"));
    assert!(
        c.holds(2, &s1),
        "sync replication: B has S1 before A answered"
    );

    // TomcatA crashes.
    c.crash(1);

    // TomcatB receives a request for session S1: served, id rewritten to B's route.
    let r = get(c.node(2).addr, "/app/counter", Some(&s1)).await;
    assert_eq!(r.field("counter"), Some("2"), "{r:?}");
    let s1b = r
        .session_id()
        .unwrap_or_else(|| panic!("no rewritten cookie: {r:?}"));
    assert!(s1b.ends_with(".node2"), "{s1b}");

    // TomcatA starts up again: it joins and gets the state from B before serving.
    c.start_node(1).await;
    assert!(c.holds(1, &s1b), "A received S1 from B");
    let r = get(c.node(1).addr, "/app/get?key=counter", Some(&s1b)).await;
    assert_eq!(r.field("value"), Some("2"), "{r:?}");

    // TomcatA receives a request, invalidate is called on S1; B drops it.
    let r = get(c.node(1).addr, "/app/invalidate", Some(&s1b)).await;
    assert_eq!(r.body, "invalidated=true node=node1");
    assert!(!c.holds(2, &s1b), "sync: B dropped S1 before A answered");
    let r = get(c.node(2).addr, "/app/get?key=counter", Some(&s1b)).await;
    assert_eq!(r.status, 404, "{r:?}");

    // TomcatB receives a request for a new session S2.
    let r = get(c.node(2).addr, "/app/counter", None).await;
    let s2 = r.session_id().unwrap_or_else(|| panic!("{r:?}"));
    assert!(c.holds(1, &s2));

    // On TomcatA, S2 expires due to inactivity (max inactive 2 s; nobody touches it).
    eventually("S2 expired on A", Duration::from_secs(8), || {
        !c.holds(1, &s2)
    })
    .await;
    eventually("S2 expired on B", Duration::from_secs(8), || {
        !c.holds(2, &s2)
    })
    .await;
    let expired = c
        .node(2)
        .node
        .registry()
        .service("/app")
        .map(|s| s.stats().sessions_expired)
        .unwrap_or(0);
    assert!(expired >= 1, "B's sweeper expired S2");
}
