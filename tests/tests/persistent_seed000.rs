//! Seed 000 with real processes: two `shoal node` processes with `manager = "persistent"`
//! over one store (a shared SQLite file, then a real Redis), the balancer modelled by the
//! node each request goes to. `/app/counter` must count 1, 2, 3, … strictly (Tomcat's
//! PersistentManager serves 4, 5 again in scenario (a) and 6, 7 again in (b)), and after
//! `kill -9` of the whole cluster every acknowledged write of this write-through context
//! (`max_idle_backup = 0`) is still there.
use shoal_tests::free_port;
use shoal_tests::sessions::{Http, HttpNode};
use std::path::PathBuf;

/// A config file: `/app` persistent (`mode`, write-through) over the store in `store_toml`.
fn config(mode: &str, store_toml: &str) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"persistent\"\nmax_inactive_secs = 1800\n\n\
         [http.contexts.session.persistent]\nmode = \"{mode}\"\nmax_idle_backup = 0\nprocess_expires_frequency = 1\n\n\
         [http.contexts.session.store]\n{store_toml}"
    );
    shoal_tests::temp_file("shoal.toml", &toml)
}

struct Cluster {
    nodes: Vec<Option<HttpNode>>,
    ports: Vec<u16>,
    config: PathBuf,
}

impl Cluster {
    fn start(config: PathBuf) -> Cluster {
        let ports = vec![free_port(), free_port()];
        let mut c = Cluster {
            nodes: vec![None, None],
            ports,
            config,
        };
        c.spawn(1);
        c.spawn(2);
        for n in c.nodes.iter_mut().flatten() {
            n.wait_members(&["node1", "node2"]);
        }
        c
    }

    fn spawn(&mut self, i: usize) {
        let name = format!("node{i}");
        let node = HttpNode::spawn(&name, self.ports[i - 1], &self.ports, &self.config);
        self.nodes[i - 1] = Some(node);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i - 1].take() {
            n.proc.kill9();
        }
    }

    fn addr(&self, i: usize) -> String {
        self.nodes[i - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("node{i} is down"))
            .http
            .clone()
    }
}

/// One client: a cookie replaced whenever a response sets another, and the values it saw.
struct Client {
    http: Http,
    cookie: Option<String>,
    seen: Vec<i64>,
}

impl Client {
    fn new() -> Client {
        Client {
            http: Http::new(),
            cookie: None,
            seen: Vec::new(),
        }
    }

    fn count(&mut self, c: &Cluster, node: usize) {
        let r = self
            .http
            .get(&c.addr(node), "/app/counter", self.cookie.as_deref());
        assert_eq!(r.status, 200, "node{node}: {r:?}");
        if let Some(ck) = r.cookie.clone() {
            self.cookie = Some(ck);
        }
        let v: i64 = r
            .field("counter")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {r:?}"));
        let expected = self.seen.last().map_or(1, |l| l + 1);
        assert_eq!(
            v, expected,
            "node{node} served {v} after {:?}: a stale or lost session",
            self.seen
        );
        self.seen.push(v);
    }
}

fn seed000(mode: &str, store_toml: &str) {
    let mut c = Cluster::start(config(mode, store_toml));

    // (a) the balancer cuts node1 off, restores it, cuts it off again.
    let mut a = Client::new();
    for node in [1, 1, 1, 2, 2, 1, 1, 2, 2, 1] {
        a.count(&c, node);
    }

    // (b) node2 goes down twice in a row, failing over to node1 each time.
    let mut b = Client::new();
    for node in [2, 2, 2] {
        b.count(&c, node);
    }
    c.kill(2);
    b.count(&c, 1);
    b.count(&c, 1);
    c.spawn(2);
    b.count(&c, 2);
    b.count(&c, 2);
    c.kill(2);
    // node1 still holds its copy from the first failover: it must not serve it.
    b.count(&c, 1);
    b.count(&c, 1);

    // The whole cluster killed with -9, then restarted: every acknowledged write survives.
    c.kill(1);
    c.spawn(1);
    c.spawn(2);
    a.count(&c, 2);
    b.count(&c, 1);
    assert_eq!(a.seen, (1..=11).collect::<Vec<_>>());
    assert_eq!(b.seen, (1..=10).collect::<Vec<_>>());
    c.kill(1);
    c.kill(2);
}

#[test]
fn seed000_on_a_shared_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("shoal-seed000-{}", std::process::id()));
    let path = dir.join("sessions.db");
    let store = format!("kind = \"sqlite\"\npath = \"{}\"\n", path.display());
    seed000("sticky", &store);
    // The PersistentValve mode on the same file (new sessions, the same table).
    seed000("per-request", &store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn seed000_on_redis() {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let server = rt
        .block_on(shoal_store::testing::servers::redis())
        .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
    let shoal_store::StoreConfig::Redis(redis) = server.config() else {
        panic!("not a redis config")
    };
    let store = format!("kind = \"redis\"\nurl = \"{}\"\n", redis.url);
    seed000("sticky", &store);
    seed000("per-request", &store);
    drop(server);
}
