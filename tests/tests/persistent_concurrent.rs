//! Concurrent requests on one session on two nodes, per-request mode (the PersistentValve:
//! load at request start, compare-and-set at request end), with real processes over a
//! shared store: four clients, two on each node, send `/app/counter` with the same cookie.
//! No acknowledged write is lost: the counters of the 200 answers are all different, they
//! are exactly 2..=final, and the final value is one more than the number of 200s (the
//! session was made with 1). Every other answer is a retryable conflict (409 or 503 with
//! `Retry-After`), never a silent overwrite.
use shoal_tests::persistent::{
    cookie_id, get_counter, persistent_config, Answer, Client, Nodes, StoreKind, TestStore,
};

const REQUESTS_PER_CLIENT: usize = 40;

fn concurrent(store: &TestStore) {
    let what = |s: &str| format!("per-request on {:?}: {s}", store.kind);
    let toml = store.toml();
    let mut nodes = Nodes::start(2, |p| {
        persistent_config("per-request", &toml, 1800, p.http, p.admin)
    });
    let mut c = Client::new();
    c.count(&nodes.http(1), &what("the session"));
    let cookie = c.cookie.clone().expect("a new session sets a cookie");

    let threads: Vec<_> = [1, 1, 2, 2]
        .into_iter()
        .map(|i| {
            let (addr, cookie) = (nodes.http(i), cookie.clone());
            std::thread::spawn(move || {
                (0..REQUESTS_PER_CLIENT)
                    .map(|_| get_counter(&addr, Some(&cookie)))
                    .collect::<Vec<Result<Answer, String>>>()
            })
        })
        .collect();
    let answers: Vec<Answer> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .map(|a| a.unwrap_or_else(|e| panic!("{}", what(&format!("transport error: {e}")))))
        .collect();

    let mut counters = Vec::new();
    let mut conflicts = 0;
    for a in &answers {
        match a.status {
            200 => counters.push(a.counter.unwrap_or_else(|| panic!("{a:?}"))),
            409 | 503 => {
                assert!(
                    a.status == 409 || a.retry_after.is_some(),
                    "{}",
                    what(&format!("a 503 without Retry-After: {a:?}"))
                );
                conflicts += 1;
            }
            _ => panic!("{}", what(&format!("not a retryable answer: {a:?}"))),
        }
        // The route suffix may follow the node that answered; the id stays.
        assert!(
            a.cookie
                .as_deref()
                .is_none_or(|c| cookie_id(c) == cookie_id(&cookie)),
            "{}",
            what(&format!("the session changed id: {a:?}"))
        );
    }
    counters.sort_unstable();
    let n = counters.len() as i64;
    assert!(n > 0, "{}", what("no request succeeded"));
    assert_eq!(
        counters,
        (2..=n + 1).collect::<Vec<_>>(),
        "{}",
        what("acknowledged counters (a repeat is a lost write)")
    );
    // One more request: the newest value is the number of acknowledged writes + 1.
    let last = (0..20)
        .find_map(|_| {
            get_counter(&nodes.http(2), Some(&cookie))
                .ok()
                .filter(|a| a.status == 200)
        })
        .unwrap_or_else(|| panic!("{}", what("no final answer")));
    assert_eq!(last.counter, Some(n + 2), "{}", what("final value"));
    println!(
        "{}",
        what(&format!(
            "{n} acknowledged, {conflicts} retryable conflicts"
        ))
    );
    nodes.kill9(1);
    nodes.kill9(2);
}

#[test]
fn one_session_on_two_nodes_at_once_on_a_shared_sqlite_file() {
    concurrent(&TestStore::start(StoreKind::Sqlite));
}

#[test]
fn one_session_on_two_nodes_at_once_on_redis() {
    concurrent(&TestStore::start(StoreKind::Redis));
}
