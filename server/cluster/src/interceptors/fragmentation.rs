//! Fragmentation: splits messages above `max_size` and reassembles them (Tomcat's
//! FragmentationInterceptor: maxSize 100 KiB, expire 60 s).
//!
//! Every message through this layer carries a tag byte: 0 = whole, 1 = fragment, followed
//! for fragments by the original message id (u64), the index and the count (u32 each, BE).
//! The reassembled message carries the original id (the first fragment's frame id), so a
//! synchronized_ack sender gets its Processed ack. Incomplete messages expire.
use super::opts::Opts;
use crate::frame::MsgId;
use crate::interceptor::{ChannelMessage, Interceptor, InterceptorError};
use crate::member::{Member, MemberId};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentationConfig {
    pub option_flag: u32,
    /// Largest payload sent in one piece (Tomcat: maxSize, 102400).
    pub max_size: usize,
    /// Incomplete messages are dropped after this (Tomcat: expire, 60000 ms).
    pub expire: Duration,
    /// Largest reassembled message accepted (guards memory against a bogus count).
    pub max_message: usize,
}

impl Default for FragmentationConfig {
    fn default() -> Self {
        FragmentationConfig {
            option_flag: 0,
            max_size: 100 * 1024,
            expire: Duration::from_secs(60),
            max_message: 256 * 1024 * 1024,
        }
    }
}

impl FragmentationConfig {
    pub const KEYS: &'static [&'static str] = &["option_flag", "max_size", "expire", "max_message"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let d = Self::default();
        let mut r = Opts::new("Fragmentation", o);
        let c = FragmentationConfig {
            option_flag: r.option_flag(d.option_flag)?,
            max_size: r.usize("max_size", d.max_size)?.max(1),
            expire: r.millis("expire", d.expire)?,
            max_message: r.usize("max_message", d.max_message)?,
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
}

const WHOLE: u8 = 0;
const PIECE: u8 = 1;
const PIECE_HEADER: usize = 1 + 8 + 4 + 4;

struct Partial {
    started: Instant,
    count: u32,
    pieces: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
    first: ChannelMessage,
}

#[derive(Default)]
pub struct Fragmentation {
    pub config: FragmentationConfig,
    partial: HashMap<(MemberId, MsgId), Partial>,
    pub split: u64,
    pub fragments_sent: u64,
    pub reassembled: u64,
    pub expired: u64,
}

impl Fragmentation {
    pub fn new(config: FragmentationConfig) -> Self {
        Fragmentation {
            config,
            ..Default::default()
        }
    }
    fn err(reason: impl Into<String>) -> InterceptorError {
        InterceptorError::new("Fragmentation", reason)
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Interceptor for Fragmentation {
    fn name(&self) -> &str {
        "Fragmentation"
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
        let max = self.config.max_size;
        if msg.payload.len() <= max {
            let mut payload = Vec::with_capacity(1 + msg.payload.len());
            payload.push(WHOLE);
            payload.extend_from_slice(&msg.payload);
            out.push(ChannelMessage { payload, ..msg });
            return Ok(());
        }
        let count = msg.payload.len().div_ceil(max);
        let count32 =
            u32::try_from(count).map_err(|_| Self::err("message too large to fragment"))?;
        self.split += 1;
        for (i, chunk) in msg.payload.chunks(max).enumerate() {
            let mut payload = Vec::with_capacity(PIECE_HEADER + chunk.len());
            payload.push(PIECE);
            payload.extend_from_slice(&msg.id.to_be_bytes());
            payload.extend_from_slice(&(i as u32).to_be_bytes());
            payload.extend_from_slice(&count32.to_be_bytes());
            payload.extend_from_slice(chunk);
            out.push(ChannelMessage {
                id: msg.id,
                from: msg.from,
                destinations: msg.destinations.clone(),
                options: msg.options,
                payload,
            });
            self.fragments_sent += 1;
        }
        Ok(())
    }
    fn on_receive(
        &mut self,
        now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        match msg.payload.first() {
            Some(&WHOLE) => {
                msg.payload.remove(0);
                out.push(msg);
                return Ok(());
            }
            Some(&PIECE) if msg.payload.len() >= PIECE_HEADER => {}
            _ => {
                return Err(Self::err(
                    "missing or bad fragment tag: is Fragmentation configured on the sender?",
                ))
            }
        }
        let p = &msg.payload;
        let orig = u64::from_be_bytes([p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]]);
        let (index, count) = (be_u32(&p[9..13]), be_u32(&p[13..17]));
        if count == 0 || index >= count {
            return Err(Self::err(format!(
                "fragment {index} of {count} is out of range"
            )));
        }
        let key = (msg.from, orig);
        let chunk = msg.payload[PIECE_HEADER..].to_vec();
        let max_message = self.config.max_message;
        // Non-empty pieces and a bounded count keep a bogus header from growing memory.
        if count as usize > max_message || (chunk.is_empty() && index + 1 != count) {
            return Err(Self::err(format!(
                "fragment {index} of {count} is malformed"
            )));
        }
        let entry = self.partial.entry(key).or_insert_with(|| Partial {
            started: now,
            count,
            pieces: BTreeMap::new(),
            bytes: 0,
            first: ChannelMessage {
                id: orig,
                payload: Vec::new(),
                ..msg.clone()
            },
        });
        if entry.count != count {
            self.partial.remove(&key);
            return Err(Self::err(
                "fragments of one message disagree on their count",
            ));
        }
        entry.bytes += chunk.len();
        if entry.bytes > max_message {
            self.partial.remove(&key);
            return Err(Self::err(format!(
                "reassembled message exceeds max_message ({max_message} bytes)"
            )));
        }
        entry.pieces.insert(index, chunk);
        if entry.pieces.len() as u32 == count {
            if let Some(done) = self.partial.remove(&key) {
                let mut whole = done.first;
                whole.payload = done.pieces.into_values().flatten().collect();
                self.reassembled += 1;
                out.push(whole);
            }
        }
        Ok(())
    }
    fn heartbeat(&mut self, now: Instant) -> Vec<ChannelMessage> {
        let expire = self.config.expire;
        let before = self.partial.len();
        self.partial.retain(|_, p| now < p.started + expire);
        self.expired += (before - self.partial.len()) as u64;
        Vec::new()
    }
    fn member_disappeared(&mut self, _now: Instant, member: &Member) {
        self.partial.retain(|(m, _), _| *m != member.id);
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("split", self.split),
            ("fragments_sent", self.fragments_sent),
            ("reassembled", self.reassembled),
            ("expired", self.expired),
            ("incomplete", self.partial.len() as u64),
        ]
    }
    fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("max_size".into(), self.config.max_size.to_string()),
            (
                "expire".into(),
                format!("{}ms", self.config.expire.as_millis()),
            ),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
