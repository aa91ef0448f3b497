//! The one error enum of shoal-session. The HTTP layer maps each variant to a status code
//! (`SessionError::http_status`), so every error a client can cause says what to change.
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    #[error("attribute `{name}` is {size} bytes, above the limit of {limit} bytes (raise `max_attribute_bytes` in the context's [session] config or store less)")]
    AttributeTooLarge {
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("session would hold {count} attributes, above the limit of {limit} (raise `max_attributes` or remove attributes)")]
    TooManyAttributes { count: usize, limit: usize },
    #[error("session would hold {size} bytes of attributes, above the limit of {limit} bytes (raise `max_session_bytes`)")]
    SessionTooLarge { size: usize, limit: usize },
    #[error("attribute name is empty or longer than 256 bytes")]
    BadAttributeName,
    #[error("session {0} no longer exists (expired or invalidated by another request)")]
    NotFound(String),
    #[error("replication to {members} failed: {reason}; the change is applied locally but not acknowledged, retry the request")]
    ReplicationFailed { members: String, reason: String },
    #[error("context `{0}` is still receiving session state from the cluster; retry shortly")]
    NotReady(String),
    #[error("bad session message: {0}")]
    Decode(String),
    /// `partition = "majority"`: this node cannot see a majority of the expected members
    /// (or it is catching up after seeing them again), so it serves no session; another
    /// node can (`Retry-After`).
    #[error("node {node} serves no session of context `{context}`: {why} (partition = \"majority\"); retry on another node")]
    NoQuorum {
        node: String,
        context: String,
        why: String,
    },
}

impl SessionError {
    /// The HTTP status a request failing with this error should get.
    pub fn http_status(&self) -> u16 {
        match self {
            SessionError::AttributeTooLarge { .. } | SessionError::SessionTooLarge { .. } => 413,
            SessionError::TooManyAttributes { .. } => 422,
            SessionError::BadAttributeName => 400,
            SessionError::NotFound(_) => 410,
            SessionError::ReplicationFailed { .. }
            | SessionError::NotReady(_)
            | SessionError::NoQuorum { .. } => 503,
            SessionError::Decode(_) => 400,
        }
    }
}
