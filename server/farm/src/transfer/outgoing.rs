//! The sender side of one transfer to one receiver (keyed by receiver and digest): a window of chunks in flight above the
//! receiver's cumulative ack. The receiver drives retries (it re-sends `Want` from its
//! cursor after a stall), so the sender needs no timer of its own.
use crate::transfer::plan::chunk_len;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) size: u64,
    /// The receiver has everything below this.
    pub(crate) acked: u64,
    /// Reads were issued up to here.
    pub(crate) next: u64,
    pub(crate) last_activity: Instant,
    /// Acks in a row that did not advance: three mean a chunk was lost (resend from the ack).
    dup_acks: u32,
}

impl Outgoing {
    pub(crate) fn new(size: u64, from: u64, now: Instant) -> Self {
        Outgoing {
            size,
            acked: from.min(size),
            next: from.min(size),
            last_activity: now,
            dup_acks: 0,
        }
    }

    /// The (offset, len) of the next chunk to read and send, if the window has room for it
    /// (at most `window` chunks beyond the ack). `issue` sends it.
    pub(crate) fn peek(&self, chunk: u64, window: u64) -> Option<(u64, u64)> {
        (self.next < self.size && self.next - self.acked < window * chunk)
            .then(|| (self.next, chunk_len(self.size, chunk, self.next)))
    }

    /// The chunk `peek` returned is sent.
    pub(crate) fn issue(&mut self, len: u64) {
        self.next += len;
    }

    pub(crate) fn ack(&mut self, next: u64, now: Instant) {
        if next > self.acked {
            self.acked = next.min(self.size);
            self.next = self.next.max(self.acked);
            self.last_activity = now;
            self.dup_acks = 0;
        } else if next == self.acked && self.next > self.acked {
            self.dup_acks += 1;
            if self.dup_acks >= 3 {
                self.next = self.acked;
                self.dup_acks = 0;
            }
        }
    }

    /// Restarts the window at the receiver's cursor (it asked again after a stall).
    pub(crate) fn restart(&mut self, from: u64, now: Instant) {
        self.acked = from.min(self.size);
        self.next = self.acked;
        self.last_activity = now;
        self.dup_acks = 0;
    }

    pub(crate) fn done(&self) -> bool {
        self.acked >= self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_a_window_leaves_beyond_the_ack() {
        let now = Instant::now();
        let mut o = Outgoing::new(10 * 100, 0, now);
        let mut sent = 0;
        while let Some((off, len)) = o.peek(100, 3) {
            assert_eq!(off, sent);
            o.issue(len);
            sent += len;
        }
        assert_eq!(
            sent, 300,
            "three chunks of 100 bytes, then the window is full"
        );
        o.ack(100, now);
        assert_eq!(o.peek(100, 3), Some((300, 100)));
        o.issue(100);
        assert_eq!(o.peek(100, 3), None);
    }
}
