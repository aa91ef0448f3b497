//! Pacing of the chunks sent to one receiver: a token bucket of `rate` bytes per second
//! holding at most `burst` bytes. Deploy traffic then takes a bounded share of the link and
//! of the CPUs that copy, frame and write it (on every node: the sender's channel, the
//! receiver's channel and disk), so the session replication sharing them keeps its latency.
//! A sender that is not woken on time (a busy farm thread) does not catch up in a burst:
//! the bucket never holds more than `burst`.
use std::time::{Duration, Instant};

/// The pacing of one transfer direction (this node → one receiver).
#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    /// Bytes per second.
    rate: u64,
    /// The most the bucket holds (≥ one chunk, or a chunk could never leave).
    burst: u64,
    /// Bytes that may leave now, as of `at`.
    tokens: f64,
    at: Instant,
}

impl Pacer {
    /// A full bucket: the first `burst` bytes leave at once.
    pub(crate) fn new(rate: u64, burst: u64, now: Instant) -> Self {
        Pacer {
            rate: rate.max(1),
            burst: burst.max(1),
            tokens: burst.max(1) as f64,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let earned = now.duration_since(self.at).as_secs_f64() * self.rate as f64;
            self.tokens = (self.tokens + earned).min(self.burst as f64);
            self.at = now;
        }
    }

    /// Takes `len` bytes' worth of tokens if the bucket holds them.
    pub(crate) fn take(&mut self, now: Instant, len: u64) -> bool {
        self.refill(now);
        // A chunk longer than the bucket leaves when the bucket is full.
        let need = len.min(self.burst) as f64;
        if self.tokens + 1e-6 >= need {
            self.tokens -= need;
            true
        } else {
            false
        }
    }

    /// When `len` bytes may leave (a time in the past if they may already).
    pub(crate) fn ready_at(&self, len: u64) -> Instant {
        let missing = len.min(self.burst) as f64 - self.tokens;
        if missing <= 0.0 {
            return self.at;
        }
        // Rounded up to the next microsecond, so that a wake-up at that time finds the tokens.
        let us = (missing * 1e6 / self.rate as f64).ceil() as u64 + 1;
        self.at + Duration::from_micros(us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_a_burst_then_releases_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 300, t0);
        assert!(p.take(t0, 100) && p.take(t0, 100) && p.take(t0, 100));
        assert!(!p.take(t0, 100), "the burst is spent");
        let at = p.ready_at(100);
        assert!(at > t0 + Duration::from_millis(99) && at <= t0 + Duration::from_millis(101));
        assert!(p.take(at, 100));
        // A long idle time refills only up to the burst.
        let later = at + Duration::from_secs(60);
        assert!(p.take(later, 300));
        assert!(!p.take(later, 1));
    }

    #[test]
    fn a_chunk_larger_than_the_burst_leaves_on_a_full_bucket() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 100, t0);
        assert!(p.take(t0, 500));
        assert!(!p.take(t0, 500));
        let at = p.ready_at(500);
        assert!(p.take(at, 500));
    }
}
