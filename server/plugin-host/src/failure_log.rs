//! Rate limiting of the "plugin call failed" log line. A plugin that traps on every request
//! (or on every health probe of a balancer, twice a second) would otherwise write one
//! warning with a multi-line backtrace per call and bury everything else in the log.
//!
//! The first failure of a kind is logged in full. Identical failures (same generation, kind
//! and first line of the reason) within [`WINDOW`] after it are only counted; the next one
//! after the window is logged with how many were left out (`repeated=N`). Counters and the
//! failure policy are not affected: every failure is still counted and answered.
//!
//! Sans-io: [`FailureLog::admit`] takes the time, so the rule is tested without a clock.
use std::time::{Duration, Instant};

/// How long identical failures are only counted after one was logged.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// What to do with one failure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it; `repeated` identical failures were left out since the last one written.
    Log { repeated: u64 },
    /// Count it only.
    Suppress,
}

#[derive(Default)]
pub(crate) struct FailureLog {
    /// The failure last written: its key and when.
    last: Option<(String, Instant)>,
    /// Identical failures left out since then.
    suppressed: u64,
}

impl FailureLog {
    /// `key` identifies a failure (generation, kind, the reason's first line).
    pub(crate) fn admit(&mut self, key: &str, now: Instant) -> Verdict {
        match &self.last {
            Some((k, at)) if k == key && now.saturating_duration_since(*at) < WINDOW => {
                self.suppressed += 1;
                Verdict::Suppress
            }
            Some((k, _)) if k == key => {
                let repeated = std::mem::take(&mut self.suppressed);
                self.last = Some((key.to_owned(), now));
                Verdict::Log { repeated }
            }
            _ => {
                // A different failure: the count of the previous one is reported with it.
                let repeated = std::mem::take(&mut self.suppressed);
                self.last = Some((key.to_owned(), now));
                Verdict::Log { repeated }
            }
        }
    }
}

/// The key of a failure: the generation, kind and the first line of the reason (a trap's
/// backtrace follows on the next lines).
pub(crate) fn key(generation: u64, kind: &str, reason: &str) -> String {
    let first = reason.lines().next().unwrap_or("");
    format!("{generation}/{kind}/{first}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_failures_are_counted_and_reported_after_the_window() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        let k = key(1, "trap", "wasm trap: unreachable\n  0: backtrace line");
        assert_eq!(log.admit(&k, t0), Verdict::Log { repeated: 0 });
        for i in 1..=269u64 {
            let at = t0 + Duration::from_millis(i * 30);
            assert_eq!(log.admit(&k, at), Verdict::Suppress, "failure {i}");
        }
        let after = t0 + WINDOW + Duration::from_millis(1);
        assert_eq!(log.admit(&k, after), Verdict::Log { repeated: 269 });
        assert_eq!(
            log.admit(&k, after + Duration::from_secs(1)),
            Verdict::Suppress
        );
    }

    #[test]
    fn a_different_failure_is_logged_at_once() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        let trap = key(1, "trap", "unreachable");
        let timeout = key(1, "timeout", "took longer than 100 ms");
        assert_eq!(log.admit(&trap, t0), Verdict::Log { repeated: 0 });
        assert_eq!(log.admit(&trap, t0), Verdict::Suppress);
        assert_eq!(log.admit(&timeout, t0), Verdict::Log { repeated: 1 });
        // A new generation is a new failure too.
        assert_eq!(
            log.admit(&key(2, "timeout", "took longer than 100 ms"), t0),
            Verdict::Log { repeated: 0 }
        );
    }

    #[test]
    fn only_the_first_line_of_the_reason_identifies_it() {
        assert_eq!(
            key(3, "trap", "boom\nat a\nat b"),
            key(3, "trap", "boom\nat c")
        );
    }
}
