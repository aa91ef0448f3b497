//! [`StoreConfig::open`]: settings in, a store out. The one module that knows every store,
//! so `config.rs` stays plain data that the stores themselves import.
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::file::FileStore;
use crate::redis::RedisStore;
use crate::sql::SqlStore;
use crate::store::Store;
use std::sync::Arc;

impl StoreConfig {
    /// The store these settings describe. Nothing is contacted: call [`Store::check`].
    /// Call it inside a Tokio runtime (the SQL stores make their lazy pools here).
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreConfig::File(c) => Arc::new(FileStore::new(&c.directory)),
            StoreConfig::Sqlite(c) => Arc::new(SqlStore::sqlite(c)?),
            StoreConfig::Postgres(c) => Arc::new(SqlStore::postgres(c)?),
            StoreConfig::Mysql(c) => Arc::new(SqlStore::mysql(c)?),
            StoreConfig::Redis(c) => Arc::new(RedisStore::new(c)?),
        })
    }
}
