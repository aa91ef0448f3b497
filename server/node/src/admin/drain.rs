//! The node's drain ([`crate::drain`]) as the admin API shows it: `GET` and
//! `POST /api/v1/cluster/drain` and the `drain` event. Translation only; the trigger and the
//! sequence live in `crate::drain`.
use super::NodeBackend;
use crate::drain::{Drain, DrainTrigger, Phase};
use shoal_admin::dto::{rfc3339, DrainPhase, DrainStatus};
use shoal_admin::{BackendError, EventKind};

fn phase(p: Phase) -> DrainPhase {
    match p {
        Phase::Notifying => DrainPhase::Notifying,
        Phase::Grace => DrainPhase::Grace,
        Phase::Closing => DrainPhase::Closing,
    }
}

impl NodeBackend {
    /// `GET /api/v1/cluster/drain`.
    pub(super) fn drain_status_view(&self) -> DrainStatus {
        let node = self.local_name();
        match self.node.drain.state() {
            None => DrainStatus::serving(
                node,
                "serving; POST /api/v1/cluster/drain (or SIGTERM) drains this node",
            ),
            Some(s) => DrainStatus::draining(
                node,
                phase(s.phase),
                s.trigger.as_str(),
                s.since_ms,
                s.detail,
            ),
        }
    }

    /// `POST /api/v1/cluster/drain`: the same trigger as SIGTERM.
    pub(super) fn start_drain_now(&self) -> Result<DrainStatus, BackendError> {
        match self.node.drain.request(DrainTrigger::Api) {
            Ok(_) => Ok(self.drain_status_view()),
            Err(s) => Err(BackendError::Conflict(format!(
                "{} has been draining since {} (trigger: {}, now: {}); follow it with GET /api/v1/cluster/drain",
                self.local_name(),
                rfc3339(s.since_ms),
                s.trigger.as_str(),
                s.detail
            ))),
        }
    }
}

/// Emits the `drain` event once a drain starts, whatever asked for it (API, signal, stdin),
/// so the event stream and the UI show it until the admin API closes.
pub(super) async fn announce(backend: std::sync::Weak<NodeBackend>, drain: Drain) {
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
        EventKind::Drain,
        &name,
        format!("{name} is draining ({how}): no new sessions, then it hands its sessions over and exits"),
    );
}
