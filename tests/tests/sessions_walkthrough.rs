//! Tomcat's cluster HOW-TO "How it works" walk-through (seed 003), with real processes and
//! SIGKILL: A starts; B starts and receives state; A creates S1; A crashes; B serves S1 (the
//! route is rewritten to B); A restarts and receives state from B; A invalidates S1 and B drops
//! it; B creates S2; S2 expires on A by inactivity.
use shoal_tests::free_ports;
use shoal_tests::sessions::{session_config, with_route, Http, HttpNode};
use std::time::{Duration, Instant};

const NAMES: [&str; 2] = ["nodeA", "nodeB"];
/// Short enough for the expiry step, long enough for S1 to survive a kill and a restart
/// between two of its requests.
const MAX_INACTIVE_SECS: u32 = 4;

#[test]
fn how_it_works_walkthrough() {
    let cfg = session_config("delta", "sync", MAX_INACTIVE_SECS);
    let ports = free_ports(2);
    let http = Http::new();
    let within = Duration::from_secs(10);

    // 1. A starts (alone: it serves at once).
    let mut a = HttpNode::spawn(NAMES[0], ports[0], &ports, &cfg);
    http.wait_stat(&a.http, "activeSessions", |n| n == 0, within)
        .expect("A serves /app/stats");

    // 2. B starts, finds A and receives its (empty) state; both see each other.
    let mut b = HttpNode::spawn(NAMES[1], ports[1], &ports, &cfg);
    b.wait_members(&NAMES);
    a.wait_members(&NAMES);
    http.wait_stat(&b.http, "members", |n| n == 1, within)
        .expect("B ready with A as member");

    // 3. A creates S1 (counter=1, then 2).
    let s1 = http
        .get(&a.http, "/app/counter", None)
        .cookie
        .expect("S1 cookie");
    assert!(s1.ends_with(".nodeA"), "S1 routed to A: {s1}");
    let r = http.get(&a.http, "/app/counter", Some(&s1));
    assert_eq!(r.field("counter"), Some("2"), "{r:?}");

    // 4. A crashes.
    a.proc.kill9();

    // 5. B serves S1: same session, value intact, route rewritten to B (JvmRouteBinderValve).
    let r = http.get(&b.http, "/app/counter", Some(&s1));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.field("counter"),
        Some("3"),
        "S1 kept its value on B: {r:?}"
    );
    let s1b = r.cookie.clone().expect("B reissued the S1 cookie");
    assert_eq!(s1b, with_route(&s1, "nodeB"), "route rewritten, id kept");
    b.proc
        .wait_new_member_event("member_disappeared", "nodeA", within);
    assert!(
        b.proc
            .wait_log(&["SimpleTcpCluster.memberDisappeared", "nodeA"], within)
            .is_some(),
        "B logs the drop in Tomcat's words"
    );

    // 6. A restarts and receives state from B: S1 is present on A with its value.
    let mut a = HttpNode::spawn(NAMES[0], ports[0], &ports, &cfg);
    a.wait_members(&NAMES);
    http.wait_stat(&a.http, "activeSessions", |n| n == 1, within)
        .expect("A holds S1 after the state transfer");
    let r = http.get(
        &a.http,
        "/app/get?key=counter",
        Some(&with_route(&s1b, "nodeA")),
    );
    assert_eq!((r.status, r.field("value")), (200, Some("3")), "{r:?}");

    // 7. A invalidates S1; B drops it.
    let r = http.get(&a.http, "/app/invalidate", Some(&with_route(&s1b, "nodeA")));
    assert_eq!(r.field("invalidated"), Some("true"), "{r:?}");
    http.wait_stat(&b.http, "activeSessions", |n| n == 0, within)
        .expect("B dropped S1");
    let r = http.get(&b.http, "/app/get?key=counter", Some(&s1b));
    assert_eq!(
        (r.status, r.field("error")),
        (404, Some("no-session")),
        "{r:?}"
    );

    // 8. B creates S2; it reaches A.
    let s2 = http
        .get(&b.http, "/app/counter", None)
        .cookie
        .expect("S2 cookie");
    assert!(s2.ends_with(".nodeB"), "{s2}");
    http.wait_stat(&a.http, "activeSessions", |n| n == 1, within)
        .expect("S2 replicated to A");

    // 9. Nobody touches S2 (stats do not): it expires on A by inactivity, and on B.
    let t = Instant::now();
    let expiry = Duration::from_secs(u64::from(MAX_INACTIVE_SECS) + 6);
    http.wait_stat(&a.http, "activeSessions", |n| n == 0, expiry)
        .expect("S2 expired on A");
    assert!(
        t.elapsed() >= Duration::from_secs(u64::from(MAX_INACTIVE_SECS) - 1),
        "S2 expired by inactivity, not earlier ({:?} after its creation)",
        t.elapsed()
    );
    http.wait_stat(&b.http, "activeSessions", |n| n == 0, within)
        .expect("S2 expired on B");
    let r = http.get(
        &a.http,
        "/app/get?key=counter",
        Some(&with_route(&s2, "nodeA")),
    );
    assert_eq!(
        (r.status, r.field("error")),
        (404, Some("no-session")),
        "{r:?}"
    );
}
