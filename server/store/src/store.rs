//! The store trait: what the persistent manager needs from a place that keeps sessions
//! outside the node, and nothing else.
//!
//! Every write is a compare-and-set on [`StoredSession::version`]: a save names the version
//! it replaces ([`Expect`]) and a remove or touch names the version it acts on, so a node
//! holding an old copy can never overwrite or delete a newer one (the way seed 000's
//! sessions went back in time). A lost compare-and-set is [`Cas::Conflict`], not an error;
//! errors are for a store that cannot answer.
//!
//! Keys: `(app, id)` with the id rule of [`crate::check_id`] in every store.
use crate::error::StoreError;
use crate::record::{Cas, Expect, StoredSession};
use async_trait::async_trait;

/// A place that keeps sessions. Object safe: the manager holds an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The kind, for metrics labels: `file`, `sqlite`, `postgres`, `mysql`, `redis`, `memory`.
    fn name(&self) -> &'static str;

    /// One line for logs and status: kind, address or path, table or key prefix (never a
    /// password).
    fn describe(&self) -> String;

    /// Run once at start: connect, then create or migrate the schema (or fail naming the
    /// missing table or column and what to do).
    async fn check(&self) -> Result<(), StoreError>;

    /// The whole record, or `None`.
    async fn load(&self, app: &str, id: &str) -> Result<Option<StoredSession>, StoreError>;

    /// The stored version only (the cheap freshness check: the data is not read).
    async fn version(&self, app: &str, id: &str) -> Result<Option<u64>, StoreError>;

    /// Write `session` if the store holds what `expect` says. `session.version` must be
    /// greater than the expected version (`Absent` counts as 0), else `InvalidRecord`.
    async fn save(&self, session: &StoredSession, expect: Expect) -> Result<Cas, StoreError>;

    /// Delete the record if its version is exactly `version` (an expiry on one node never
    /// deletes a newer record). `Conflict { current: None }` when there was no record.
    async fn remove(&self, app: &str, id: &str, version: u64) -> Result<Cas, StoreError>;

    /// Record an access without rewriting the data: if the stored version is `version`, set
    /// the last access to `last_access_ms` (never moving it back). The version does not
    /// change: an access is not a change. Keeps a session in use on one node from being
    /// expired by another, and moves Redis's own expiry.
    async fn touch(
        &self,
        app: &str,
        id: &str,
        version: u64,
        last_access_ms: i64,
    ) -> Result<Cas, StoreError>;

    /// The ids of the app's records (in no particular order).
    async fn keys(&self, app: &str) -> Result<Vec<String>, StoreError>;

    /// How many records the app has.
    async fn count(&self, app: &str) -> Result<u64, StoreError>;

    /// Up to `limit` records of the app that expired before `now_ms`, with their versions,
    /// earliest expiry first, so the caller can remove each under compare-and-set.
    async fn expired(
        &self,
        app: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError>;
}
