//! Store settings (serde, unknown keys refused), under Tomcat's attribute names in snake
//! case where Tomcat has one (`session_table`, `session_id_col`, `directory`, …). Plain data:
//! the stores import these types, and `open.rs` turns them into a store.
//!
//! ```toml
//! [store]
//! kind = "postgres"                       # file | sqlite | postgres | mysql | redis
//! connection_url = "postgres://shoal@db.example:5432/sessions"
//! connection_password = "…"
//! session_table = "tomcat_sessions"
//! ```
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which store, and its settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoreConfig {
    /// A directory of files (Tomcat's FileStore).
    File(FileConfig),
    /// An SQLite database file (the embedded default).
    Sqlite(SqlConfig),
    /// PostgreSQL (Tomcat's DataSourceStore over a PostgreSQL data source).
    Postgres(SqlConfig),
    /// MySQL or MariaDB.
    Mysql(SqlConfig),
    /// Redis (keys with the store's own expiry).
    Redis(RedisConfig),
}

/// `kind = "file"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The directory of session files (Tomcat's `directory`); nodes may share one (`flock`).
    pub directory: PathBuf,
}

/// `kind = "sqlite" | "postgres" | "mysql"`: the table and columns of Tomcat's
/// DataSourceStore (defaults: the sample table of Tomcat's manager docs) plus shoal's two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// SQLite only: the database file (created with its directory).
    pub path: Option<PathBuf>,
    /// PostgreSQL and MySQL only (Tomcat's JDBCStore `connectionURL`), e.g.
    /// `postgres://user@host:5432/db` or `mysql://user@host:3306/db`.
    pub connection_url: Option<String>,
    /// The user, overriding the URL's (Tomcat's `connectionName`).
    pub connection_name: Option<String>,
    /// The password, overriding the URL's (Tomcat's `connectionPassword`).
    pub connection_password: Option<Secret>,
    pub session_table: String,
    pub session_id_col: String,
    pub session_app_col: String,
    pub session_valid_col: String,
    pub session_max_inactive_col: String,
    pub session_last_accessed_col: String,
    pub session_data_col: String,
    /// shoal: the compare-and-set version of the row.
    pub session_version_col: String,
    /// shoal: the node that wrote the row.
    pub session_owner_col: String,
    /// Create the table, or add shoal's columns to a Tomcat table, at start. Off: a missing
    /// table or column stops the context with an error saying what to run.
    pub create_schema: bool,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection before the store counts as unreachable.
    pub connect_timeout_ms: u64,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            path: None,
            connection_url: None,
            connection_name: None,
            connection_password: None,
            session_table: "tomcat_sessions".into(),
            session_id_col: "session_id".into(),
            session_app_col: "app_name".into(),
            session_valid_col: "valid_session".into(),
            session_max_inactive_col: "max_inactive".into(),
            session_last_accessed_col: "last_access".into(),
            session_data_col: "session_data".into(),
            session_version_col: "shoal_version".into(),
            session_owner_col: "shoal_owner".into(),
            create_schema: true,
            max_connections: 8,
            connect_timeout_ms: 5_000,
        }
    }
}

/// `kind = "redis"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// The first part of every key (`<prefix>:{<app>}:s:<id>`); several clusters can share
    /// one Redis with different prefixes.
    pub key_prefix: String,
    pub connect_timeout_ms: u64,
    /// How long one command may take before it fails.
    pub response_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "shoal".into(),
            connect_timeout_ms: 5_000,
            response_timeout_ms: 5_000,
        }
    }
}

/// A password: read from settings, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tomcat_names_and_defaults() {
        let c: StoreConfig = toml::from_str(
            "kind = \"mysql\"\nconnection_url = \"mysql://u@h/db\"\nsession_table = \"t\"\n\
             connection_password = \"pw\"\n",
        )
        .expect("parses");
        let StoreConfig::Mysql(sql) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(sql.session_table, "t");
        assert_eq!(sql.session_id_col, "session_id");
        assert!(sql.create_schema);
        assert!(!format!("{c:?}").contains("pw"), "password printed");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<StoreConfig>("kind = \"sqlite\"\nsession_tabel = \"t\"\n")
            .expect_err("typo refused");
        assert!(e.to_string().contains("session_tabel"), "{e}");
        assert!(
            toml::from_str::<StoreConfig>("kind = \"file\"\ndirectory = \"d\"\nx = 1\n").is_err()
        );
        assert!(toml::from_str::<StoreConfig>("kind = \"nosql\"\n").is_err());
    }
}
