//! A node's drain: one trigger shared by the admin API (`POST /api/v1/cluster/drain`), the
//! binary's signal handler (SIGTERM, Ctrl-C) and its control stdin (`quit`), so every way of
//! asking runs the same sequence ([`run`]). The handle records who asked, when, and how far
//! the drain got.
//!
//! Data flow: a trigger calls [`Drain::request`] → whoever runs the node wakes from
//! [`Drain::requested`] and calls [`run`] (`sequence.rs`), which reports its [`Phase`]s back
//! with [`Drain::set_phase`] → the admin backend reads [`Drain::state`] and translates it to
//! the API's `DrainStatus`. While draining, [`DrainValve`] (`valve.rs`) marks every HTTP
//! response with [`crate::roles::DRAINING_HEADER`].
mod sequence;
mod valve;

pub use sequence::{run, Progress};
pub use valve::DrainValve;

use shoal_admin::dto::now_ms;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// What asked a node to drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainTrigger {
    /// `POST /api/v1/cluster/drain` (also `shoal ctl drain`).
    Api,
    /// SIGTERM or Ctrl-C.
    Signal,
    /// `quit` on the control stdin.
    Control,
}

impl DrainTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainTrigger::Api => "api",
            DrainTrigger::Signal => "signal",
            DrainTrigger::Control => "control",
        }
    }
}

/// How far a drain got (the steps of [`run`], in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// New sessions refused; telling the balancers that joined the cluster.
    Notifying,
    /// Still serving sticky requests while static balancers see the drain in their probes.
    Grace,
    /// HTTP listener closed; requests in flight finish, then the node leaves the cluster.
    Closing,
}

/// A drain under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainState {
    pub trigger: DrainTrigger,
    pub since_ms: u64,
    pub phase: Phase,
    /// What is happening now, for people.
    pub detail: String,
}

/// The shared drain trigger of one node; cheap to clone.
#[derive(Clone)]
pub struct Drain {
    state: Arc<watch::Sender<Option<DrainState>>>,
    /// Mirrors `state.is_some()` for the per-request check of [`DrainValve`].
    draining: Arc<AtomicBool>,
}

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    pub fn new() -> Self {
        Drain {
            state: Arc::new(watch::channel(None).0),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts the drain; `Err` with the drain already under way if there is one (the first
    /// request wins, later ones change nothing).
    pub fn request(&self, trigger: DrainTrigger) -> Result<DrainState, DrainState> {
        let fresh = DrainState {
            trigger,
            since_ms: now_ms(),
            phase: Phase::Notifying,
            detail: "no new sessions; telling the balancers".into(),
        };
        let mut existing = None;
        let started = self.state.send_if_modified(|slot| match slot {
            Some(current) => {
                existing = Some(current.clone());
                false
            }
            None => {
                *slot = Some(fresh.clone());
                true
            }
        });
        if !started {
            return Err(existing.unwrap_or(fresh));
        }
        self.draining.store(true, Ordering::Release);
        tracing::info!(trigger = trigger.as_str(), "drain requested");
        Ok(fresh)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The drain under way, if any.
    pub fn state(&self) -> Option<DrainState> {
        self.state.borrow().clone()
    }

    /// Records the drain's progress (no effect if no drain was requested).
    pub fn set_phase(&self, phase: Phase, detail: impl Into<String>) {
        let detail = detail.into();
        self.state.send_if_modified(|slot| match slot {
            Some(s) => {
                s.phase = phase;
                s.detail = detail;
                true
            }
            None => false,
        });
    }

    /// Waits until a drain is requested (at once if one already was).
    pub async fn requested(&self) -> DrainState {
        let mut rx = self.state.subscribe();
        let state = match rx.wait_for(Option::is_some).await {
            Ok(s) => s.clone(),
            Err(_) => None,
        };
        match state {
            Some(s) => s,
            // The sender lives in `self`, so the channel cannot close while we wait.
            None => std::future::pending().await,
        }
    }

    /// The valve that marks responses while draining.
    pub fn valve(&self) -> Arc<dyn shoal_http::Valve> {
        Arc::new(DrainValve::new(self.draining.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_request_wins_and_waiters_wake() {
        let drain = Drain::new();
        assert!(!drain.is_draining());
        let waiter = tokio::spawn({
            let d = drain.clone();
            async move { d.requested().await }
        });
        let started = drain.request(DrainTrigger::Api).expect("first request");
        assert_eq!(started.trigger, DrainTrigger::Api);
        let again = drain
            .request(DrainTrigger::Signal)
            .expect_err("second request");
        assert_eq!(
            again.trigger,
            DrainTrigger::Api,
            "the first trigger is kept"
        );
        assert!(drain.is_draining());
        let seen = waiter.await.expect("waiter");
        assert_eq!(seen.since_ms, started.since_ms);
        drain.set_phase(Phase::Grace, "grace");
        assert_eq!(drain.state().map(|s| s.phase), Some(Phase::Grace));
        // A waiter arriving late returns at once.
        assert_eq!(drain.requested().await.trigger, DrainTrigger::Api);
    }
}
