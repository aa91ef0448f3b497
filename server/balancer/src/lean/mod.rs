//! The lean HTTP/1.1 path: one task per client connection that parses request heads in
//! place ([`crate::head`]), keeps its own keep-alive connection to each backend it used (no
//! pool lookup, no header maps), and moves a small message with one read and one write per
//! direction. Pipelined requests wait in the read buffer and are served in order.
//!
//! Requests it does not carry go to the hyper path ([`crate::proxy`]) for the rest of the
//! connection, which keeps HTTP/1.0, upgrades, `Expect` and streamed bodies working as before.
//! Routing, retries and failure accounting are shared with the hyper path.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backend::BackendState;
use crate::deadline::Deadline;
use crate::head::{self, ReqHead, Request, Rules};
use crate::pick::choose;
use crate::proxy::{self, Failure};
use crate::Inner;

/// Longest wait for a complete request head, idle keep-alive time included (hyper's
/// `header_read_timeout` on the hyper path).
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Read buffers grow by this much; a typical request or response fits in one read.
const READ_CHUNK: usize = 8 * 1024;

#[path = "lean_upstream.rs"]
mod upstream;
use upstream::Upstream;

/// One client connection.
pub(crate) struct Conn {
    inner: Arc<Inner>,
    client: TcpStream,
    peer: SocketAddr,
    peer_ip: String,
    /// Bytes from the client; the current request starts at `start`.
    buf: Vec<u8>,
    start: usize,
    /// The request as sent upstream (head + body), kept for a resend.
    req: Vec<u8>,
    /// Bytes for the client.
    resp: Vec<u8>,
    /// Kept-alive connections to the backends this client used, most recent last.
    upstreams: Vec<Upstream>,
    route: String,
    method: String,
    /// The head and response timeouts, see [`Deadline`].
    deadline: Deadline,
    /// The balancer is stopping: finish the request in progress, then close.
    stop: watch::Receiver<bool>,
    /// Completes when `stop` is set; one future for the connection's life, so waiting for
    /// the next request does not register and unregister a waiter every time.
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// What happens to the client connection after a request.
enum Next {
    KeepAlive,
    Close,
    Fallback,
}

/// Serves `client` until it closes, errs, or `stop` is set while it is idle.
pub(crate) async fn run(
    inner: Arc<Inner>,
    client: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let _ = client.set_nodelay(true);
    let mut conn = Conn {
        inner,
        client,
        peer,
        peer_ip: peer.ip().to_string(),
        buf: Vec::with_capacity(READ_CHUNK),
        start: 0,
        req: Vec::with_capacity(1024),
        resp: Vec::with_capacity(1024),
        upstreams: Vec::new(),
        route: String::new(),
        method: String::new(),
        deadline: Deadline::new(Instant::now() + HEAD_TIMEOUT),
        stopped: Box::pin(stopped(stop.clone())),
        stop,
    };
    loop {
        match conn.serve_one().await {
            Ok(Next::KeepAlive) => continue,
            Ok(Next::Close) => break,
            Ok(Next::Fallback) => return conn.fallback().await,
            Err(e) => {
                tracing::debug!(peer = %conn.peer, "client connection ended: {e}");
                break;
            }
        }
    }
    let _ = conn.client.shutdown().await;
}

impl Conn {
    /// Reads one request and answers it.
    async fn serve_one(&mut self) -> io::Result<Next> {
        let deadline = Instant::now() + HEAD_TIMEOUT;
        let r = loop {
            let config = &self.inner.config;
            let rules = Rules {
                cookie_name: &config.cookie_name,
                session_header: &config.session_header,
                status_path: &config.status_path,
                max_replay_body: config.max_replay_body,
            };
            let data = &self.buf[self.start..];
            let parsed = head::parse_request(
                data,
                &rules,
                &self.peer_ip,
                &mut self.req,
                &mut self.route,
                &mut self.method,
            );
            match parsed {
                ReqHead::Ready(r) => break r,
                ReqHead::Partial => {
                    if self.read_client(deadline).await? == 0 {
                        return Ok(Next::Close);
                    }
                }
                ReqHead::Fallback(why) => {
                    tracing::trace!(peer = %self.peer, "request goes to the hyper path: {why}");
                    return Ok(Next::Fallback);
                }
                ReqHead::Reject(code, why) => {
                    self.resp.clear();
                    let body = format!("shoal-balancer: {why}\n");
                    head::write_plain(
                        &mut self.resp,
                        code,
                        TEXT,
                        body.as_bytes(),
                        false,
                        true,
                        None,
                    );
                    self.client.write_all(&self.resp).await?;
                    return Ok(Next::Close);
                }
            }
        };
        let total = r.head_len + r.body_len;
        while self.buf.len() - self.start < total {
            if self.read_client(deadline).await? == 0 {
                return Ok(Next::Close); // the client gave up in the middle of its body
            }
        }
        let body = &self.buf[self.start + r.head_len..self.start + total];
        self.req.extend_from_slice(body);
        let next = if r.status {
            self.status(&r).await?
        } else {
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            self.forward(&r).await?
        };
        self.start += total;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        if *self.stop.borrow() && self.start == self.buf.len() {
            return Ok(Next::Close);
        }
        Ok(next)
    }

    /// Reads more client bytes; 0 means closed (or, while idle, that the balancer stops).
    async fn read_client(&mut self, deadline: Instant) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(READ_CHUNK);
        }
        let idle = self.start == self.buf.len();
        if idle && *self.stop.borrow() {
            return Ok(0);
        }
        let read = self.client.read_buf(&mut self.buf);
        let work = async {
            match idle {
                true => tokio::select! {
                    biased;
                    r = read => Some(r),
                    () = &mut self.stopped => None,
                },
                false => Some(read.await),
            }
        };
        match self.deadline.run(deadline, work).await {
            Some(Some(read)) => read,
            Some(None) => Ok(0),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete request head within 30 s",
            )),
        }
    }

    /// The balancer's JSON status, like [`crate::status_response`].
    async fn status(&mut self, r: &Request) -> io::Result<Next> {
        self.resp.clear();
        let close = !r.keep_alive;
        let (get, head) = (self.method == "GET", self.method == "HEAD");
        if !get && !head {
            let body = b"shoal-balancer: the status endpoint answers GET only\n";
            let allow = Some(("allow", "GET, HEAD"));
            head::write_plain(&mut self.resp, 405, TEXT, body, false, close, allow);
        } else {
            match serde_json::to_vec_pretty(&crate::stats_of(&self.inner)) {
                Ok(json) => head::write_plain(&mut self.resp, 200, JSON, &json, head, close, None),
                Err(e) => {
                    let body = format!("shoal-balancer: status not serializable: {e}\n");
                    head::write_plain(
                        &mut self.resp,
                        500,
                        TEXT,
                        body.as_bytes(),
                        head,
                        close,
                        None,
                    )
                }
            }
        }
        self.client.write_all(&self.resp).await?;
        Ok(if close { Next::Close } else { Next::KeepAlive })
    }

    /// Picks backends and tries them until one answers or the retry rules say stop.
    async fn forward(&mut self, r: &Request) -> io::Result<Next> {
        let inner = self.inner.clone();
        let idempotent = proxy::is_idempotent_name(&self.method);
        let backends = inner.registry.snapshot();
        let mut tried: Vec<String> = Vec::new();
        let mut last: Option<(String, Failure)> = None;
        loop {
            let tried_refs: Vec<&str> = tried.iter().map(String::as_str).collect();
            let rr = inner.rr.fetch_add(1, Ordering::Relaxed);
            let sticky = (!self.route.is_empty()).then_some(self.route.as_str());
            let Some(backend) = choose(&backends, sticky, &tried_refs, rr) else {
                return self.give_up(r, last).await;
            };
            if !tried.is_empty() {
                inner.retries.fetch_add(1, Ordering::Relaxed);
            }
            match self.attempt(&backend, r).await? {
                Ok(next) => return Ok(next),
                Err(failure) => {
                    proxy::note_failure(&backend, &failure);
                    let resend = proxy::may_resend(&inner.config, &failure, idempotent);
                    tried.push(backend.route.clone());
                    last = Some((backend.route.clone(), failure));
                    if !resend {
                        return self.give_up(r, last).await;
                    }
                }
            }
        }
    }

    async fn give_up(&mut self, r: &Request, last: Option<(String, Failure)>) -> io::Result<Next> {
        self.inner.errors.fetch_add(1, Ordering::Relaxed);
        let (status, why) = proxy::give_up_text(&self.method, last);
        let body = format!("shoal-balancer: {why}\n");
        self.resp.clear();
        let close = !r.keep_alive;
        let (code, head_only) = (status.as_u16(), r.head_method);
        head::write_plain(
            &mut self.resp,
            code,
            TEXT,
            body.as_bytes(),
            head_only,
            close,
            None,
        );
        self.client.write_all(&self.resp).await?;
        Ok(if close { Next::Close } else { Next::KeepAlive })
    }

    /// The rest of the connection on the hyper path, from the current request on.
    async fn fallback(mut self) {
        self.upstreams.clear();
        let prefix = self.buf.split_off(self.start);
        let io = crate::rewind::Rewind::new(prefix, self.client);
        let (inner, peer) = (self.inner, self.peer);
        let service = service_fn(move |req| proxy::handle(inner.clone(), req, peer));
        let mut builder = http1::Builder::new();
        builder
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let stopped = self.stopped;
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = stopped => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "client connection ended: {e}");
        }
    }

    fn drop_upstream(&mut self, backend: &Arc<BackendState>) {
        self.upstreams.retain(|u| !Arc::ptr_eq(&u.backend, backend));
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            break; // the balancer's serve future is gone: stop too
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
