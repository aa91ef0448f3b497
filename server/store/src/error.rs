//! The one error type of the crate. Every variant names the store (its `describe()`), the
//! place (path, table, column, key or address) and, where a user can fix it, what to do.
//! A lost compare-and-set is not here: it is [`crate::Cas::Conflict`].

/// An error from a session store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The settings are wrong; nothing was contacted.
    #[error("{store}: setting `{key}`: {detail}")]
    Config {
        store: String,
        key: String,
        detail: String,
    },

    /// A session id or app name that no store accepts.
    #[error("{store}: invalid {what} \"{value}\": {rule}")]
    InvalidKey {
        store: String,
        what: &'static str,
        value: String,
        rule: &'static str,
    },

    /// A write the caller got wrong (a version that does not move forward).
    #[error("{store}: session {app}/{id}: {detail}")]
    InvalidRecord {
        store: String,
        app: String,
        id: String,
        detail: String,
    },

    /// The server did not answer at `addr` (refused, timed out, name not found). The
    /// message names the address through `store` (its `describe` label holds it).
    #[error("{store}: the server does not answer: {detail}; check that it runs and that the store's address ({addr}) is right")]
    Unreachable {
        store: String,
        addr: String,
        detail: String,
    },

    /// The server refused the credentials.
    #[error("{store}: the server refused the credentials: {detail}; check the user and password in the store settings")]
    Auth {
        store: String,
        addr: String,
        detail: String,
    },

    /// The session table is missing and the store may not create it.
    #[error("{store}: table {table} does not exist; create it (the README of shoal-store has the DDL) or set create_schema = true")]
    MissingTable { store: String, table: String },

    /// A column is missing and the store may not (or cannot) add it.
    #[error("{store}: table {table} has no column {column} (setting `{setting}`); {fix}")]
    MissingColumn {
        store: String,
        table: String,
        column: String,
        setting: &'static str,
        fix: String,
    },

    /// A stored session that cannot be read back (bad magic, unknown format, truncated).
    #[error("{store}: {location}: {detail}; move the damaged entry away (the session is lost) or restore it")]
    Corrupt {
        store: String,
        location: String,
        detail: String,
    },

    /// A file-system operation failed.
    #[error("{store}: {op} {path}: {source}")]
    Io {
        store: String,
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Any other failure of the backend while doing `op` on `location`.
    #[error("{store}: {op} on {location}: {detail}")]
    Backend {
        store: String,
        op: &'static str,
        location: String,
        detail: String,
    },
}

impl StoreError {
    /// The store may work again later (a server down or overloaded) as opposed to an error
    /// that needs a change of settings, schema or input. The manager queues and retries
    /// writes on these.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unreachable { .. } | StoreError::Backend { .. } | StoreError::Io { .. }
        )
    }
}
