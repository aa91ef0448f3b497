//! One lazily re-armed timer per connection instead of one timer per read.
//!
//! Registering a tokio timer for every request (a `timeout` around each read) costs a timer
//! wheel insertion and removal, and often a wake-up of the runtime's own driver (an eventfd
//! write) so it re-computes its sleep. Deadlines here are far away (30 s for a request
//! head, 60 s for a response) and move forward with every request, so the connection keeps
//! one `Sleep` armed at some earlier deadline; when it fires, the current deadline is
//! checked and the timer re-armed only then: one timer operation per timeout period, not
//! per request.

use std::future::Future;

use tokio::time::{Instant, Sleep};

pub(crate) struct Deadline {
    sleep: std::pin::Pin<Box<Sleep>>,
}

impl Deadline {
    pub fn new(first: Instant) -> Self {
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(first)),
        }
    }

    /// Runs `work` until it completes (`Some`) or `deadline` passes (`None`).
    pub async fn run<F: Future>(&mut self, deadline: Instant, work: F) -> Option<F::Output> {
        // The armed timer must not fire later than this deadline; re-arm only if it would.
        if self.sleep.deadline() > deadline {
            self.sleep.as_mut().reset(deadline);
        }
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return Some(out),
                () = &mut self.sleep => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    self.sleep.as_mut().reset(deadline);
                }
            }
        }
    }
}
