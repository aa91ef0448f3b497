//! What the handles ([`crate::Channel`], [`crate::Completion`]) ask of the driver task: one
//! `Command` per request, sent over the driver's unbounded command channel; replies come
//! back on the oneshot senders the commands carry.
use crate::stats::ChannelStats;
use crate::types::SendReport;
use shoal_cluster::{Interceptor, LayerInfo, MemberId, MsgId, SendOptions, StackError};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

pub(crate) enum Command {
    Send {
        dests: Vec<MemberId>,
        payload: Vec<u8>,
        opts: SendOptions,
        permit: Option<OwnedSemaphorePermit>,
        reply: Option<oneshot::Sender<SendReport>>,
    },
    Complete {
        from: MemberId,
        id: MsgId,
        result: Result<(), String>,
    },
    Stats(oneshot::Sender<ChannelStats>),
    /// The interceptor stack's layers with their configuration and live counters.
    Interceptors(oneshot::Sender<Vec<LayerInfo>>),
    /// Changes the live stack between two messages (see `Channel::insert_interceptor`).
    Stack {
        change: StackChange,
        reply: oneshot::Sender<Result<(), StackError>>,
    },
    Leave(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// A change of the live interceptor stack.
pub(crate) enum StackChange {
    /// At `position` (0 = top), or at the bottom (closest to the network) when `None`.
    Insert {
        position: Option<usize>,
        layer: Box<dyn Interceptor>,
    },
    Remove(String),
    /// Moves the named layers, in this order, into the positions they occupy together.
    Reorder(Vec<String>),
}
