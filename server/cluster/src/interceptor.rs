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
        InterceptorError { interceptor: interceptor.to_string(), reason: reason.into() }
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
}

/// The ordered stack. Index 0 is the top (closest to the application).
#[derive(Default)]
pub struct InterceptorStack {
    layers: Vec<Box<dyn Interceptor>>,
}
