//! The backend side of a lean connection: reuse or open the connection to the chosen
//! backend, send the request, read the response head and relay the body.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Conn, Next, READ_CHUNK};
use crate::backend::BackendState;
use crate::chunked::ChunkedEnd;
use crate::head::{self, Request, RespBody, RespHead, Response};
use crate::proxy::Failure;

/// Backend connections kept per client connection; more are closed oldest first.
const MAX_UPSTREAMS: usize = 4;

/// A kept-alive connection to one backend, owned by one client connection.
pub(super) struct Upstream {
    pub backend: Arc<BackendState>,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Upstream {
    /// False if the backend closed the connection (or sent stray bytes) while it was idle.
    /// Costs no system call unless the socket became readable, which an idle one is not.
    fn alive(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl Conn {
    /// One try on `backend`. The outer error is the client's connection failing (give up
    /// the connection); the inner one a backend that produced no response.
    pub(super) async fn attempt(
        &mut self,
        backend: &Arc<BackendState>,
        r: &Request,
    ) -> io::Result<Result<Next, Failure>> {
        backend.requests.fetch_add(1, Ordering::Relaxed);
        backend.outstanding.fetch_add(1, Ordering::Relaxed);
        let head = self.send_and_read_head(backend, r).await;
        backend.outstanding.fetch_sub(1, Ordering::Relaxed);
        match head {
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
        let connect = TcpStream::connect(backend.authority.as_str());
        let stream = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let addr = &backend.authority;
                return Err(Failure::NotSent(format!("cannot connect to {addr}: {e}")));
            }
            Err(_) => {
                let ms = timeout.as_millis();
                let why = format!("no connection to {} within {ms} ms", backend.authority);
                return Err(Failure::NotSent(why));
            }
        };
        let _ = stream.set_nodelay(true);
        if self.upstreams.len() >= MAX_UPSTREAMS {
            self.upstreams.remove(0);
        }
        self.upstreams.push(Upstream {
            backend: backend.clone(),
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
        });
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
}

/// The response was cut off after part of it reached the client: all that is left is to
/// close the client connection, so the client sees a truncated message, not a wrong one.
fn broken(up: &Upstream, why: &str) -> io::Result<Next> {
    up.backend
        .set_last_error(format!("response relay failed: {why}"));
    Err(io::Error::new(io::ErrorKind::BrokenPipe, why.to_string()))
}
