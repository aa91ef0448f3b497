//! Session stores for shoal's persistent manager: one [`Store`] trait, five
//! implementations, an in-memory twin and one conformance suite that runs against all of
//! them (feature `testing`).
//!
//! # Layout
//! - `record.rs`: [`StoredSession`], [`Expect`], [`Cas`], and the key rule of every store.
//! - `store.rs`: the [`Store`] trait: compare-and-set writes and deletes on the version.
//! - `error.rs`: [`StoreError`], naming the store, the place and what to do.
//! - `config.rs`: [`StoreConfig`] (Tomcat's names), plain data the stores import.
//! - `open.rs`: [`StoreConfig::open`], the one place that knows every store (imports them all).
//! - `file/`: [`FileStore`], one file per session, atomic rename.
//! - `sql/`: [`SqlStore`] for SQLite (the embedded default), PostgreSQL, MySQL/MariaDB.
//! - `redis/`: [`RedisStore`], a hash per session with Redis's own expiry.
//! - `memory.rs`, `testing/` (feature `testing`): [`MemoryStore`], the suite, and
//!   launchers for real PostgreSQL, MariaDB and Redis servers.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use shoal_store::{Cas, Expect, FileStore, Store, StoredSession};
//! let dir = std::env::temp_dir().join(format!("shoal-store-doc-{}", std::process::id()));
//! let store = FileStore::new(&dir);
//! store.check().await?;
//! let v1 = StoredSession {
//!     id: "A1B2".into(), app: "/shop".into(), version: 1, valid: true,
//!     max_inactive_s: 1800, last_access_ms: 0, owner: Some("node1".into()), data: b"cart".to_vec(),
//! };
//! assert_eq!(store.save(&v1, Expect::Absent).await?, Cas::Done);
//! // node2 writes v2; node1's stale v1 can neither overwrite it nor delete it.
//! let v2 = StoredSession { version: 2, owner: Some("node2".into()), ..v1.clone() };
//! assert_eq!(store.save(&v2, Expect::Version(1)).await?, Cas::Done);
//! let stale = StoredSession { version: 2, ..v1 };
//! assert_eq!(store.save(&stale, Expect::Version(1)).await?, Cas::Conflict { current: Some(2) });
//! assert_eq!(store.remove("/shop", "A1B2", 1).await?, Cas::Conflict { current: Some(2) });
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), shoal_store::StoreError>(())
//! # }).unwrap();
//! ```
#![warn(unreachable_pub)]

mod config;
mod error;
mod file;
#[cfg(feature = "testing")]
mod memory;
mod open;
mod record;
#[cfg(feature = "backends")]
mod redis;
#[cfg(feature = "backends")]
mod sql;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{FileConfig, RedisConfig, Secret, SqlConfig, StoreConfig};
pub use error::StoreError;
pub use file::{FileStore, FILE_FORMAT};
#[cfg(feature = "testing")]
pub use memory::MemoryStore;
pub use record::{
    check_app, check_id, expires_at_ms, Cas, Expect, StoredSession, MAX_APP_LEN, MAX_ID_LEN,
};
#[cfg(feature = "backends")]
pub use redis::RedisStore;
#[cfg(feature = "backends")]
pub use sql::SqlStore;
pub use store::Store;
