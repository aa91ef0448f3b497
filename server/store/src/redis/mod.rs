//! Sessions in Redis, one hash per session and one sorted set per app:
//!
//! - `<prefix>:{<app>}:s:<id>`: hash with fields `v` (version), `valid` (`1`/`0`), `mi`
//!   (max inactive s), `la` (last access ms), `owner` (absent: none), `data` (bytes). The key
//!   expires by Redis's own clock at the session's expiry (`PEXPIREAT`), so expiry happens
//!   in one place even when no node is left to do it.
//! - `<prefix>:{<app>}:exp`: sorted set of ids scored by expiry ms (`+inf`: never), for
//!   `keys`, `count` and `expired`; entries whose hash Redis has expired are dropped as
//!   they are met.
//!
//! The `{<app>}` hash tag keeps an app's keys in one slot, so the scripts' keys are
//! together on a Redis Cluster too. Every write is a Lua script ([`scripts`]) comparing the
//! stored version first. Connection: redis-rs's `ConnectionManager` (multiplexed,
//! reconnecting), made on first use.
mod scripts;

use crate::config::RedisConfig;
use crate::error::StoreError;
use crate::record::{check_app, check_id, check_write, Cas, Expect, StoredSession};
use crate::store::Store;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use std::time::Duration;
use tokio::sync::OnceCell;

/// A Redis (or Valkey) server holding sessions.
pub struct RedisStore {
    client: Client,
    conn: OnceCell<ConnectionManager>,
    /// `redis store 127.0.0.1:6379`.
    label: String,
    addr: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    save: Script,
    remove: Script,
    touch: Script,
    list: Script,
    expired: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `c.url`; nothing connects before the first command (or `check`).
    pub fn new(c: &RedisConfig) -> Result<Self, StoreError> {
        let client = Client::open(c.url.as_str()).map_err(|e| StoreError::Config {
            store: "redis store".into(),
            key: "url".into(),
            detail: format!("not a Redis URL ({e}); use redis://[:password@]host:port[/db]"),
        })?;
        let addr = client.get_connection_info().addr().to_string();
        Ok(RedisStore {
            label: format!("redis store {addr}"),
            addr,
            client,
            conn: OnceCell::new(),
            prefix: c.key_prefix.clone(),
            connect_timeout: Duration::from_millis(c.connect_timeout_ms),
            response_timeout: Duration::from_millis(c.response_timeout_ms),
            save: Script::new(scripts::SAVE),
            remove: Script::new(scripts::REMOVE),
            touch: Script::new(scripts::TOUCH),
            list: Script::new(scripts::LIST),
            expired: Script::new(scripts::EXPIRED),
        })
    }

    fn error(&self, op: &'static str, location: String, e: redis::RedisError) -> StoreError {
        let (store, addr) = (self.label.clone(), self.addr.clone());
        let detail = e.to_string();
        if e.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
        {
            StoreError::Auth {
                store,
                addr,
                detail,
            }
        } else if e.is_connection_refusal() || e.is_io_error() || e.is_timeout() {
            StoreError::Unreachable {
                store,
                addr,
                detail,
            }
        } else {
            StoreError::Backend {
                store,
                op,
                location,
                detail,
            }
        }
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let make = || async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.connect_timeout))
                .set_response_timeout(Some(self.response_timeout))
                .set_number_of_retries(1);
            let connecting = ConnectionManager::new_with_config(self.client.clone(), config);
            match tokio::time::timeout(self.connect_timeout * 2, connecting).await {
                Ok(r) => r.map_err(|e| self.error("connect", self.addr.clone(), e)),
                Err(_) => Err(StoreError::Unreachable {
                    store: self.label.clone(),
                    addr: self.addr.clone(),
                    detail: format!("no connection within {:?}", self.connect_timeout * 2),
                }),
            }
        };
        self.conn.get_or_try_init(make).await.cloned()
    }

    fn session_prefix(&self, app: &str) -> String {
        format!("{}:{{{app}}}:s:", self.prefix)
    }

    fn index_key(&self, app: &str) -> String {
        format!("{}:{{{app}}}:exp", self.prefix)
    }

    fn keys_for(&self, app: &str, id: &str) -> Result<(String, String), StoreError> {
        check_app(&self.label, app)?;
        check_id(&self.label, id)?;
        Ok((
            format!("{}{id}", self.session_prefix(app)),
            self.index_key(app),
        ))
    }

    /// Decode a write script's answer.
    fn cas(&self, key: &str, (done, current): (i64, String)) -> Result<Cas, StoreError> {
        if done == 1 {
            return Ok(Cas::Done);
        }
        if current.is_empty() {
            return Ok(Cas::Conflict { current: None });
        }
        let v = current.parse().map_err(|_| self.corrupt(key, "version"))?;
        Ok(Cas::Conflict { current: Some(v) })
    }

    fn corrupt(&self, key: &str, field: &str) -> StoreError {
        StoreError::Corrupt {
            store: self.label.clone(),
            location: format!("key {key}"),
            detail: format!("field {field} is missing or not what shoal writes"),
        }
    }
}

fn text(v: &Option<Vec<u8>>) -> Option<&str> {
    v.as_deref().and_then(|b| std::str::from_utf8(b).ok())
}

#[async_trait]
impl Store for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn describe(&self) -> String {
        format!("{} prefix {}", self.label, self.prefix)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(|e| self.error("ping", self.addr.clone(), e))?;
        Ok(())
    }

    async fn load(&self, app: &str, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let (key, _) = self.keys_for(app, id)?;
        let mut c = self.conn().await?;
        let f: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(&key)
            .arg(&["v", "valid", "mi", "la", "owner", "data"])
            .query_async(&mut c)
            .await
            .map_err(|e| self.error("load", format!("key {key}"), e))?;
        let [v, valid, mi, la, owner, data] =
            <[Option<Vec<u8>>; 6]>::try_from(f).map_err(|_| self.corrupt(&key, "HMGET answer"))?;
        if v.is_none() {
            return Ok(None);
        }
        let num = |f: &Option<Vec<u8>>, name| {
            text(f)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.corrupt(&key, name))
        };
        Ok(Some(StoredSession {
            id: id.to_owned(),
            app: app.to_owned(),
            version: text(&v)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.corrupt(&key, "v"))?,
            valid: text(&valid) == Some("1"),
            max_inactive_s: num(&mi, "mi")?,
            last_access_ms: num(&la, "la")?,
            owner: match owner {
                Some(o) => Some(String::from_utf8(o).map_err(|_| self.corrupt(&key, "owner"))?),
                None => None,
            },
            data: data.unwrap_or_default(),
        }))
    }

    async fn version(&self, app: &str, id: &str) -> Result<Option<u64>, StoreError> {
        let (key, _) = self.keys_for(app, id)?;
        let mut c = self.conn().await?;
        let v: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("v")
            .query_async(&mut c)
            .await
            .map_err(|e| self.error("read version", format!("key {key}"), e))?;
        v.map(|s| s.parse().map_err(|_| self.corrupt(&key, "v")))
            .transpose()
    }

    async fn save(&self, s: &StoredSession, expect: Expect) -> Result<Cas, StoreError> {
        check_write(&self.label, s, expect)?;
        let (key, index) = self.keys_for(&s.app, &s.id)?;
        let expect = match expect {
            Expect::Absent => String::new(),
            Expect::Version(v) => v.to_string(),
        };
        let expire_at = s.expires_at_ms().map(|t| t.to_string()).unwrap_or_default();
        let mut c = self.conn().await?;
        let answer = self
            .save
            .key(&key)
            .key(&index)
            .arg(expect)
            .arg(&s.id)
            .arg(s.version.to_string())
            .arg(if s.valid { "1" } else { "0" })
            .arg(s.max_inactive_s.to_string())
            .arg(s.last_access_ms.to_string())
            .arg(if s.owner.is_some() { "1" } else { "0" })
            .arg(s.owner.as_deref().unwrap_or(""))
            .arg(s.data.as_slice())
            .arg(expire_at)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error("save", format!("key {key}"), e))?;
        self.cas(&key, answer)
    }

    async fn remove(&self, app: &str, id: &str, version: u64) -> Result<Cas, StoreError> {
        let (key, index) = self.keys_for(app, id)?;
        let mut c = self.conn().await?;
        let answer = self
            .remove
            .key(&key)
            .key(&index)
            .arg(version.to_string())
            .arg(id)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error("remove", format!("key {key}"), e))?;
        self.cas(&key, answer)
    }

    async fn touch(
        &self,
        app: &str,
        id: &str,
        version: u64,
        last_access_ms: i64,
    ) -> Result<Cas, StoreError> {
        let (key, index) = self.keys_for(app, id)?;
        let mut c = self.conn().await?;
        let answer = self
            .touch
            .key(&key)
            .key(&index)
            .arg(version.to_string())
            .arg(id)
            .arg(last_access_ms.to_string())
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error("touch", format!("key {key}"), e))?;
        self.cas(&key, answer)
    }

    async fn keys(&self, app: &str) -> Result<Vec<String>, StoreError> {
        check_app(&self.label, app)?;
        let index = self.index_key(app);
        let mut c = self.conn().await?;
        self.list
            .key(&index)
            .arg(self.session_prefix(app))
            .arg("ids")
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error("list keys", format!("key {index}"), e))
    }

    async fn count(&self, app: &str) -> Result<u64, StoreError> {
        check_app(&self.label, app)?;
        let index = self.index_key(app);
        let mut c = self.conn().await?;
        self.list
            .key(&index)
            .arg(self.session_prefix(app))
            .arg("count")
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error("count", format!("key {index}"), e))
    }

    async fn expired(
        &self,
        app: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        check_app(&self.label, app)?;
        let index = self.index_key(app);
        let mut c = self.conn().await?;
        let flat: Vec<String> = self
            .expired
            .key(&index)
            .arg(self.session_prefix(app))
            .arg(now_ms.to_string())
            .arg(limit.to_string())
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error("list expired", format!("key {index}"), e))?;
        flat.chunks(2)
            .map(|pair| match pair {
                [id, v] => v
                    .parse()
                    .map(|v| (id.clone(), v))
                    .map_err(|_| self.corrupt(&index, "v")),
                _ => Err(self.corrupt(&index, "expired answer")),
            })
            .collect()
    }
}
