//! The one error type of shoal-http; every error becomes a one-line `error=...` body (the
//! bench app's format) with a status that tells the client what to do.
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use shoal_session::persistent::PersistError;
use shoal_session::SessionError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("context {0} is still receiving session state from the cluster; retry shortly")]
    NotReady(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A persistent context could not serve or save the session (conflict, store down, …).
    #[error(transparent)]
    Persist(PersistError),
}

impl HttpError {
    fn code(&self) -> &'static str {
        match self {
            HttpError::Session(SessionError::AttributeTooLarge { .. }) => "attribute-too-large",
            HttpError::Session(SessionError::SessionTooLarge { .. }) => "session-too-large",
            HttpError::Session(SessionError::TooManyAttributes { .. }) => "too-many-attributes",
            HttpError::Session(SessionError::BadAttributeName) => "bad-attribute-name",
            HttpError::Session(SessionError::NotFound(_)) => "session-gone",
            HttpError::Session(SessionError::ReplicationFailed { .. }) => "replication-failed",
            HttpError::Session(SessionError::NotReady(_)) | HttpError::NotReady(_) => "not-ready",
            HttpError::Session(SessionError::NoQuorum { .. }) => "no-quorum",
            HttpError::Session(SessionError::Decode(_)) | HttpError::BadRequest(_) => "bad-request",
            HttpError::Persist(PersistError::Conflict { .. }) => "session-conflict",
            HttpError::Persist(PersistError::Unavailable { .. }) => "store-unavailable",
            HttpError::Persist(PersistError::QueueFull { .. }) => "store-queue-full",
            HttpError::Persist(PersistError::TooManyActive { .. }) => "too-many-sessions",
            HttpError::Persist(PersistError::Stopping { .. }) => "stopping",
            HttpError::Persist(PersistError::NotServed { .. }) => "not-served",
            HttpError::Persist(PersistError::Corrupt(_)) => "session-corrupt",
            HttpError::Persist(PersistError::Session(e)) => HttpError::Session(e.clone()).code(),
        }
    }

    pub fn status(&self) -> StatusCode {
        let code = match self {
            HttpError::Session(e) => e.http_status(),
            HttpError::NotReady(_) => 503,
            HttpError::BadRequest(_) => 400,
            HttpError::Persist(e) => e.http_status(),
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = format!(
            "error={} detail=\"{}\"\n",
            self.code(),
            self.to_string().replace('"', "'")
        );
        let mut resp = (self.status(), body).into_response();
        if let HttpError::Persist(e) = &self {
            if let Some(secs) = e.retry_after_secs() {
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            }
        } else if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}
