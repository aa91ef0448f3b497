//! Order: per-sender FIFO (Tomcat's OrderInterceptor).
//!
//! Send: each destination gets its own copy stamped with the next sequence number of that
//! (sender → destination) pair, as an 8-byte big-endian header. Receive: messages from a
//! sender are released in sequence order; one that arrives early waits. A gap (a message
//! that never comes: its send failed) is given up after `expire`, or at once when more than
//! `max_queue` messages wait; the wait is then skipped and counted. A message older than
//! what was already released is dropped (and counted): order is never violated.
use super::opts::Opts;
use crate::interceptor::{ChannelMessage, Interceptor, InterceptorError};
use crate::member::{Member, MemberId};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderConfig {
    pub option_flag: u32,
    /// How long an out-of-order message waits for the gap before it (Tomcat: expire, 3000).
    pub expire: Duration,
    /// Most messages held per sender before the gap is skipped (Tomcat: maxQueue).
    pub max_queue: usize,
}

impl Default for OrderConfig {
    fn default() -> Self {
        OrderConfig {
            option_flag: 0,
            expire: Duration::from_millis(3000),
            max_queue: 10_000,
        }
    }
}

impl OrderConfig {
    pub const KEYS: &'static [&'static str] = &["option_flag", "expire", "max_queue"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let d = Self::default();
        let mut r = Opts::new("Order", o);
        let c = OrderConfig {
            option_flag: r.option_flag(d.option_flag)?,
            expire: r.millis("expire", d.expire)?,
            max_queue: r.usize("max_queue", d.max_queue)?,
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
}

#[derive(Default)]
struct Inbound {
    /// Next sequence to release.
    next: u64,
    /// Early messages: seq → (arrival, message).
    held: BTreeMap<u64, (Instant, ChannelMessage)>,
}

#[derive(Default)]
pub struct Order {
    pub config: OrderConfig,
    /// Next sequence per destination.
    out_seq: HashMap<MemberId, u64>,
    inbound: HashMap<MemberId, Inbound>,
    pub held_total: u64,
    pub gaps_skipped: u64,
    pub dropped_late: u64,
}

const HEADER: usize = 8;

impl Order {
    pub fn new(config: OrderConfig) -> Self {
        Order {
            config,
            ..Default::default()
        }
    }
    /// Messages currently held back, over all senders.
    pub fn waiting(&self) -> usize {
        self.inbound.values().map(|i| i.held.len()).sum()
    }
    fn release_run(inb: &mut Inbound, out: &mut Vec<ChannelMessage>) {
        while let Some(entry) = inb.held.first_entry() {
            if *entry.key() != inb.next {
                break;
            }
            out.push(entry.remove().1);
            inb.next += 1;
        }
    }
    /// Skips the gap before the first held message and releases what follows it.
    fn skip_gap(&mut self, from: MemberId, out: &mut Vec<ChannelMessage>) {
        let Some(inb) = self.inbound.get_mut(&from) else {
            return;
        };
        if let Some((&first, _)) = inb.held.first_key_value() {
            tracing::warn!(sender = ?from, missing = first - inb.next, "Order: gave up waiting for missing messages");
            inb.next = first;
            self.gaps_skipped += 1;
            Self::release_run(inb, out);
        }
    }
}

impl Interceptor for Order {
    fn name(&self) -> &str {
        "Order"
    }
    fn option_flag(&self) -> u32 {
        self.config.option_flag
    }
    fn on_send(
        &mut self,
        _now: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        for d in &msg.destinations {
            let seq = self.out_seq.entry(*d).or_insert(0);
            let mut payload = Vec::with_capacity(HEADER + msg.payload.len());
            payload.extend_from_slice(&seq.to_be_bytes());
            payload.extend_from_slice(&msg.payload);
            *seq += 1;
            out.push(ChannelMessage {
                destinations: vec![*d],
                payload,
                ..msg.clone()
            });
        }
        Ok(())
    }
    fn on_receive(
        &mut self,
        now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        if msg.payload.len() < HEADER {
            return Err(InterceptorError::new(
                "Order",
                "message shorter than the Order header: is Order configured on the sender?",
            ));
        }
        let mut b = [0u8; HEADER];
        b.copy_from_slice(&msg.payload[..HEADER]);
        let seq = u64::from_be_bytes(b);
        msg.payload.drain(..HEADER);
        let from = msg.from;
        let inb = self.inbound.entry(from).or_default();
        if seq < inb.next || inb.held.contains_key(&seq) {
            self.dropped_late += 1;
            return Ok(());
        }
        if seq == inb.next {
            out.push(msg);
            inb.next += 1;
            Self::release_run(inb, out);
            return Ok(());
        }
        inb.held.insert(seq, (now, msg));
        self.held_total += 1;
        if inb.held.len() > self.config.max_queue {
            self.skip_gap(from, out);
        }
        Ok(())
    }
    fn heartbeat(&mut self, now: Instant) -> Vec<ChannelMessage> {
        let expire = self.config.expire;
        let late: Vec<MemberId> = self
            .inbound
            .iter()
            .filter(|(_, i)| {
                i.held
                    .values()
                    .next()
                    .is_some_and(|(t, _)| now >= *t + expire)
            })
            .map(|(m, _)| *m)
            .collect();
        let mut out = Vec::new();
        for m in late {
            self.skip_gap(m, &mut out);
        }
        out
    }
    fn member_disappeared(&mut self, _now: Instant, member: &Member) {
        self.out_seq.remove(&member.id);
        self.inbound.remove(&member.id);
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("held_total", self.held_total),
            ("waiting", self.waiting() as u64),
            ("gaps_skipped", self.gaps_skipped),
            ("dropped_late", self.dropped_late),
        ]
    }
    fn describe(&self) -> Vec<(String, String)> {
        vec![
            (
                "expire".into(),
                format!("{}ms", self.config.expire.as_millis()),
            ),
            ("max_queue".into(), self.config.max_queue.to_string()),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
