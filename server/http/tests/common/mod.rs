//! In-process test cluster: N shoal-http nodes on 127.0.0.1:0 joined by a MemoryCluster,
//! and GETs through the testkit's HTTP/1.1 client (one connection per request).
#![allow(dead_code)]
use shoal_http::{HttpConfig, HttpNode};
use shoal_session::{ClusterLink, ManagerConfig, MemoryCluster, MemoryLink, SessionId};
use shoal_testkit::Reply;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestNode {
    pub name: String,
    pub addr: SocketAddr,
    pub node: Arc<HttpNode>,
    pub link: Arc<MemoryLink>,
    stop: Option<oneshot::Sender<()>>,
}

pub struct TestCluster {
    pub mem: MemoryCluster,
    pub config: HttpConfig,
    pub nodes: Vec<Option<TestNode>>,
    /// Extra valves given to every node's `/app` pipeline.
    pub valves: Vec<Arc<dyn shoal_http::Valve>>,
    /// A store given to every node's `/app` context (a persistent context's shared store).
    pub store: Option<Arc<dyn shoal_store::Store>>,
}

pub fn config(session: ManagerConfig) -> HttpConfig {
    let mut c = HttpConfig::default();
    c.contexts[0].session = session;
    c
}

impl TestCluster {
    pub async fn start(n: usize, config: HttpConfig) -> Self {
        Self::start_with_valves(n, config, Vec::new()).await
    }

    pub async fn start_with_valves(
        n: usize,
        config: HttpConfig,
        valves: Vec<Arc<dyn shoal_http::Valve>>,
    ) -> Self {
        let mut c = TestCluster {
            mem: MemoryCluster::new(),
            config,
            nodes: Vec::new(),
            valves,
            store: None,
        };
        for i in 1..=n {
            c.start_node(i).await;
        }
        c
    }

    /// N nodes whose `/app` context keeps its sessions in `store` (one store for all).
    pub async fn start_with_store(
        n: usize,
        config: HttpConfig,
        store: Arc<dyn shoal_store::Store>,
    ) -> Self {
        let mut c = TestCluster {
            mem: MemoryCluster::new(),
            config,
            nodes: Vec::new(),
            valves: Vec::new(),
            store: Some(store),
        };
        for i in 1..=n {
            c.start_node(i).await;
        }
        c
    }

    /// Starts (or restarts) node `i` (1-based, route `node<i>`) and waits until it is ready.
    pub async fn start_node(&mut self, i: usize) -> &TestNode {
        let name = format!("node{i}");
        let link = self.mem.join(&name);
        let extra = [("/app".to_string(), self.valves.clone())]
            .into_iter()
            .collect();
        let mut builder = HttpNode::builder(self.config.clone(), link.clone()).valves(extra);
        if let Some(store) = &self.store {
            builder = builder.store("/app", store.clone());
        }
        let node = builder
            .start()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        assert!(
            node.registry().wait_ready(Duration::from_secs(10)).await,
            "{name}: state transfer did not finish"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let n2 = node.clone();
        tokio::spawn(async move {
            let _ = shoal_http::serve(listener, n2, async {
                let _ = rx.await;
            })
            .await;
        });
        while self.nodes.len() < i {
            self.nodes.push(None);
        }
        self.nodes[i - 1] = Some(TestNode {
            name,
            addr,
            node,
            link,
            stop: Some(tx),
        });
        self.node(i)
    }

    pub fn node(&self, i: usize) -> &TestNode {
        self.nodes[i - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("node{i} is down"))
    }

    /// Node `i` vanishes: its peers see it leave, it stops replicating and serving.
    pub fn crash(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i - 1].take() {
            self.mem.kill(n.link.local().id);
            n.node.stop();
            if let Some(s) = n.stop.take() {
                let _ = s.send(());
            }
        }
    }

    /// Whether node `i` holds session `full_id` (no side effects on the session).
    pub fn holds(&self, i: usize, full_id: &str) -> bool {
        let Some((id, _)) = shoal_session::parse_full_id(full_id) else {
            return false;
        };
        self.with_session(i, &id, |s| s.is_some())
    }

    pub fn with_session<R>(
        &self,
        i: usize,
        id: &SessionId,
        f: impl FnOnce(Option<&shoal_session::Session>) -> R,
    ) -> R {
        let svc = self
            .node(i)
            .node
            .registry()
            .service("/app")
            .unwrap_or_else(|| panic!("no /app"));
        svc.with_manager(|m| f(m.session(id)))
    }
}

/// GET `path` with an optional `JSESSIONID` cookie value and extra headers; the body
/// without its trailing newline.
pub async fn get_with(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let cookie = cookie.map(|c| format!("JSESSIONID={c}"));
    let mut r = shoal_testkit::get(&addr.to_string(), path, cookie.as_deref(), headers)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    r.body.truncate(r.body.trim_end().len());
    r
}

pub async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    get_with(addr, path, cookie, &[]).await
}
