//! The drain trigger: one handle shared by the admin API (`POST /api/v1/cluster/drain`), the
//! binary's signal handler (SIGTERM, Ctrl-C) and its control stdin (`quit`), so every way of
//! asking runs the same sequence (`server/bin/src/drain.rs`). The handle records who asked,
//! when, and how far the drain got; the binary waits on [`Drain::requested`] and reports the
//! phases back with [`Drain::set_phase`].
//!
//! While draining, [`DrainValve`] marks every HTTP response with [`DRAINING_HEADER`]: a
//! balancer with a static backend list sees it in its health probes and stops sending new
//! sessions here, while the requests of this node's sessions still come.
use shoal_admin::dto::{now_ms, DrainPhase};
use shoal_http::{Next, Request, Response, Valve};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Response header of a draining node (value `1`); `shoal balancer` reads it in its probes.
pub const DRAINING_HEADER: &str = "x-shoal-draining";

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

/// A drain under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainState {
    pub trigger: DrainTrigger,
    pub since_ms: u64,
    pub phase: DrainPhase,
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
            phase: DrainPhase::Notifying,
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
    pub fn set_phase(&self, phase: DrainPhase, detail: impl Into<String>) {
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
    pub fn valve(&self) -> Arc<dyn Valve> {
        Arc::new(DrainValve {
            draining: self.draining.clone(),
        })
    }
}

/// Adds [`DRAINING_HEADER`] to every response while the node drains; costs one atomic load
/// otherwise.
pub struct DrainValve {
    draining: Arc<AtomicBool>,
}

impl Valve for DrainValve {
    fn name(&self) -> &str {
        "DrainValve"
    }

    fn invoke(&self, req: Request, next: Next) -> futures::future::BoxFuture<'static, Response> {
        let draining = self.draining.clone();
        Box::pin(async move {
            let mut response = next.run(req).await;
            if draining.load(Ordering::Acquire) {
                response
                    .headers_mut()
                    .insert(DRAINING_HEADER, http::HeaderValue::from_static("1"));
            }
            response
        })
    }
}

impl super::NodeBackend {
    /// `GET /api/v1/cluster/drain`.
    pub(super) fn drain_status_view(&self) -> shoal_admin::dto::DrainStatus {
        use shoal_admin::dto::{drain_steps, rfc3339, DrainStatus};
        let node = self.local_name();
        match self.node.drain.state() {
            None => DrainStatus::serving(
                node,
                "serving; POST /api/v1/cluster/drain (or SIGTERM) drains this node",
            ),
            Some(s) => DrainStatus {
                node,
                draining: true,
                phase: s.phase,
                trigger: Some(s.trigger.as_str().to_owned()),
                since_ms: Some(s.since_ms),
                since: Some(rfc3339(s.since_ms)),
                steps: drain_steps(),
                detail: s.detail,
            },
        }
    }

    /// `POST /api/v1/cluster/drain`: the same trigger as SIGTERM.
    pub(super) fn start_drain_now(
        &self,
    ) -> Result<shoal_admin::dto::DrainStatus, shoal_admin::BackendError> {
        match self.node.drain.request(DrainTrigger::Api) {
            Ok(_) => Ok(self.drain_status_view()),
            Err(s) => Err(shoal_admin::BackendError::Conflict(format!(
                "{} has been draining since {} (trigger: {}, now: {}); follow it with GET /api/v1/cluster/drain",
                self.local_name(),
                shoal_admin::dto::rfc3339(s.since_ms),
                s.trigger.as_str(),
                s.detail
            ))),
        }
    }
}

/// Emits the `drain` event once a drain starts, whatever asked for it (API, signal, stdin),
/// so the event stream and the UI show it until the admin API closes.
pub(super) async fn announce(backend: std::sync::Weak<super::NodeBackend>, drain: Drain) {
    let state = drain.requested().await;
    let Some(backend) = backend.upgrade() else {
        return;
    };
    let name = backend.local_name();
    let how = match state.trigger {
        DrainTrigger::Api => "asked through the admin API",
        DrainTrigger::Signal => "SIGTERM or Ctrl-C",
        DrainTrigger::Control => "`quit` on its control stdin",
    };
    backend.emit(
        shoal_admin::EventKind::Drain,
        &name,
        format!("{name} is draining ({how}): no new sessions, then it hands its sessions over and exits"),
    );
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
        drain.set_phase(DrainPhase::Grace, "grace");
        assert_eq!(drain.state().map(|s| s.phase), Some(DrainPhase::Grace));
        // A waiter arriving late returns at once.
        assert_eq!(drain.requested().await.trigger, DrainTrigger::Api);
    }
}
