//! Making a SQL store from its settings: one function per database, each building sqlx's
//! options and a lazy connection set (`conns.rs`: nothing connects before `check`).
use super::backend::Backend;
use super::conns::Conns;
use super::dialect::Dialect;
use super::names::Names;
use super::sqlite::{self, SqliteDb};
use super::SqlStore;
use crate::config::SqlConfig;
use crate::error::StoreError;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::time::Duration;

fn config_error(store: &str, key: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Config {
        store: store.to_owned(),
        key: key.to_owned(),
        detail: detail.into(),
    }
}

/// The connection set: `max_connections` of them, `connect_timeout_ms` to get one.
fn conns<C: sqlx::Connection>(c: &SqlConfig, options: C::Options) -> Conns<C> {
    Conns::new(
        options,
        c.max_connections,
        Duration::from_millis(c.connect_timeout_ms),
    )
}

impl SqlStore {
    /// SQLite: the file at `path`, in WAL mode (readers do not block the writer) with
    /// `synchronous = NORMAL` (a committed write survives a crash of the process; a power
    /// loss may lose the last commits), on rusqlite threads with group commit (`sqlite.rs`).
    pub fn sqlite(c: &SqlConfig) -> Result<Self, StoreError> {
        let label = "sqlite store";
        Names::from_config(label, c)?;
        let Some(path) = &c.path else {
            return Err(config_error(
                label,
                "path",
                "an sqlite store needs `path`, the database file",
            ));
        };
        if c.connection_url.is_some() {
            return Err(config_error(
                label,
                "connection_url",
                "sqlite takes `path`, not `connection_url`",
            ));
        }
        let backend = Backend::Sqlite(SqliteDb::new(sqlite::Options {
            path: path.clone(),
            busy_timeout: Duration::from_millis(c.connect_timeout_ms.max(1_000)),
            // 512 KiB of page cache per connection instead of SQLite's 2 MiB: a node holding
            // 10,000 sessions should stay within 40 MiB, and the OS caches the pages anyway.
            cache_size: -512,
        }));
        SqlStore::new(
            Dialect::Sqlite,
            path.display().to_string(),
            Some(path.clone()),
            backend,
            c,
        )
    }

    /// PostgreSQL at `connection_url`.
    pub fn postgres(c: &SqlConfig) -> Result<Self, StoreError> {
        let label = "postgres store";
        Names::from_config(label, c)?;
        let url = server_url(label, c)?;
        let mut o = PgConnectOptions::from_str(url).map_err(|e| {
            config_error(
                label,
                "connection_url",
                format!("not a PostgreSQL URL: {e}"),
            )
        })?;
        if let Some(user) = &c.connection_name {
            o = o.username(user);
        }
        if let Some(pw) = &c.connection_password {
            o = o.password(&pw.0);
        }
        let addr = format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or_default()
        );
        let backend = Backend::Postgres(conns(c, o));
        SqlStore::new(Dialect::Postgres, addr, None, backend, c)
    }

    /// MySQL or MariaDB at `connection_url`.
    pub fn mysql(c: &SqlConfig) -> Result<Self, StoreError> {
        let label = "mysql store";
        Names::from_config(label, c)?;
        let url = server_url(label, c)?;
        let mut o = MySqlConnectOptions::from_str(url)
            .map_err(|e| config_error(label, "connection_url", format!("not a MySQL URL: {e}")))?;
        if let Some(user) = &c.connection_name {
            o = o.username(user);
        }
        if let Some(pw) = &c.connection_password {
            o = o.password(&pw.0);
        }
        let addr = format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or_default()
        );
        let backend = Backend::MySql(conns(c, o));
        SqlStore::new(Dialect::MySql, addr, None, backend, c)
    }
}

fn server_url<'c>(label: &str, c: &'c SqlConfig) -> Result<&'c str, StoreError> {
    if c.path.is_some() {
        return Err(config_error(
            label,
            "path",
            "`path` is for sqlite; give `connection_url`",
        ));
    }
    c.connection_url
        .as_deref()
        .ok_or_else(|| config_error(label, "connection_url", "the server's URL is required"))
}
