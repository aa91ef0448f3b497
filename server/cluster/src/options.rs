//! Send options: Tomcat's per-message flag bits, same values.
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SendOptions(pub u32);

impl SendOptions {
    /// Raw bytes, no (un)marshalling.
    pub const BYTE_MESSAGE: u32 = 0x01;
    /// The receiver acknowledges on receipt; no ack in time = failure.
    pub const USE_ACK: u32 = 0x02;
    /// The receiver acknowledges only after it has processed the message.
    pub const SYNCHRONIZED_ACK: u32 = 0x04;
    /// Queued and sent by a dispatcher (bounded queue, backpressure; never silently sync).
    pub const ASYNCHRONOUS: u32 = 0x08;
    pub const SECURE: u32 = 0x10;
    pub const UDP: u32 = 0x20;
    pub const MULTICAST: u32 = 0x40;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    /// True when the sender waits for an ack of either kind.
    pub fn wants_ack(self) -> bool {
        self.has(Self::USE_ACK) || self.has(Self::SYNCHRONIZED_ACK)
    }
    /// An interceptor with option flag `flag` sees this message (0 = all messages).
    pub fn matches(self, flag: u32) -> bool {
        flag == 0 || self.0 & flag == flag
    }
}
