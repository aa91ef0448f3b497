//! [`StoreConfig::open`]: settings in, a store out. The one module that knows every store,
//! so `config.rs` stays plain data that the stores themselves import.
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::file::FileStore;
#[cfg(feature = "backends")]
use crate::redis::RedisStore;
#[cfg(feature = "backends")]
use crate::sql::SqlStore;
use crate::store::Store;
use std::sync::Arc;

impl StoreConfig {
    /// The store these settings describe. Nothing is contacted: call [`Store::check`].
    /// Call it inside a Tokio runtime (the SQL stores make their lazy pools here).
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreConfig::File(c) => Arc::new(FileStore::new(&c.directory)),
            #[cfg(feature = "backends")]
            StoreConfig::Sqlite(c) => Arc::new(SqlStore::sqlite(c)?),
            #[cfg(feature = "backends")]
            StoreConfig::Postgres(c) => Arc::new(SqlStore::postgres(c)?),
            #[cfg(feature = "backends")]
            StoreConfig::Mysql(c) => Arc::new(SqlStore::mysql(c)?),
            #[cfg(feature = "backends")]
            StoreConfig::Redis(c) => Arc::new(RedisStore::new(c)?),
            #[cfg(not(feature = "backends"))]
            other => return Err(without_backends(other)),
        })
    }
}

/// A build without the feature `backends` (the fuzz crate) opens the file store only.
#[cfg(not(feature = "backends"))]
fn without_backends(config: &StoreConfig) -> StoreError {
    let kind = match config {
        StoreConfig::File(_) => "file",
        StoreConfig::Sqlite(_) => "sqlite",
        StoreConfig::Postgres(_) => "postgres",
        StoreConfig::Mysql(_) => "mysql",
        StoreConfig::Redis(_) => "redis",
    };
    StoreError::Config {
        store: format!("{kind} store"),
        key: "kind".into(),
        detail: "this build has no database or Redis stores (shoal-store's feature `backends` is off); use kind = \"file\"".into(),
    }
}
