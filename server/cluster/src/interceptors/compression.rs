//! Compression: deflate above a size threshold (Tomcat's GzipInterceptor; names kept:
//! min_compression_size, 0 = always). A flag byte says whether the payload is compressed;
//! when deflate does not make it smaller, it travels raw. Inflation is bounded so a bogus
//! payload cannot exhaust memory.
use super::opts::Opts;
use crate::interceptor::{ChannelMessage, Interceptor, InterceptorError};
use flate2::{Compress, Compression as Level, Decompress, FlushCompress, FlushDecompress, Status};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressionConfig {
    pub option_flag: u32,
    /// Payloads smaller than this travel raw (Tomcat: minCompressionSize, 0 = always).
    /// Each compressed message costs ~15 µs of deflate setup: for small session deltas a
    /// threshold of 1024 or more is usually the better trade.
    pub min_compression_size: usize,
    /// Deflate level 0-9 (6 = zlib's default).
    pub level: u32,
    /// Largest inflated payload accepted.
    pub max_inflated: usize,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            option_flag: 0,
            min_compression_size: 0,
            level: 6,
            max_inflated: 256 * 1024 * 1024,
        }
    }
}

impl CompressionConfig {
    pub const KEYS: &'static [&'static str] = &[
        "option_flag",
        "min_compression_size",
        "level",
        "max_inflated",
    ];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let d = Self::default();
        let mut r = Opts::new("Compression", o);
        let c = CompressionConfig {
            option_flag: r.option_flag(d.option_flag)?,
            min_compression_size: r.usize("min_compression_size", d.min_compression_size)?,
            level: r.u32("level", d.level)?,
            max_inflated: r.usize("max_inflated", d.max_inflated)?,
        };
        r.finish(Self::KEYS)?;
        if c.level > 9 {
            return Err(format!(
                "interceptor Compression: option 'level' = {} is not between 0 and 9",
                c.level
            ));
        }
        Ok(c)
    }
}

const RAW: u8 = 0;
const DEFLATED: u8 = 1;

pub struct Compression {
    pub config: CompressionConfig,
    pub compressed: u64,
    pub raw: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Reused between messages: a fresh deflate state costs ~20 µs of allocation and
    /// zeroing, more than compressing a 1 KiB message.
    comp: Compress,
    decomp: Decompress,
}

impl Compression {
    pub fn new(config: CompressionConfig) -> Self {
        Compression {
            comp: Compress::new(Level::new(config.level), false),
            decomp: Decompress::new(false),
            config,
            compressed: 0,
            raw: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Flag byte + raw deflate of `data`, or None when it would not be smaller.
    fn deflate(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        self.comp.reset();
        let mut out = Vec::with_capacity(data.len() + 1);
        out.push(DEFLATED);
        loop {
            let (in_before, out_before) = (self.comp.total_in(), self.comp.total_out());
            let consumed = in_before as usize;
            let st = self
                .comp
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Finish)
                .ok()?;
            if st == Status::StreamEnd {
                return Some(out);
            }
            let stuck = self.comp.total_in() == in_before && self.comp.total_out() == out_before;
            if stuck || out.len() > data.len() {
                // No room left within the raw size: not worth it.
                return None;
            }
        }
    }

    /// Inflates at most `limit` bytes; a longer, truncated or corrupt stream is an error.
    /// (Flush `None`: with `Finish`, miniz wants the whole output space in the first call.)
    fn inflate(&mut self, input: &[u8], limit: usize) -> Result<Vec<u8>, InterceptorError> {
        self.decomp.reset(false);
        let mut out = Vec::with_capacity(input.len().saturating_mul(4).clamp(64, limit.max(64)));
        loop {
            let (in_before, out_before) = (self.decomp.total_in(), self.decomp.total_out());
            let consumed = in_before as usize;
            let st = self
                .decomp
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::None)
                .map_err(|e| Self::err(format!("corrupt compressed payload: {e}")))?;
            if st == Status::StreamEnd {
                return Ok(out);
            }
            if out.len() > limit {
                return Err(Self::err(format!(
                    "inflated payload exceeds max_inflated ({limit} bytes)"
                )));
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity().min(limit + 1 - out.len().min(limit)).max(64));
            } else if self.decomp.total_in() == in_before && self.decomp.total_out() == out_before {
                return Err(Self::err(
                    "corrupt compressed payload: truncated deflate stream",
                ));
            }
        }
    }

    fn err(reason: impl Into<String>) -> InterceptorError {
        InterceptorError::new("Compression", reason)
    }
}

impl Interceptor for Compression {
    fn name(&self) -> &str {
        "Compression"
    }
    fn option_flag(&self) -> u32 {
        self.config.option_flag
    }
    fn on_send(
        &mut self,
        _now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        self.bytes_in += msg.payload.len() as u64;
        let packed = if msg.payload.len() >= self.config.min_compression_size {
            self.deflate(&msg.payload)
                .filter(|c| c.len() < msg.payload.len() + 1)
        } else {
            None
        };
        msg.payload = match packed {
            Some(c) => {
                self.compressed += 1;
                c
            }
            None => {
                self.raw += 1;
                let mut p = Vec::with_capacity(msg.payload.len() + 1);
                p.push(RAW);
                p.extend_from_slice(&msg.payload);
                p
            }
        };
        self.bytes_out += msg.payload.len() as u64;
        out.push(msg);
        Ok(())
    }
    fn on_receive(
        &mut self,
        _now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        match msg.payload.first() {
            Some(&RAW) => {
                msg.payload.remove(0);
            }
            Some(&DEFLATED) => {
                let limit = self.config.max_inflated;
                msg.payload = self.inflate(&msg.payload[1..], limit)?;
            }
            _ => {
                return Err(Self::err(
                    "missing compression flag: is Compression configured on the sender?",
                ))
            }
        }
        out.push(msg);
        Ok(())
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("compressed", self.compressed),
            ("raw", self.raw),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
        ]
    }
    fn describe(&self) -> Vec<(String, String)> {
        vec![
            (
                "min_compression_size".into(),
                self.config.min_compression_size.to_string(),
            ),
            ("level".into(), self.config.level.to_string()),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
