//! In-process test cluster: N shoal-http nodes on 127.0.0.1:0 joined by a MemoryCluster,
//! and a minimal HTTP/1.1 client (one connection per request).
#![allow(dead_code)]
use shoal_http::{HttpConfig, HttpNode};
use shoal_session::{ClusterLink, ManagerConfig, MemoryCluster, MemoryLink, SessionId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
        let node = HttpNode::start_with_valves(self.config.clone(), link.clone(), extra)
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

#[derive(Debug)]
pub struct Resp {
    /// Status line and headers as sent.
    pub head: String,
    pub status: u16,
    pub body: String,
    pub set_cookie: Option<String>,
}

impl Resp {
    /// Value of token `key=` in the one-line body.
    pub fn field(&self, key: &str) -> Option<String> {
        self.body
            .split_whitespace()
            .find_map(|t| t.strip_prefix(&format!("{key}=")).map(str::to_owned))
    }
    /// The `<id>.<route>` a Set-Cookie carried.
    pub fn cookie_id(&self) -> Option<String> {
        let c = self.set_cookie.as_ref()?;
        let v = c.strip_prefix("JSESSIONID=")?;
        Some(v.split(';').next()?.to_owned())
    }
}

/// GET `path` with an optional `JSESSIONID` cookie value and extra headers.
pub async fn get_with(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: JSESSIONID={c}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let set_cookie = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("set-cookie")
            .then(|| v.trim().to_owned())
    });
    Resp {
        head: head.to_owned(),
        status,
        body: body.trim_end().to_owned(),
        set_cookie,
    }
}

pub async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Resp {
    get_with(addr, path, cookie, &[]).await
}

/// Polls `cond` every 20 ms until it holds or `secs` pass.
pub async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
