//! Waiting for a condition with a deadline: tests observe other tasks, threads and
//! processes, so they poll instead of sleeping a fixed time.
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `cond` until it holds; fails the test after `within` with
/// `timed out after {within:?} waiting for: {what}`.
pub async fn eventually(what: &str, within: Duration, cond: impl FnMut() -> bool) {
    assert!(
        poll(within, cond).await,
        "timed out after {within:?} waiting for: {what}"
    );
}

/// Polls `cond` until it holds or `within` passes; whether it held (it is asked once more
/// at the deadline). For callers that explain a timeout with state read at that moment.
pub async fn poll(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    cond()
}

/// [`eventually`] for tests without a runtime (the thread sleeps between polls).
pub fn eventually_blocking(what: &str, within: Duration, cond: impl FnMut() -> bool) {
    assert!(
        poll_blocking(within, cond),
        "timed out after {within:?} waiting for: {what}"
    );
}

/// [`poll`] for tests without a runtime (the thread sleeps between polls).
pub fn poll_blocking(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(POLL_EVERY);
    }
    cond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_turns_true_is_seen() {
        let start = Instant::now();
        assert!(poll_blocking(Duration::from_secs(5), || start.elapsed()
            > Duration::from_millis(50)));
    }

    #[test]
    fn a_condition_that_never_holds_times_out() {
        assert!(!poll_blocking(Duration::from_millis(50), || false));
    }

    #[test]
    #[should_panic(expected = "waiting for: the moon")]
    fn the_failure_names_what_was_awaited() {
        eventually_blocking("the moon", Duration::from_millis(30), || false);
    }

    #[tokio::test]
    async fn the_async_forms_agree() {
        assert!(poll(Duration::from_secs(1), || true).await);
        assert!(!poll(Duration::from_millis(50), || false).await);
        eventually("nothing", Duration::from_secs(1), || true).await;
    }
}
