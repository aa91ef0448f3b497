//! The fake cluster's drain: recorded, never carried out. `POST /api/v1/cluster/drain`
//! flips the local node to `draining` (readiness 503, health `draining`), a second call
//! answers 409, and everything else keeps answering, so fuzzers and the UI test can call
//! it without killing the dev server.

use super::{done, MemoryBackend};
use crate::{
    backend::{BackendError, BackendResult},
    dto::*,
};

/// A recorded drain request.
#[derive(Debug, Clone, Copy)]
pub(super) struct FakeDrain {
    pub since_ms: u64,
}

impl MemoryBackend {
    fn local_name(&self) -> String {
        self.lock()
            .members
            .iter()
            .find(|m| m.local)
            .map(|m| m.name.clone())
            .unwrap_or_default()
    }

    pub(super) fn drain_view(&self) -> DrainStatus {
        let node = self.local_name();
        let drain = self.lock().drain;
        match drain {
            None => DrainStatus::serving(
                node,
                "serving; POST /api/v1/cluster/drain to drain this node",
            ),
            // A real node would move on and exit; the fake one stays in its grace.
            Some(d) => DrainStatus::draining(
                node,
                DrainPhase::Grace,
                "api",
                d.since_ms,
                "draining (in-memory cluster: recorded only, nothing stops)".into(),
            ),
        }
    }

    pub(super) fn start_drain_fake(&self) -> BackendResult<'_, DrainStatus> {
        let mut s = self.lock();
        if let Some(d) = s.drain {
            return done(Err(BackendError::Conflict(format!(
                "this node has been draining since {}; follow it with GET /api/v1/cluster/drain",
                rfc3339(d.since_ms)
            ))));
        }
        let since_ms = now_ms();
        s.drain = Some(FakeDrain { since_ms });
        let name = s
            .members
            .iter()
            .find(|m| m.local)
            .map(|m| m.name.clone())
            .unwrap_or_default();
        self.emit(
            &mut s,
            EventKind::Drain,
            &name,
            format!("{name} is draining (asked through the admin API)"),
        );
        drop(s);
        done(Ok(self.drain_view()))
    }

    /// Ends a recorded drain (the dev server's node "came back"), for tests.
    pub fn cancel_drain(&self) {
        self.lock().drain = None;
    }

    /// Whether a drain was recorded.
    pub fn is_draining(&self) -> bool {
        self.lock().drain.is_some()
    }
}
