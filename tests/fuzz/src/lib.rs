//! What the balancer's differential targets share: hyper, the reference, run over bytes in
//! memory with no runtime, no timer and no socket, so that every execution is a few
//! microseconds and deterministic. The peer never closes: once its bytes are read, reads
//! stay pending (an EOF would make hyper drop a request it has read but not yet served),
//! and [`drive`] stops polling when nothing moves any more.
//!
//! - [`hyper_server_reads`]: what a hyper HTTP/1.1 server reads from a client's bytes (every
//!   request of a pipeline: method, target, headers, body, or where it gave up). hyper's
//!   client is no reference for a stream of responses: it refuses bytes that arrive before
//!   it sent a request, so the chunked target asks the server side, which decodes chunked
//!   bodies with the same decoder.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::{Request, Response};

/// One side of a connection whose peer already sent `input` and then closed; what we write
/// is discarded.
struct Wire {
    input: Vec<u8>,
    at: usize,
    /// Set once every byte was read (then reads stay pending).
    drained: Rc<Cell<bool>>,
}

impl Read for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at == self.input.len() {
            self.drained.set(true);
            return Poll::Pending;
        }
        let n = buf.remaining().min(self.input.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.input[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// Polls without progress after the input is drained before [`drive`] gives up: hyper
/// hands a body's frames between its connection and the body through channels, which takes
/// a few polls per frame.
const STALL_POLLS: u32 = 64;

/// Polls `fut` (with a no-op waker: everything here is ready or never will be) until it
/// ends, or until the input is drained and `progress` stayed the same for a few polls.
fn drive<F: Future>(
    fut: F,
    drained: &Cell<bool>,
    progress: impl Fn() -> usize,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let (mut last, mut still) = (usize::MAX, 0);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        if drained.get() {
            let now = progress();
            if now == last {
                still += 1;
                if still >= STALL_POLLS {
                    return None;
                }
            } else {
                (last, still) = (now, 0);
            }
        }
    }
}

impl Write for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The body of a request whose head hyper read but whose body had not ended when the input
/// did (it reads the request as longer than what was sent).
pub const BODY_NEVER_ENDED: &str = "the body never ended";

/// A request as hyper read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// The request target as sent (origin form: path and query).
    pub target: String,
    /// Every header line, names lower-cased, in hyper's map order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, or why hyper could not read all of it.
    pub body: Result<Vec<u8>, String>,
}

impl SeenRequest {
    /// The values of header `name` (lower case), in order.
    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// The requests a hyper server (default settings, keep-alive) reads from `input`, in order.
pub fn hyper_server_reads(input: &[u8]) -> Vec<SeenRequest> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let sink = sink.clone();
        async move {
            let (parts, body) = req.into_parts();
            // Recorded as soon as the head is read: a body hyper never finishes (it reads
            // the request as longer than the input) still shows, as an error.
            let at = {
                let mut seen = sink.borrow_mut();
                seen.push(SeenRequest {
                    method: parts.method.to_string(),
                    target: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_else(|| parts.uri.to_string()),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                        .collect(),
                    body: Err(BODY_NEVER_ENDED.into()),
                });
                seen.len() - 1
            };
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .map_err(|e| e.to_string());
            sink.borrow_mut()[at].body = body;
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }
    });
    let drained = Rc::new(Cell::new(false));
    let wire = Wire {
        input: input.to_vec(),
        at: 0,
        drained: drained.clone(),
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(wire, service);
    let _ = drive(conn, &drained, || seen.borrow().len());
    let out = seen.borrow().clone();
    out
}
