//! Why a request on a persistent context failed. Every variant a client can meet says
//! whether retrying helps ([`PersistError::retry_after_secs`]); the runtime maps them to
//! HTTP with [`PersistError::http_status`].
use crate::persistent::record::RecordError;
use crate::SessionError;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PersistError {
    #[error("session {id} was changed concurrently (on another node, or its copy here was stale): this request's change was not saved; retry it")]
    Conflict { id: String },
    #[error("session store `{store}` is unavailable ({reason}); retry shortly")]
    Unavailable { store: String, reason: String },
    #[error("{depth} sessions already wait to be saved to store `{store}` (the limit, `write_queue_max`); this change was not applied; retry shortly")]
    QueueFull { store: String, depth: usize },
    #[error("context `{app}` holds {limit} sessions in memory (`max_active_sessions`) and none is idle enough to swap out; retry later or raise the limit")]
    TooManyActive { app: String, limit: i64 },
    #[error("context `{app}` is stopping")]
    Stopping { app: String },
    #[error("the request on session {id} ended before its session was loaded; retry it")]
    NotServed { id: String },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Corrupt(#[from] RecordError),
}

impl PersistError {
    pub fn http_status(&self) -> u16 {
        match self {
            PersistError::Session(e) => e.http_status(),
            PersistError::Corrupt(_) => 500,
            _ => 503,
        }
    }

    /// `Some(seconds)` for the errors a retry can cure (the runtime sends `Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            PersistError::Conflict { .. } => Some(0),
            PersistError::Unavailable { .. }
            | PersistError::QueueFull { .. }
            | PersistError::NotServed { .. } => Some(1),
            PersistError::TooManyActive { .. } | PersistError::Stopping { .. } => Some(5),
            PersistError::Session(_) | PersistError::Corrupt(_) => None,
        }
    }
}
