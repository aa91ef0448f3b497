//! The simulated network: per-message delay (so reordering), drops, duplicates, bit
//! flips, and cut links between partitioned nodes. Frames travel encoded, so every
//! delivery also exercises the wire decoder.

#[derive(Clone, Debug)]
pub struct Chaos {
    /// One-way delay range in microseconds; random delays reorder messages.
    pub delay_us: (u64, u64),
    pub drop: f64,
    pub duplicate: f64,
    /// Probability that one byte of a frame is flipped (decode error or corrupted chunk).
    pub corrupt: f64,
}

impl Chaos {
    pub fn calm() -> Self {
        Chaos {
            delay_us: (200, 2_000),
            drop: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
        }
    }
    pub fn rough() -> Self {
        Chaos {
            delay_us: (200, 20_000),
            drop: 0.05,
            duplicate: 0.03,
            corrupt: 0.0,
        }
    }
}
