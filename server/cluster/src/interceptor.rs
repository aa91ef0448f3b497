//! The interceptor contract and the ordered stack.
//!
//! Send runs top-down (index 0 first), receive bottom-up. Each layer takes one message and
//! pushes zero or more (Fragmentation splits, Order holds back and later releases, a filter
//! drops). A layer sees only messages whose option bits match its `option_flag` (0 = all);
//! the others pass it untouched. Wasm interceptors (shoal-plugin-host) implement this trait.
use crate::frame::MsgId;
use crate::member::{Member, MemberId};
use crate::options::SendOptions;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMessage {
    /// Assigned by the sending node before the stack runs.
    pub id: MsgId,
    /// On receive: who sent it. On send: the local member.
    pub from: MemberId,
    /// On send: where it goes (a layer may narrow the list). On receive: empty.
    pub destinations: Vec<MemberId>,
    pub options: SendOptions,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("interceptor {interceptor}: {reason}")]
pub struct InterceptorError {
    pub interceptor: String,
    pub reason: String,
}

impl InterceptorError {
    pub fn new(interceptor: &str, reason: impl Into<String>) -> Self {
        InterceptorError {
            interceptor: interceptor.to_string(),
            reason: reason.into(),
        }
    }
}

pub trait Interceptor: Send {
    /// Stable name shown in the admin API (e.g. `Order`, `Encrypt`, `wasm:audit`).
    fn name(&self) -> &str;
    /// Option bits this layer acts on; 0 = every message.
    fn option_flag(&self) -> u32 {
        0
    }
    fn on_send(
        &mut self,
        _now: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        out.push(msg);
        Ok(())
    }
    fn on_receive(
        &mut self,
        _now: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        out.push(msg);
        Ok(())
    }
    /// Called once when the stack is given to a node: the local member (e.g. for Coordinator).
    fn attach(&mut self, _local: &Member) {}
    fn member_added(&mut self, _now: Instant, _member: &Member) {}
    fn member_disappeared(&mut self, _now: Instant, _member: &Member) {}
    /// Periodic tick. Returns messages released on the receive path (they continue upward
    /// from the layer above this one), e.g. Order giving up on a gap.
    fn heartbeat(&mut self, _now: Instant) -> Vec<ChannelMessage> {
        Vec::new()
    }
    /// Counters for the admin API and metrics, e.g. `("tx_messages", 42)`.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// Effective configuration, for display.
    fn describe(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// For typed access to a native layer (e.g. `Coordinator::coordinator()`), see
    /// `InterceptorStack::get::<T>()`. Wasm interceptors keep the default.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// The ordered stack. Index 0 is the top (closest to the application).
#[derive(Default)]
pub struct InterceptorStack {
    layers: Vec<Layer>,
    /// Set by `attach`; layers inserted later are attached too.
    local: Option<Member>,
}

struct Layer {
    inner: Box<dyn Interceptor>,
    counts: LayerCounts,
}

/// What the stack counted for one layer (beyond the layer's own counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerCounts {
    /// Messages handed to the layer on send / on receive (matching its flag).
    pub send_in: u64,
    pub receive_in: u64,
    /// Messages that skipped it because their options did not match its flag.
    pub skipped: u64,
    /// Errors it returned.
    pub errors: u64,
    /// Messages it released from heartbeat.
    pub released: u64,
}

/// One layer as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    pub position: usize,
    pub name: String,
    pub option_flag: u32,
    pub config: Vec<(String, String)>,
    pub counters: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StackError {
    #[error("no interceptor named '{0}' in the stack")]
    NotFound(String),
    #[error("an interceptor named '{0}' is already in the stack")]
    Duplicate(String),
    #[error("position {position} is out of range (the stack has {len} layers)")]
    OutOfRange { position: usize, len: usize },
}

/// Where one message is on its way through the stack.
type Batch = Vec<ChannelMessage>;

impl InterceptorStack {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    /// Layer names, top first.
    pub fn names(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|l| l.inner.name().to_string())
            .collect()
    }
    fn position(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.inner.name() == name)
    }
    /// Adds a layer at the bottom (closest to the network).
    pub fn push(&mut self, layer: Box<dyn Interceptor>) -> Result<(), StackError> {
        let at = self.layers.len();
        self.insert(at, layer)
    }
    /// Builder form of `push` for a fixed stack assembled in code.
    pub fn with(mut self, layer: Box<dyn Interceptor>) -> Result<Self, StackError> {
        self.push(layer)?;
        Ok(self)
    }
    pub fn insert(
        &mut self,
        position: usize,
        layer: Box<dyn Interceptor>,
    ) -> Result<(), StackError> {
        if self.position(layer.name()).is_some() {
            return Err(StackError::Duplicate(layer.name().to_string()));
        }
        if position > self.layers.len() {
            return Err(StackError::OutOfRange {
                position,
                len: self.layers.len(),
            });
        }
        let mut layer = layer;
        if let Some(local) = &self.local {
            layer.attach(local);
        }
        self.layers.insert(
            position,
            Layer {
                inner: layer,
                counts: LayerCounts::default(),
            },
        );
        Ok(())
    }
    pub fn remove(&mut self, name: &str) -> Result<Box<dyn Interceptor>, StackError> {
        let i = self
            .position(name)
            .ok_or_else(|| StackError::NotFound(name.to_string()))?;
        Ok(self.layers.remove(i).inner)
    }
    /// Moves layer `name` to `position` (0 = top).
    pub fn move_to(&mut self, name: &str, position: usize) -> Result<(), StackError> {
        let i = self
            .position(name)
            .ok_or_else(|| StackError::NotFound(name.to_string()))?;
        if position >= self.layers.len() {
            return Err(StackError::OutOfRange {
                position,
                len: self.layers.len(),
            });
        }
        let l = self.layers.remove(i);
        self.layers.insert(position, l);
        Ok(())
    }
    /// Reorders the whole stack to `names` (must name every layer exactly once).
    pub fn reorder(&mut self, names: &[&str]) -> Result<(), StackError> {
        for n in names {
            self.position(n)
                .ok_or_else(|| StackError::NotFound(n.to_string()))?;
        }
        if let Some(missing) = self
            .layers
            .iter()
            .find(|l| !names.contains(&l.inner.name()))
        {
            return Err(StackError::NotFound(format!(
                "{} (missing from the new order)",
                missing.inner.name()
            )));
        }
        for (pos, n) in names.iter().enumerate() {
            self.move_to(n, pos)?;
        }
        Ok(())
    }
    /// Typed access to a native layer by its concrete type.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.layers
            .iter()
            .find_map(|l| l.inner.as_any().and_then(|a| a.downcast_ref::<T>()))
    }
    pub fn counts(&self, name: &str) -> Option<LayerCounts> {
        self.position(name).map(|i| self.layers[i].counts)
    }

    /// Runs the send path top-down. The result may hold more (split) or fewer messages.
    pub fn run_send(
        &mut self,
        now: Instant,
        msg: ChannelMessage,
    ) -> Result<Batch, InterceptorError> {
        let mut cur = vec![msg];
        for layer in self.layers.iter_mut() {
            cur = run_layer(layer, now, cur, true)?;
            if cur.is_empty() {
                break;
            }
        }
        Ok(cur)
    }

    /// Runs the receive path bottom-up.
    pub fn run_receive(
        &mut self,
        now: Instant,
        msg: ChannelMessage,
    ) -> Result<Batch, InterceptorError> {
        let n = self.layers.len();
        self.receive_from(now, n, vec![msg])
    }

    /// Receive path through the layers above `below` (exclusive), bottom-up.
    fn receive_from(
        &mut self,
        now: Instant,
        below: usize,
        mut cur: Batch,
    ) -> Result<Batch, InterceptorError> {
        for layer in self.layers[..below].iter_mut().rev() {
            cur = run_layer(layer, now, cur, false)?;
            if cur.is_empty() {
                break;
            }
        }
        Ok(cur)
    }

    /// Tells every layer the local member (the node does this when it takes the stack).
    pub fn attach(&mut self, local: &Member) {
        self.local = Some(local.clone());
        for l in self.layers.iter_mut() {
            l.inner.attach(local);
        }
    }
    pub fn member_added(&mut self, now: Instant, member: &Member) {
        for l in self.layers.iter_mut() {
            l.inner.member_added(now, member);
        }
    }
    pub fn member_disappeared(&mut self, now: Instant, member: &Member) {
        for l in self.layers.iter_mut() {
            l.inner.member_disappeared(now, member);
        }
    }

    /// Ticks every layer, bottom first; what a layer releases continues up the receive path
    /// from the layer above it. Returns what reaches the top (for the application). A release
    /// refused by a layer above is dropped and counted there.
    pub fn heartbeat(&mut self, now: Instant) -> Batch {
        let mut up = Vec::new();
        for i in (0..self.layers.len()).rev() {
            let released = self.layers[i].inner.heartbeat(now);
            if released.is_empty() {
                continue;
            }
            self.layers[i].counts.released += released.len() as u64;
            for m in released {
                match self.receive_from(now, i, vec![m]) {
                    Ok(out) => up.extend(out),
                    Err(e) => {
                        tracing::warn!(error = %e, "a message released by heartbeat was refused")
                    }
                }
            }
        }
        up
    }

    /// For the admin API: each layer's configuration and counters, top first.
    pub fn describe(&self) -> Vec<LayerInfo> {
        self.layers
            .iter()
            .enumerate()
            .map(|(position, l)| {
                let mut counters: Vec<(String, u64)> = l
                    .inner
                    .counters()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                let c = l.counts;
                counters.extend([
                    ("stack_send_in".to_string(), c.send_in),
                    ("stack_receive_in".to_string(), c.receive_in),
                    ("stack_skipped".to_string(), c.skipped),
                    ("stack_errors".to_string(), c.errors),
                    ("stack_released".to_string(), c.released),
                ]);
                LayerInfo {
                    position,
                    name: l.inner.name().to_string(),
                    option_flag: l.inner.option_flag(),
                    config: l.inner.describe(),
                    counters,
                }
            })
            .collect()
    }
}

/// One layer over a batch; messages whose options do not match its flag pass untouched.
fn run_layer(
    layer: &mut Layer,
    now: Instant,
    batch: Batch,
    send: bool,
) -> Result<Batch, InterceptorError> {
    let flag = layer.inner.option_flag();
    let mut out = Vec::with_capacity(batch.len());
    for m in batch {
        if !m.options.matches(flag) {
            layer.counts.skipped += 1;
            out.push(m);
            continue;
        }
        let r = if send {
            layer.counts.send_in += 1;
            layer.inner.on_send(now, m, &mut out)
        } else {
            layer.counts.receive_in += 1;
            layer.inner.on_receive(now, m, &mut out)
        };
        if let Err(e) = r {
            layer.counts.errors += 1;
            return Err(e);
        }
    }
    Ok(out)
}
