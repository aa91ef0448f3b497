//! The driver: one task owns the sans-io `Node` and is its only caller. It selects over
//! commands from `Channel` handles, socket events, and a sleep until `poll_timeout`; after
//! each batch of inputs it carries out the node's actions and dispatches its events.
//!
//! It never awaits a connection task (writes go to unbounded per-connection queues whose
//! asynchronous share is bounded by the MessageDispatch semaphore), so no cycle of full
//! channels between two nodes can deadlock.
//!
//! Files: this one holds the loop, command and socket-event handling and the node's actions;
//! `events` the node's events (membership, deliveries, send outcomes), `stack` live stack
//! changes, `stats` the counter snapshot.
mod events;
mod stack;
mod stats;

use crate::command::Command;
use crate::conn::{self, ConnHandle, IoEvent, WriteItem};
use crate::incoming::IncomingMessage;
use crate::shared::Shared;
use crate::types::{Outcome, SendReport};
use shoal_cluster::{Action, Body, ConnId, Direction, FrameCodec, MemberId, MsgId, Node};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

/// Inputs drained per wake-up before the node's output is processed (amortises the flush).
const BATCH: usize = 256;

pub(crate) struct Driver {
    pub(crate) node: Node,
    pub(crate) conns: HashMap<ConnId, ConnHandle>,
    /// Connections with frames not yet handed to their writer (see `flush_writes`).
    pub(crate) dirty: Vec<ConnId>,
    /// Outbound connects in flight; a Close before they finish cancels them.
    pub(crate) connecting: HashSet<ConnId>,
    /// Which member a connection belongs to, learned from its handshake frames (counters only).
    pub(crate) conn_member: HashMap<ConnId, MemberId>,
    /// Waiting callers of non-asynchronous sends, with their destinations (for shutdown).
    pub(crate) pending: HashMap<MsgId, (Vec<MemberId>, oneshot::Sender<SendReport>)>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) incoming: mpsc::UnboundedSender<IncomingMessage>,
    pub(crate) cmd_tx: mpsc::WeakUnboundedSender<Command>,
    pub(crate) io_tx: mpsc::Sender<IoEvent>,
    pub(crate) ctl_tx: mpsc::Sender<IoEvent>,
    pub(crate) codec: FrameCodec,
    pub(crate) connect_timeout: Duration,
    pub(crate) verify_timeout: Duration,
    /// MessageDispatch permit of the asynchronous send being processed; rides on its frames.
    pub(crate) permit: Option<Arc<OwnedSemaphorePermit>>,
    pub(crate) bad_frames: u64,
    /// Data payload bytes read in the current iteration (not yet counted in the backlog).
    pub(crate) batch_bytes: usize,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Driver {
    pub(crate) async fn run(
        mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<Command>,
        mut ctl_rx: mpsc::Receiver<IoEvent>,
        mut io_rx: mpsc::Receiver<IoEvent>,
    ) {
        let mut done: Option<oneshot::Sender<()>> = None;
        let backlog = self.shared.backlog.clone();
        'outer: loop {
            let deadline = self.node.poll_timeout().map(tokio::time::Instant::from_std);
            // The application is behind: leave frames unread (TCP pushes back on the peers).
            let paused = backlog.full();
            tokio::select! {
                biased;
                Some(ev) = ctl_rx.recv() => self.on_io(ev),
                io = io_rx.recv(), if !paused => if let Some(ev) = io { self.on_io(ev) },
                _ = backlog.room.notified(), if paused => {}
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::Shutdown(tx)) => { done = Some(tx); break 'outer; }
                    Some(c) => self.on_command(c),
                    None => break 'outer,
                },
                _ = sleep_until_opt(deadline) => {}
            }
            while let Ok(ev) = ctl_rx.try_recv() {
                self.on_io(ev);
            }
            for _ in 0..BATCH {
                // Frames read this iteration become Received events only in `pump`.
                if backlog.would_fill(self.batch_bytes) {
                    break;
                }
                if let Ok(ev) = io_rx.try_recv() {
                    self.on_io(ev);
                } else {
                    break;
                }
            }
            for _ in 0..BATCH {
                match cmd_rx.try_recv() {
                    Ok(Command::Shutdown(tx)) => {
                        done = Some(tx);
                        break 'outer;
                    }
                    Ok(c) => self.on_command(c),
                    Err(_) => break,
                }
            }
            self.pump();
            self.flush_writes();
            self.batch_bytes = 0;
        }
        self.shutdown().await;
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }

    /// Runs due timers, then carries out every action and dispatches every event.
    pub(crate) fn pump(&mut self) {
        loop {
            let now = Instant::now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
            let mut progressed = false;
            while let Some(a) = self.node.poll_action() {
                self.act(a);
                progressed = true;
            }
            while let Some(e) = self.node.poll_event() {
                self.on_event(e);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Send {
                dests,
                payload,
                opts,
                permit,
                reply,
            } => {
                self.permit = permit.map(Arc::new);
                let id = self.node.send(now, &dests, payload, opts);
                if let Some(r) = reply {
                    self.pending.insert(id, (dests, r));
                }
                // Frames of this message leave now and carry its permit.
                while let Some(a) = self.node.poll_action() {
                    self.act(a);
                }
                self.permit = None;
            }
            Command::Complete { from, id, result } => self.node.complete(now, from, id, result),
            Command::Interceptors(tx) => {
                let _ = tx.send(self.node.stack().describe());
            }
            Command::Stack { change, reply } => {
                let _ = reply.send(self.change_stack(now, change));
            }
            Command::Stats(tx) => {
                let _ = tx.send(self.stats());
            }
            Command::Leave(tx) => {
                self.node.leave(now);
                self.pump();
                let _ = tx.send(());
            }
            Command::Shutdown(_) => {}
        }
    }

    fn on_io(&mut self, ev: IoEvent) {
        let now = Instant::now();
        match ev {
            IoEvent::Connected {
                conn,
                dir,
                peer,
                stream,
            } => {
                if dir == Direction::Outbound && !self.connecting.remove(&conn) {
                    return; // closed by the node while connecting: dropping the stream closes it
                }
                let h = conn::spawn(conn, stream, peer, self.codec.clone(), self.io_tx.clone());
                self.conns.insert(conn, h);
                self.node.handle_connected(now, conn, dir, peer);
            }
            IoEvent::ConnectFailed { conn, reason } => {
                if self.connecting.remove(&conn) {
                    tracing::debug!(?conn, "{reason}");
                    self.node.handle_connect_failed(now, conn, reason);
                }
            }
            IoEvent::Frames { conn, frames } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                for env in frames {
                    if let Body::Data { payload, .. } = &env.body {
                        self.batch_bytes += payload.len();
                    }
                    if let Body::Hello { member, .. } | Body::HelloAck { member, .. } = &env.body {
                        self.conn_member.insert(conn, member.id);
                    }
                    self.node.handle_frame(now, conn, env);
                }
            }
            IoEvent::Disconnected {
                conn,
                reason,
                bad_frame,
            } => {
                if let Some(h) = self.conns.remove(&conn) {
                    h.reader.abort();
                    self.conn_member.remove(&conn);
                    if bad_frame {
                        self.bad_frames += 1;
                    }
                    self.node.handle_disconnected(now, conn, reason);
                }
            }
            IoEvent::ProbeResult { member, result } => {
                self.node.handle_probe_result(now, member, result)
            }
            IoEvent::Candidates { source, addrs } => {
                for a in addrs {
                    if a == self.shared.local.addr || self.is_member_addr(a) {
                        continue;
                    }
                    tracing::trace!(%a, source, "candidate");
                    self.node.handle_candidate(now, a);
                }
            }
        }
    }

    fn is_member_addr(&self, a: SocketAddr) -> bool {
        self.shared
            .members
            .read()
            .map(|m| m.iter().any(|m| m.addr == a))
            .unwrap_or(false)
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Connect { conn, addr } => {
                self.connecting.insert(conn);
                let (io_tx, timeout) = (self.ctl_tx.clone(), self.connect_timeout);
                tokio::spawn(async move {
                    let ev = match conn::connect(addr, timeout).await {
                        Ok(stream) => IoEvent::Connected {
                            conn,
                            dir: Direction::Outbound,
                            peer: addr,
                            stream,
                        },
                        Err(reason) => IoEvent::ConnectFailed { conn, reason },
                    };
                    let _ = io_tx.send(ev).await;
                });
            }
            Action::Send { conn, bytes } => {
                let item = WriteItem {
                    bytes,
                    _permit: self.permit.clone(),
                };
                match self.conns.get_mut(&conn) {
                    Some(h) => {
                        if h.write(item) {
                            self.dirty.push(conn);
                        }
                    }
                    None => tracing::trace!(?conn, "send on a closed connection dropped"),
                }
            }
            Action::Close { conn, reason } => {
                self.connecting.remove(&conn);
                self.conn_member.remove(&conn);
                if let Some(mut h) = self.conns.remove(&conn) {
                    tracing::debug!(?conn, "closing connection: {reason}");
                    h.flush();
                    // Dropping the write queue lets the writer flush (e.g. a Refused) and close.
                    h.reader.abort();
                }
            }
            Action::Probe { member, addr } => {
                let (io_tx, timeout, codec) =
                    (self.ctl_tx.clone(), self.verify_timeout, self.codec.clone());
                tokio::spawn(async move {
                    let result = conn::probe(addr, timeout, codec).await;
                    let _ = io_tx.send(IoEvent::ProbeResult { member, result }).await;
                });
            }
        }
    }

    /// Hands every connection's frames of this iteration to its writer.
    pub(crate) fn flush_writes(&mut self) {
        for conn in self.dirty.drain(..) {
            if let Some(h) = self.conns.get_mut(&conn) {
                h.flush();
            }
        }
    }

    async fn shutdown(mut self) {
        self.node.leave(Instant::now());
        self.pump();
        self.flush_writes();
        // Dropping each write queue lets its writer send what is queued (the Leave frames),
        // then half-close. The readers keep reading, and the listener keeps accepting, until
        // the peers, having applied the Leave, close their side: closing first would answer
        // their in-flight frames with a reset (which can discard the Leave before they read
        // it) and refuse their failure probes, and they would drop this node as crashed
        // instead of left.
        let (writers, readers): (Vec<JoinHandle<()>>, Vec<JoinHandle<()>>) = self
            .conns
            .drain()
            .map(|(_, h)| (h.writer, h.reader))
            .unzip();
        for (id, (dests, tx)) in self.pending.drain() {
            let why = "the channel shut down before the send completed";
            let results = dests
                .into_iter()
                .map(|d| (d, Outcome::Failed(why.into())))
                .collect();
            let _ = tx.send(SendReport {
                id: Some(id),
                results,
            });
        }
        // Give the Leave frames a moment to reach the wire, and the peers a moment to close
        // their side; a stuck peer cannot hold us.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            for w in writers {
                let _ = w.await;
            }
        })
        .await;
        let aborts: Vec<_> = readers.iter().map(|r| r.abort_handle()).collect();
        let _ = tokio::time::timeout(Duration::from_millis(300), async {
            for r in readers {
                let _ = r.await;
            }
        })
        .await;
        for a in aborts {
            a.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
        self.shared.close_queue();
        tracing::info!("cluster channel stopped");
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
