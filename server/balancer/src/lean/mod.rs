//! The lean HTTP/1.1 path: one task per client connection ([`Conn`]) that parses request
//! heads in place (`head/`), keeps its own keep-alive connection to each backend it used (no
//! pool lookup, no header maps), and moves a small message with one read and one write per
//! direction. Pipelined requests wait in the read buffer and are served in order.
//!
//! Requests it does not carry go to the hyper path ([`crate::fallback`]) for the rest of the
//! connection, which keeps HTTP/1.0, upgrades, `Expect` and streamed bodies working as before.
//! Routing, retries and failure accounting are shared with the hyper path
//! ([`crate::retry`]).
//!
//! - `mod.rs` (this file): [`run`] and [`Conn`], the client connection, both its client side
//!   (read a request, answer the status endpoint, give up) and its backend side (send,
//!   read the response head, relay the body);
//! - `upstream.rs`: a kept-alive connection to one backend;
//! - `head/`: request and response heads, parsed and rewritten without header maps;
//! - `chunked.rs`: where a chunked response body ends;
//! - `deadline.rs`: the one timer a connection re-arms for its head and response timeouts.

mod chunked;
mod deadline;
mod head;
mod upstream;

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

use chunked::ChunkedEnd;
use deadline::Deadline;
use head::{ReqHead, Request, RespBody, RespHead, Response, Rules};
use upstream::Upstream;

/// For the fuzz targets (`crate::fuzzing`): the parser and scanner they hold against hyper.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz_entry {
    pub(crate) use super::chunked::ChunkedEnd;
    pub(crate) use super::head::{parse_request, ReqHead, Rules};
}

use crate::backend::BackendState;
use crate::fallback::{self, Rewind};
use crate::retry::{self, Attempt, Failure, Forwarded};
use crate::state::Inner;

/// Longest wait for a complete request head, idle keep-alive time included (hyper's
/// `header_read_timeout` on the hyper path).
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Read buffers grow by this much; a typical request or response fits in one read.
const READ_CHUNK: usize = 8 * 1024;
/// Backend connections kept per client connection; more are closed oldest first.
const MAX_UPSTREAMS: usize = 4;

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

    /// The balancer's JSON status, like the hyper path's.
    async fn status(&mut self, r: &Request) -> io::Result<Next> {
        self.resp.clear();
        let close = !r.keep_alive;
        let (get, head) = (self.method == "GET", self.method == "HEAD");
        if !get && !head {
            let body = b"shoal-balancer: the status endpoint answers GET only\n";
            let allow = Some(("allow", "GET, HEAD"));
            head::write_plain(&mut self.resp, 405, TEXT, body, false, close, allow);
        } else {
            match serde_json::to_vec_pretty(&self.inner.stats()) {
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
        let idempotent = retry::is_idempotent(&self.method);
        // Lent out for the loop: attempts borrow the connection mutably.
        let route = std::mem::take(&mut self.route);
        let sticky = (!route.is_empty()).then_some(route.as_str());
        let mut request = ThisRequest {
            conn: self,
            request: r,
        };
        let forwarded = retry::forward(&inner, sticky, idempotent, true, &mut request).await;
        self.route = route;
        match forwarded? {
            Forwarded::Answered(next) => Ok(next),
            Forwarded::GaveUp(last) => self.give_up(r, last).await,
        }
    }

    async fn give_up(&mut self, r: &Request, last: Option<(String, Failure)>) -> io::Result<Next> {
        self.inner.errors.fetch_add(1, Ordering::Relaxed);
        let (status, why) = retry::give_up_text(&self.method, last);
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
        let io = Rewind::new(prefix, self.client);
        let (inner, peer) = (self.inner, self.peer);
        let service = service_fn(move |req| fallback::handle(inner.clone(), req, peer));
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

    // The backend side: one attempt, the connection it uses, the response head and body.

    /// One try on `backend`. The outer error is the client's connection failing (give up
    /// the connection); the inner one a backend that produced no response.
    async fn attempt(
        &mut self,
        backend: &Arc<BackendState>,
        r: &Request,
    ) -> io::Result<Result<Next, Failure>> {
        backend.requests.fetch_add(1, Ordering::Relaxed);
        backend.outstanding.fetch_add(1, Ordering::Relaxed);
        let head = self.send_and_read_head(backend, r).await;
        backend.outstanding.fetch_sub(1, Ordering::Relaxed);
        match head {
            // Refused unrun: the connection is dropped (its body unread) and another backend
            // gets the request.
            Ok(Ok((_, response))) if response.refused => {
                self.drop_upstream(backend);
                Ok(Err(Failure::Refused(format!(
                    "{} answered 503 without running the request",
                    backend.route
                ))))
            }
            Ok(Ok((i, response))) => self.relay(i, response).await.map(Ok),
            Ok(Err(failure)) => {
                self.drop_upstream(backend);
                Ok(Err(failure))
            }
            Err(client) => Err(client),
        }
    }

    /// Index of a usable connection to `backend`, opening one if needed.
    async fn upstream(&mut self, backend: &Arc<BackendState>) -> Result<usize, Failure> {
        if let Some(i) = self
            .upstreams
            .iter()
            .position(|u| Arc::ptr_eq(&u.backend, backend))
        {
            if self.upstreams[i].alive() {
                return Ok(i);
            }
            self.upstreams.remove(i);
        }
        let timeout = self.inner.config.connect_timeout;
        let tls = self.inner.tls.as_ref();
        let upstream = Upstream::connect(backend, tls, timeout, READ_CHUNK).await?;
        if self.upstreams.len() >= MAX_UPSTREAMS {
            self.upstreams.remove(0);
        }
        self.upstreams.push(upstream);
        Ok(self.upstreams.len() - 1)
    }

    /// Sends the request and waits for the final response head; 1xx heads are relayed.
    async fn send_and_read_head(
        &mut self,
        backend: &Arc<BackendState>,
        r: &Request,
    ) -> io::Result<Result<(usize, Response), Failure>> {
        let i = match self.upstream(backend).await {
            Ok(i) => i,
            Err(failure) => return Ok(Err(failure)),
        };
        let up = &mut self.upstreams[i];
        if let Err(e) = up.stream.write_all(&self.req).await {
            return Ok(Err(Failure::Lost(format!(
                "sending the request failed: {e}"
            ))));
        }
        let timeout = self.inner.config.response_timeout;
        let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
        up.buf.clear();
        loop {
            let route = &up.backend.route;
            match head::parse_response(&up.buf, r.head_method, r.keep_alive, route, &mut self.resp)
            {
                RespHead::Ready(resp) if resp.interim => {
                    self.client.write_all(&self.resp).await?;
                    up.buf.drain(..resp.head_len);
                }
                RespHead::Ready(resp) => return Ok(Ok((i, resp))),
                RespHead::Bad(why) => return Ok(Err(Failure::Lost(why))),
                RespHead::Partial => {
                    if up.buf.capacity() - up.buf.len() < READ_CHUNK / 4 {
                        up.buf.reserve(READ_CHUNK);
                    }
                    let read = up.stream.read_buf(&mut up.buf);
                    let n = match deadline {
                        None => read.await,
                        Some(d) => match self.deadline.run(d, read).await {
                            Some(n) => n,
                            None => return Ok(Err(Failure::Timeout)),
                        },
                    };
                    match n {
                        Ok(0) if up.buf.is_empty() => {
                            let why = "backend closed the connection before answering";
                            return Ok(Err(Failure::Lost(why.into())));
                        }
                        Ok(0) => {
                            let why = "backend closed the connection in the response head";
                            return Ok(Err(Failure::Lost(why.into())));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            return Ok(Err(Failure::Lost(format!("reading the response: {e}"))))
                        }
                    }
                }
            }
        }
    }

    /// Sends the response head (already in `resp`) and the body to the client.
    async fn relay(&mut self, i: usize, response: Response) -> io::Result<Next> {
        let up = &mut self.upstreams[i];
        let mut chunked = ChunkedEnd::default();
        // Body bytes still expected after those in the buffer; None = until a chunked end
        // or, for UntilClose, until the backend closes.
        let mut left = match response.body {
            RespBody::Length(n) => Some(n),
            RespBody::Empty => Some(0),
            RespBody::Chunked | RespBody::UntilClose => None,
        };
        let mut done = left == Some(0);
        let mut pending = &up.buf[response.head_len..];
        let mut stray = false;
        let mut first = true;
        loop {
            let take = match (response.body, left) {
                (RespBody::Chunked, _) => match chunked.feed(pending) {
                    Ok(Some(n)) => {
                        done = true;
                        n
                    }
                    Ok(None) => pending.len(),
                    Err(why) => return broken(up, why),
                },
                (_, Some(n)) => {
                    let take = n.min(pending.len() as u64);
                    left = Some(n - take);
                    done = n == take;
                    take as usize
                }
                (_, None) => pending.len(),
            };
            stray |= take < pending.len();
            if first {
                self.resp.extend_from_slice(&pending[..take]);
                self.client.write_all(&self.resp).await?;
                first = false;
            } else if take > 0 {
                self.client.write_all(&pending[..take]).await?;
            }
            if done {
                break;
            }
            up.buf.clear();
            if up.buf.capacity() < READ_CHUNK {
                up.buf.reserve(READ_CHUNK);
            }
            match up.stream.read_buf(&mut up.buf).await {
                Ok(0) if response.body == RespBody::UntilClose => break,
                Ok(0) => return broken(up, "backend closed the connection mid-response"),
                Ok(_) => pending = &up.buf[..],
                Err(e) => return broken(up, &e.to_string()),
            }
        }
        if stray || !response.reusable {
            let backend = up.backend.clone();
            self.drop_upstream(&backend);
        }
        Ok(if response.close_client {
            Next::Close
        } else {
            Next::KeepAlive
        })
    }

    fn drop_upstream(&mut self, backend: &Arc<BackendState>) {
        self.upstreams.retain(|u| !Arc::ptr_eq(&u.backend, backend));
    }
}

/// The request being served, as [`retry::forward`] tries it on backends.
struct ThisRequest<'a> {
    conn: &'a mut Conn,
    request: &'a Request,
}

impl Attempt for ThisRequest<'_> {
    type Answer = Next;
    type Error = io::Error;

    fn attempt(
        &mut self,
        backend: &Arc<BackendState>,
    ) -> impl Future<Output = io::Result<Result<Next, Failure>>> + Send {
        self.conn.attempt(backend, self.request)
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

/// The response was cut off after part of it reached the client: all that is left is to
/// close the client connection, so the client sees a truncated message, not a wrong one.
fn broken(up: &Upstream, why: &str) -> io::Result<Next> {
    up.backend
        .set_last_error(format!("response relay failed: {why}"));
    Err(io::Error::new(io::ErrorKind::BrokenPipe, why.to_string()))
}
