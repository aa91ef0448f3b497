//! The in-memory twin (feature `testing`): the reference behaviour of [`Store`], run
//! through the same conformance suite as every real store, for the manager's tests.
use crate::error::StoreError;
use crate::record::{check_app, check_id, check_write, Cas, Expect, StoredSession};
use crate::store::Store;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

type Rows = BTreeMap<(String, String), StoredSession>;

/// Sessions in a map; clones share the map (two "nodes" on one store).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    rows: Arc<Mutex<Rows>>,
}

const NAME: &str = "memory";

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn rows(&self) -> MutexGuard<'_, Rows> {
        // A panic while holding the lock leaves consistent data (every change is one insert
        // or remove), so a poisoned lock is still usable.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn key(app: &str, id: &str) -> Result<(String, String), StoreError> {
    check_app(NAME, app)?;
    check_id(NAME, id)?;
    Ok((app.to_owned(), id.to_owned()))
}

#[async_trait]
impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        "memory (test twin)".into()
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn load(&self, app: &str, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let k = key(app, id)?;
        Ok(self.rows().get(&k).cloned())
    }

    async fn version(&self, app: &str, id: &str) -> Result<Option<u64>, StoreError> {
        let k = key(app, id)?;
        Ok(self.rows().get(&k).map(|s| s.version))
    }

    async fn save(&self, session: &StoredSession, expect: Expect) -> Result<Cas, StoreError> {
        check_write(NAME, session, expect)?;
        let mut rows = self.rows();
        let k = (session.app.clone(), session.id.clone());
        let current = rows.get(&k).map(|s| s.version);
        let matches = match expect {
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        };
        if !matches {
            return Ok(Cas::Conflict { current });
        }
        rows.insert(k, session.clone());
        Ok(Cas::Done)
    }

    async fn remove(&self, app: &str, id: &str, version: u64) -> Result<Cas, StoreError> {
        let k = key(app, id)?;
        let mut rows = self.rows();
        match rows.get(&k).map(|s| s.version) {
            Some(v) if v == version => {
                rows.remove(&k);
                Ok(Cas::Done)
            }
            current => Ok(Cas::Conflict { current }),
        }
    }

    async fn touch(
        &self,
        app: &str,
        id: &str,
        version: u64,
        last_access_ms: i64,
    ) -> Result<Cas, StoreError> {
        let k = key(app, id)?;
        let mut rows = self.rows();
        match rows.get_mut(&k) {
            Some(s) if s.version == version => {
                s.last_access_ms = s.last_access_ms.max(last_access_ms);
                Ok(Cas::Done)
            }
            other => Ok(Cas::Conflict {
                current: other.map(|s| s.version),
            }),
        }
    }

    async fn keys(&self, app: &str) -> Result<Vec<String>, StoreError> {
        check_app(NAME, app)?;
        Ok(self
            .rows()
            .keys()
            .filter(|(a, _)| a == app)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn count(&self, app: &str) -> Result<u64, StoreError> {
        Ok(self.keys(app).await?.len() as u64)
    }

    async fn expired(
        &self,
        app: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        check_app(NAME, app)?;
        let mut out: Vec<(Option<i64>, String, u64)> = self
            .rows()
            .values()
            .filter(|s| s.app == app && s.is_expired(now_ms))
            .map(|s| (s.expires_at_ms(), s.id.clone(), s.version))
            .collect();
        out.sort();
        Ok(out
            .into_iter()
            .take(limit)
            .map(|(_, id, v)| (id, v))
            .collect())
    }
}
