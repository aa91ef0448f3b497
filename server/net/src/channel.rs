//! The public handle of a running channel: send, receive, membership, counters, shutdown.
use crate::command::{Command, StackChange};
use crate::discovery::Discovery;
use crate::error::{NetError, StackChangeError};
use crate::incoming::Incoming;
use crate::settings::ChannelSettings;
use crate::shared::Shared;
use crate::start::{self, Started};
use crate::stats::ChannelStats;
use crate::types::{MembershipEvent, Outcome, SendReport};
use shoal_cluster::{Interceptor, InterceptorStack, LayerInfo, Member, MemberId, SendOptions};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A running channel. Cheap to clone; the node stops on `shutdown` or when every clone is gone.
#[derive(Clone)]
pub struct Channel {
    pub(crate) cmd: mpsc::UnboundedSender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl Channel {
    /// Binds the receiver, starts discovery from `settings.membership` and the driver task.
    pub async fn start(
        settings: ChannelSettings,
        stack: InterceptorStack,
    ) -> Result<(Channel, Incoming), NetError> {
        Self::start_with(settings, stack, Vec::new()).await
    }

    /// Like `start`, with extra discovery providers (e.g. the in-memory twin in tests).
    pub async fn start_with(
        settings: ChannelSettings,
        stack: InterceptorStack,
        extra: Vec<Box<dyn Discovery>>,
    ) -> Result<(Channel, Incoming), NetError> {
        let Started {
            cmd,
            shared,
            incoming,
        } = start::start(settings, stack, extra).await?;
        Ok((Channel { cmd, shared }, incoming))
    }

    pub fn local(&self) -> &Member {
        &self.shared.local
    }

    /// Current members (without the local node).
    pub fn members(&self) -> Vec<Member> {
        match self.shared.members.read() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Bytes in the asynchronous (MessageDispatch) send queue now: admitted, not yet
    /// written. Lets a producer hold back before the queue's own bound makes it wait.
    pub fn queue_bytes_in_use(&self) -> usize {
        self.shared
            .queue_capacity()
            .saturating_sub(self.shared.queue_available())
    }

    pub fn member_by_name(&self, name: &str) -> Option<Member> {
        self.members().into_iter().find(|m| m.name == name)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<MembershipEvent> {
        self.shared.events.subscribe()
    }

    /// Sends `payload` to `dests`. Without ASYNCHRONOUS it waits for every outcome (an ack
    /// timeout names the members that did not answer). With ASYNCHRONOUS it waits only for
    /// room in the MessageDispatch queue (backpressure; `queue_full` counts the waits) and
    /// reports `Queued`; outcomes then show in the per-peer counters.
    pub async fn send(
        &self,
        dests: &[MemberId],
        payload: Vec<u8>,
        opts: SendOptions,
    ) -> SendReport {
        // A tight loop of asynchronous sends never waits while the queue has room; yielding
        // by the cooperative budget lets the driver (woken on this worker) run in between.
        tokio::task::consume_budget().await;
        let permit = if opts.has(SendOptions::ASYNCHRONOUS) {
            match self.shared.admit(payload.len() * dests.len().max(1)).await {
                Some(p) => Some(p),
                None => return self.failed(dests, "the channel has shut down"),
            }
        } else {
            None
        };
        let (reply, rx) = if permit.is_some() {
            (None, None)
        } else {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        };
        let cmd = Command::Send {
            dests: dests.to_vec(),
            payload,
            opts,
            permit,
            reply,
        };
        if self.cmd.send(cmd).is_err() {
            return self.failed(dests, "the channel has shut down");
        }
        match rx {
            None => SendReport {
                id: None,
                results: dests.iter().map(|d| (*d, Outcome::Queued)).collect(),
            },
            Some(rx) => match rx.await {
                Ok(r) => r,
                Err(_) => self.failed(dests, "the channel shut down before the send completed"),
            },
        }
    }

    /// Like [`Channel::send`], but the message is enqueued before this returns, so messages
    /// leave in call order even when the futures are awaited later or concurrently (what
    /// replication needs). Asynchronous sends that find the MessageDispatch queue full fall
    /// back to waiting for room inside the future (their order is then kept by the caller's
    /// versions, not the queue).
    pub fn send_now(
        &self,
        dests: &[MemberId],
        payload: Vec<u8>,
        opts: SendOptions,
    ) -> impl std::future::Future<Output = SendReport> + Send + 'static {
        let this = self.clone();
        let dests_v = dests.to_vec();
        // Ok(reply receiver, if the driver took the command) for a send enqueued now;
        // Err(payload) for an asynchronous send, which must first wait for queue room.
        let pending = if opts.has(SendOptions::ASYNCHRONOUS) {
            Err(payload)
        } else {
            let (tx, rx) = oneshot::channel();
            let cmd = Command::Send {
                dests: dests_v.clone(),
                payload,
                opts,
                permit: None,
                reply: Some(tx),
            };
            Ok(self.cmd.send(cmd).is_ok().then_some(rx))
        };
        async move {
            match pending {
                Err(payload) => this.send(&dests_v, payload, opts).await,
                Ok(Some(rx)) => match rx.await {
                    Ok(r) => r,
                    Err(_) => {
                        this.failed(&dests_v, "the channel shut down before the send completed")
                    }
                },
                Ok(None) => this.failed(&dests_v, "the channel has shut down"),
            }
        }
    }

    /// Sends to every current member.
    pub async fn send_all(&self, payload: Vec<u8>, opts: SendOptions) -> SendReport {
        let dests: Vec<MemberId> = self.members().iter().map(|m| m.id).collect();
        self.send(&dests, payload, opts).await
    }

    /// Channel-wide and per-peer counters.
    pub async fn stats(&self) -> ChannelStats {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Stats(tx)).is_err() {
            return ChannelStats::default();
        }
        rx.await.unwrap_or_default()
    }

    /// The interceptor stack, top first, with each layer's configuration and live counters
    /// (empty once the channel has stopped).
    pub async fn interceptors(&self) -> Vec<LayerInfo> {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Interceptors(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Inserts `layer` into the live stack at `position` (0 = top), or at the bottom
    /// (closest to the network) when `None`. Like the other stack changes it is enqueued
    /// before this returns, so changes made one after the other apply in that order even if
    /// the futures are awaited later (or dropped). The change lands between two messages:
    /// see `driver/stack.rs` for what that means for messages in flight. The layer is told
    /// about the current members (`member_added`) before it joins.
    pub fn insert_interceptor(
        &self,
        position: Option<usize>,
        layer: Box<dyn Interceptor>,
    ) -> impl std::future::Future<Output = Result<(), StackChangeError>> + Send + 'static {
        self.change_stack(StackChange::Insert { position, layer })
    }

    /// Removes the layer `name` from the live stack (messages it holds are dropped with it).
    pub fn remove_interceptor(
        &self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<(), StackChangeError>> + Send + 'static {
        self.change_stack(StackChange::Remove(name.to_string()))
    }

    /// Puts the named layers, in this order, into the positions they occupy together; the
    /// other layers keep their place (e.g. reorders the `wasm:` layers among themselves).
    pub fn reorder_interceptors(
        &self,
        names: &[&str],
    ) -> impl std::future::Future<Output = Result<(), StackChangeError>> + Send + 'static {
        let names = names.iter().map(|n| n.to_string()).collect();
        self.change_stack(StackChange::Reorder(names))
    }

    fn change_stack(
        &self,
        change: StackChange,
    ) -> impl std::future::Future<Output = Result<(), StackChangeError>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let sent = self.cmd.send(Command::Stack { change, reply }).is_ok();
        async move {
            if !sent {
                return Err(StackChangeError::Closed);
            }
            rx.await
                .map_err(|_| StackChangeError::Closed)?
                .map_err(Into::into)
        }
    }

    /// Tells every member this node is leaving (they drop it at once, reason `Left`).
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Leave(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Leaves, flushes the connections and stops every task of the channel.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    fn failed(&self, dests: &[MemberId], why: &str) -> SendReport {
        SendReport {
            id: None,
            results: dests
                .iter()
                .map(|d| (*d, Outcome::Failed(why.into())))
                .collect(),
        }
    }
}
