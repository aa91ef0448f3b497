//! One TCP connection = a reader task and a writer task. Only this module touches sockets.
//!
//! The reader decodes frames in batches and forwards them to the driver over a bounded channel,
//! so a slow driver pushes back on the peer through TCP. The writer drains everything queued
//! and writes it with one syscall (frames are coalesced), which is what makes small
//! asynchronous messages cheap. The driver never awaits either task: no cycle can deadlock.
use crate::stats::ConnCounters;
use shoal_cluster::{Body, ConnId, Direction, Envelope, FrameCodec};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

/// Batches the writer takes from its queue at once.
const WRITE_BATCH: usize = 512;
/// Slices per `writev` (Linux IOV_MAX is 1024).
const IOV_BATCH: usize = 256;
/// Largest frame accepted before the connection has carried a Hello / HelloAck: a stranger
/// cannot make this node buffer `max_frame` bytes per connection.
const PREAUTH_MAX_FRAME: usize = 64 * 1024;
/// Initial read buffer; grows up to one max-size frame.
const READ_BUF: usize = 64 * 1024;

/// What sockets report to the driver.
pub(crate) enum IoEvent {
    Connected {
        conn: ConnId,
        dir: Direction,
        peer: SocketAddr,
        stream: TcpStream,
    },
    ConnectFailed {
        conn: ConnId,
        reason: String,
    },
    Frames {
        conn: ConnId,
        frames: Vec<Envelope>,
    },
    Disconnected {
        conn: ConnId,
        reason: String,
        bad_frame: bool,
    },
    ProbeResult {
        member: shoal_cluster::MemberId,
        result: Result<(), String>,
    },
    Candidates {
        source: &'static str,
        addrs: Vec<SocketAddr>,
    },
}

/// One queued write. The permit (asynchronous sends only) returns its bytes to the
/// MessageDispatch budget when the item is dropped, i.e. after the bytes reached the socket.
pub(crate) struct WriteItem {
    pub bytes: Vec<u8>,
    /// Held, never read: its drop is the release.
    pub _permit: Option<Arc<OwnedSemaphorePermit>>,
}

/// The driver's side of a live connection.
pub(crate) struct ConnHandle {
    pub tx: mpsc::UnboundedSender<Vec<WriteItem>>,
    /// Frames produced during the current driver iteration; handed to the writer in one
    /// message by `flush`, so a burst costs one wake-up and one `writev`, not one per frame.
    pending: Vec<WriteItem>,
    pub reader: JoinHandle<()>,
    pub writer: JoinHandle<()>,
    pub counters: Arc<ConnCounters>,
}

impl ConnHandle {
    /// Queues bytes until the next `flush`. Returns true when this made the handle dirty.
    pub(crate) fn write(&mut self, item: WriteItem) -> bool {
        ConnCounters::add(&self.counters.queued_bytes, item.bytes.len() as u64);
        self.pending.push(item);
        self.pending.len() == 1
    }

    /// Hands the pending frames to the writer; false when the writer has gone.
    pub(crate) fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut self.pending);
        let n: usize = batch.iter().map(|i| i.bytes.len()).sum();
        if self.tx.send(batch).is_err() {
            ConnCounters::sub(&self.counters.queued_bytes, n as u64);
            return false;
        }
        true
    }
}

/// Splits the stream and starts both tasks; returns the handle for the driver.
pub(crate) fn spawn(
    conn: ConnId,
    stream: TcpStream,
    peer: SocketAddr,
    codec: FrameCodec,
    io_tx: mpsc::Sender<IoEvent>,
) -> ConnHandle {
    let counters = Arc::new(ConnCounters::default());
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(conn, wr, rx, counters.clone(), io_tx.clone()));
    let reader = tokio::spawn(read_loop(conn, rd, peer, codec, counters.clone(), io_tx));
    ConnHandle {
        tx,
        pending: Vec::new(),
        reader,
        writer,
        counters,
    }
}

async fn write_loop(
    conn: ConnId,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<WriteItem>>,
    counters: Arc<ConnCounters>,
    io_tx: mpsc::Sender<IoEvent>,
) {
    let mut batches = Vec::with_capacity(WRITE_BATCH);
    let mut items = Vec::with_capacity(WRITE_BATCH);
    while rx.recv_many(&mut batches, WRITE_BATCH).await > 0 {
        // Let the tasks that are ready run first: the driver passes they trigger add their
        // frames to this write, so a busy node makes fewer, larger writes (one yield costs
        // microseconds; each writev on loopback costs the receiver's wake-up as well).
        tokio::task::yield_now().await;
        while let Ok(b) = rx.try_recv() {
            batches.push(b);
        }
        for b in batches.drain(..) {
            items.extend(b);
        }
        let frames = items.len() as u64;
        match write_items(&mut wr, &items).await {
            Ok(n) => {
                ConnCounters::sub(&counters.queued_bytes, n as u64);
                ConnCounters::add(&counters.bytes_sent, n as u64);
                ConnCounters::add(&counters.frames_sent, frames);
            }
            Err(e) => {
                let reason = format!("write failed: {e}");
                let _ = io_tx
                    .send(IoEvent::Disconnected {
                        conn,
                        reason,
                        bad_frame: false,
                    })
                    .await;
                return;
            }
        }
        // Dropping the items releases the MessageDispatch permits of what was just written.
        items.clear();
    }
    // The driver dropped the sender (Close / shutdown): everything queued is written; say goodbye.
    let _ = wr.shutdown().await;
}

/// Writes every item with vectored writes (no copy into a staging buffer); handles short writes.
async fn write_items(wr: &mut OwnedWriteHalf, items: &[WriteItem]) -> std::io::Result<usize> {
    let (mut idx, mut off, mut total) = (0usize, 0usize, 0usize);
    while idx < items.len() {
        let mut n = {
            let mut slices = Vec::with_capacity((items.len() - idx).min(IOV_BATCH));
            slices.push(std::io::IoSlice::new(&items[idx].bytes[off..]));
            for it in items[idx + 1..].iter().take(IOV_BATCH - 1) {
                slices.push(std::io::IoSlice::new(&it.bytes));
            }
            wr.write_vectored(&slices).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        total += n;
        while n > 0 && idx < items.len() {
            let rest = items[idx].bytes.len() - off;
            if n >= rest {
                n -= rest;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
        // Skip empty items so the next slice list never starts with nothing to write.
        while idx < items.len() && items[idx].bytes.len() == off {
            idx += 1;
            off = 0;
        }
    }
    Ok(total)
}

async fn read_loop(
    conn: ConnId,
    mut rd: OwnedReadHalf,
    peer: SocketAddr,
    codec: FrameCodec,
    counters: Arc<ConnCounters>,
    io_tx: mpsc::Sender<IoEvent>,
) {
    let reason = match read_frames(conn, &mut rd, &codec, &counters, &io_tx).await {
        Ok(r) => (r, false),
        Err(e) => {
            tracing::warn!(%peer, ?conn, "closing cluster connection from {peer}: {e}");
            (format!("bad frame from {peer}: {e}"), true)
        }
    };
    let _ = io_tx
        .send(IoEvent::Disconnected {
            conn,
            reason: reason.0,
            bad_frame: reason.1,
        })
        .await;
}

/// Reads until EOF or error. `Ok(reason)` for a closed/failed socket, `Err` for a bad frame.
async fn read_frames(
    conn: ConnId,
    rd: &mut OwnedReadHalf,
    codec: &FrameCodec,
    counters: &ConnCounters,
    io_tx: &mpsc::Sender<IoEvent>,
) -> Result<String, String> {
    let mut active = FrameCodec::new(codec.max_frame.min(PREAUTH_MAX_FRAME));
    let mut handshaking = true;
    let mut buf = vec![0u8; READ_BUF];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else {
                // One frame bigger than the buffer (decode already refused anything over max_frame).
                let grown = (buf.len() * 2).min(active.max_frame + 8).max(buf.len() + 1);
                buf.resize(grown, 0);
            }
        }
        let n = match rd.read(&mut buf[end..]).await {
            Ok(0) if start == end => return Ok("connection closed by peer".into()),
            Ok(0) => {
                return Ok(format!(
                    "connection closed by peer inside a frame ({} bytes pending)",
                    end - start
                ))
            }
            Ok(n) => n,
            Err(e) => return Ok(format!("read failed: {e}")),
        };
        end += n;
        ConnCounters::add(&counters.bytes_received, n as u64);
        let mut frames = Vec::new();
        let mut failure = None;
        while start < end {
            match active.decode(&buf[start..end]) {
                Ok(Some((env, used))) => {
                    if handshaking && matches!(env.body, Body::Hello { .. } | Body::HelloAck { .. })
                    {
                        // The node checks the proof; a bad one closes the connection at once.
                        handshaking = false;
                        active = codec.clone();
                    }
                    frames.push(env);
                    start += used;
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if start == end {
            (start, end) = (0, 0);
        }
        if !frames.is_empty() {
            ConnCounters::add(&counters.frames_received, frames.len() as u64);
            if io_tx.send(IoEvent::Frames { conn, frames }).await.is_err() {
                return Ok("channel shut down".into());
            }
        }
        if let Some(e) = failure {
            return Err(match (&e, handshaking) {
                (shoal_cluster::FrameError::TooLarge { len, .. }, true) => {
                    format!("frame of {len} bytes before the handshake (limit {PREAUTH_MAX_FRAME} bytes until a peer has said Hello)")
                }
                _ => e.to_string(),
            });
        }
    }
}

/// Opens an outbound member connection (TCP_NODELAY: frames are already coalesced).
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(format!("connect to {addr} failed: {e}")),
        Err(_) => Err(format!(
            "connect to {addr} timed out after {} ms",
            timeout.as_millis()
        )),
    }
}

/// TcpFailureDetector verification, handshake-free: a fresh TCP connect, then the acceptor's
/// first frame (its `Challenge`) must arrive within `timeout`. A refused connect means the
/// process is gone; a connect that the kernel accepts but no Challenge (hung or stopped
/// process, full backlog) is a failure too, so "alive" means the peer's channel is running.
pub(crate) async fn probe(
    addr: SocketAddr,
    timeout: Duration,
    codec: FrameCodec,
) -> Result<(), String> {
    let check = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("probe connect to {addr}: {e}"))?;
        let mut buf = Vec::with_capacity(256);
        loop {
            let n = s
                .read_buf(&mut buf)
                .await
                .map_err(|e| format!("probe read from {addr}: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "probe: {addr} closed the connection before its challenge"
                ));
            }
            match codec.decode(&buf) {
                Ok(Some((
                    Envelope {
                        body: Body::Challenge { .. },
                        ..
                    },
                    _,
                ))) => return Ok(()),
                Ok(Some(_)) => {
                    return Err(format!(
                        "probe: {addr} answered something other than a challenge"
                    ))
                }
                Ok(None) if buf.len() < 4096 => continue,
                Ok(None) => return Err(format!("probe: oversized first frame from {addr}")),
                Err(e) => return Err(format!("probe: bad frame from {addr}: {e}")),
            }
        }
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "probe of {addr} timed out after {} ms",
            timeout.as_millis()
        )),
    }
}
