//! The receive side handed to the application: the [`Incoming`] queue, each
//! [`IncomingMessage`], and the [`Completion`] a synchronized-ack message carries back to the
//! driver (as a `Command::Complete`).
use crate::backlog::AppBacklog;
use crate::command::Command;
use shoal_cluster::{MemberId, MsgId, SendOptions};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A message from a member. With `SYNCHRONIZED_ACK` it carries a [`Completion`]: the sender's
/// send finishes only when the application calls `complete` (dropping it reports a failure).
#[derive(Debug)]
pub struct IncomingMessage {
    pub from: MemberId,
    pub id: MsgId,
    pub options: SendOptions,
    pub payload: Vec<u8>,
    pub completion: Option<Completion>,
}

#[derive(Debug)]
pub struct Completion {
    pub(crate) cmd: mpsc::UnboundedSender<Command>,
    pub(crate) from: MemberId,
    pub(crate) id: MsgId,
    pub(crate) done: bool,
}

impl Completion {
    /// The message was processed: the sender sees `Processed`.
    pub fn complete(mut self) {
        self.finish(Ok(()));
    }
    /// Processing failed: the sender sees `Failed(reason)`.
    pub fn fail(mut self, reason: impl Into<String>) {
        self.finish(Err(reason.into()));
    }
    fn finish(&mut self, result: Result<(), String>) {
        if !self.done {
            self.done = true;
            let _ = self.cmd.send(Command::Complete {
                from: self.from,
                id: self.id,
                result,
            });
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(Err(
            "the receiving application dropped the message without completing it".into(),
        ));
    }
}

/// Messages received by this node, in arrival order.
pub struct Incoming {
    pub(crate) rx: mpsc::UnboundedReceiver<IncomingMessage>,
    pub(crate) backlog: Arc<AppBacklog>,
}

impl Incoming {
    /// The next message; `None` once the channel has shut down.
    pub async fn recv(&mut self) -> Option<IncomingMessage> {
        let m = self.rx.recv().await?;
        self.backlog.take(m.payload.len());
        Some(m)
    }
}
