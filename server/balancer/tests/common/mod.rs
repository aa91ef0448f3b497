//! In-process fake shoal nodes and a small HTTP client for the balancer tests.
//!
//! A fake node behaves like a shoal node running the bench app with DeltaManager: all nodes
//! share one session store (replication), ids are `<hex>.<route>`, and a request carrying
//! another node's route gets its cookie rewritten (JvmRouteBinderValve).
#![allow(dead_code)]

pub mod load;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{COOKIE, SET_COOKIE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use shoal_balancer::{Backend, Balancer, BalancerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Session store shared by all fake nodes of one test: id (without route) -> counter.
pub type Store = Arc<Mutex<HashMap<String, u64>>>;

pub struct NodeState {
    pub route: String,
    /// When false, `/app/stats` answers 503 so health probes fail.
    pub healthy: AtomicBool,
    /// Requests other than health probes.
    pub hits: AtomicU64,
    /// Health-path requests marked as probes (`x-shoal-probe: health`), so valve plugins
    /// can tell them from users' requests.
    pub marked_probes: AtomicU64,
    pub posts: AtomicU64,
    store: Store,
    next_id: AtomicU64,
}

/// A fake node listening on 127.0.0.1; `kill` drops the listener and every open connection,
/// as a kill -9 would.
pub struct FakeNode {
    pub addr: SocketAddr,
    pub state: Arc<NodeState>,
    task: JoinHandle<()>,
}

impl FakeNode {
    pub async fn start(route: &str, store: &Store) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake node");
        Self::serve(listener, route, store)
    }

    /// Restarts a node on the address it had (the port is free again after `kill`).
    pub async fn restart(addr: SocketAddr, route: &str, store: &Store) -> FakeNode {
        let listener = TcpListener::bind(addr)
            .await
            .expect("rebind fake node port");
        Self::serve(listener, route, store)
    }

    fn serve(listener: TcpListener, route: &str, store: &Store) -> FakeNode {
        let addr = listener.local_addr().expect("fake node addr");
        let state = Arc::new(NodeState {
            route: route.to_string(),
            healthy: AtomicBool::new(true),
            hits: AtomicU64::new(0),
            marked_probes: AtomicU64::new(0),
            posts: AtomicU64::new(0),
            store: store.clone(),
            next_id: AtomicU64::new(1),
        });
        let st = state.clone();
        // Connections live in a JoinSet owned by this task, so aborting it closes them all.
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let st = st.clone();
                        conns.spawn(async move {
                            let svc = service_fn(move |req| handle(st.clone(), req));
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        FakeNode { addr, state, task }
    }

    pub fn kill(&self) {
        self.task.abort();
    }

    pub async fn kill_and_wait(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }

    pub fn backend(&self) -> Backend {
        Backend::new(self.state.route.clone(), self.addr.to_string())
    }

    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(st: Arc<NodeState>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/app/stats" {
        let marked = req
            .headers()
            .get(shoal_cluster::roles::PROBE_HEADER)
            .is_some_and(|v| v == "health");
        if marked {
            st.marked_probes.fetch_add(1, Ordering::SeqCst);
        }
        let ok = st.healthy.load(Ordering::SeqCst);
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok(reply(status, format!("node={} members=3", st.route), None));
    }
    st.hits.fetch_add(1, Ordering::SeqCst);
    if req.method() == Method::POST {
        st.posts.fetch_add(1, Ordering::SeqCst);
    }
    match path.as_str() {
        "/app/counter" => Ok(counter(&st, &req)),
        // Never answers: the test kills the node while a request waits here.
        "/app/hang" => std::future::pending().await,
        "/app/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(reply(
                StatusCode::OK,
                format!("node={} slow=done", st.route),
                None,
            ))
        }
        _ => {
            let xff = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let text = format!(
                "node={} method={} path={path} xff={xff}",
                st.route,
                req.method()
            );
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            Ok(reply(StatusCode::OK, format!("{text} body={body}"), None))
        }
    }
}

fn counter(st: &NodeState, req: &Request<Incoming>) -> Reply {
    let presented = session_id(req);
    let mut store = st.store.lock().expect("fake store");
    let (id, count, rewrite) = match presented {
        Some((id, route)) if store.contains_key(&id) => {
            let n = store.get_mut(&id).map(|c| {
                *c += 1;
                *c
            });
            (id, n.unwrap_or(0), route != st.route)
        }
        _ => {
            let id = format!(
                "{:08X}{:04X}",
                std::process::id(),
                st.next_id.fetch_add(1, Ordering::SeqCst)
            );
            let id = format!("{}{}", &st.route, id);
            store.insert(id.clone(), 1);
            (id, 1, true)
        }
    };
    let full_id = format!("{id}.{}", st.route);
    let cookie = rewrite.then(|| format!("JSESSIONID={full_id}; Path=/app; HttpOnly"));
    reply(
        StatusCode::OK,
        format!("counter={count} session={full_id} node={}", st.route),
        cookie,
    )
}

fn session_id(req: &Request<Incoming>) -> Option<(String, String)> {
    let cookie = req
        .headers()
        .get(COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .filter_map(|p| p.trim().strip_prefix("JSESSIONID="))
                .next()
                .map(str::to_string)
        });
    let value = cookie.or_else(|| {
        req.headers()
            .get("x-shoal-session")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    })?;
    let (id, route) = value.split_once('.')?;
    Some((id.to_string(), route.to_string()))
}

fn reply(status: StatusCode, body: String, cookie: Option<String>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

/// Three fake nodes `node1..node3` sharing one store.
pub async fn three_nodes() -> (Store, Vec<FakeNode>) {
    let store = Store::default();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(FakeNode::start(&format!("node{i}"), &store).await);
    }
    (store, nodes)
}

/// A balancer serving on 127.0.0.1:0; dropping the returned sender stops it.
pub struct RunningBalancer {
    pub addr: SocketAddr,
    pub handle: Balancer,
    _stop: oneshot::Sender<()>,
}

pub async fn start_balancer(config: BalancerConfig) -> RunningBalancer {
    let handle = Balancer::new(config).expect("valid balancer config");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind balancer");
    let addr = listener.local_addr().expect("balancer addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = handle.clone();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    RunningBalancer {
        addr,
        handle,
        _stop: stop,
    }
}

pub fn config_for(nodes: &[FakeNode]) -> BalancerConfig {
    BalancerConfig {
        backends: nodes.iter().map(FakeNode::backend).collect(),
        ..BalancerConfig::default()
    }
}

/// What a test needs from a response.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub backend: Option<String>,
    pub set_cookie: Option<String>,
    /// `JSESSIONID=<id>.<route>` of `set_cookie`, ready to send back.
    pub cookie: Option<String>,
    pub body: String,
}

impl Answer {
    /// The `k=` token of a fake node's `k=v k=v` body.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body
            .split_whitespace()
            .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
    }
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    pub fn new() -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Answer, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| "client timeout".to_string())?
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status();
        let text = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let backend = text("x-shoal-backend");
        let set_cookie = text("set-cookie");
        let cookie = set_cookie
            .as_deref()
            .and_then(shoal_testkit::session_cookie);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            backend,
            set_cookie,
            cookie,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// GET `path` presenting `cookie` (a full `JSESSIONID=...` pair) if given.
    pub async fn get(
        &self,
        addr: SocketAddr,
        path: &str,
        cookie: Option<&str>,
    ) -> Result<Answer, String> {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        self.send(Method::GET, addr, path, &headers, "").await
    }
}
