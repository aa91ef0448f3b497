//! SQL stores: SQLite (the embedded default), PostgreSQL and MySQL/MariaDB, over sqlx with
//! runtime queries (the build needs no database).
//!
//! One folder, not three: the table, the statements and the compare-and-set logic are the
//! same for all three databases, and what differs (quoting, placeholders, column types, a
//! cast, listing columns) is small and lives in [`dialect`]. Three copies of the store would
//! drift; one store with a dialect cannot.
//!
//! The table is Tomcat's DataSourceStore table (the sample of Tomcat's manager docs and of
//! seed 000) plus `shoal_version` and `shoal_owner`; primary key (app, id).
mod backend;
mod connect;
mod conns;
mod dialect;
mod names;
mod schema;
mod sqlite;
mod statements;

use crate::config::SqlConfig;
use crate::error::StoreError;
use crate::record::{check_app, check_id, check_write, Cas, Expect, StoredSession};
use crate::store::Store;
use async_trait::async_trait;
use backend::{Arg, Backend, DbError, Kind, Val};
use dialect::Dialect;
use names::Names;
use statements::Statements;
use std::path::PathBuf;

/// A session table in SQLite, PostgreSQL or MySQL/MariaDB.
#[derive(Debug)]
pub struct SqlStore {
    dialect: Dialect,
    /// `postgres store 127.0.0.1:5432/db`: every error starts with it.
    label: String,
    /// host:port/database, or the SQLite file.
    addr: String,
    /// SQLite: the file, whose directory `check` creates.
    sqlite_path: Option<PathBuf>,
    names: Names,
    sql: Statements,
    backend: Backend,
    create_schema: bool,
    connect_timeout_ms: u64,
}

impl SqlStore {
    fn new(
        dialect: Dialect,
        addr: String,
        sqlite_path: Option<PathBuf>,
        backend: Backend,
        c: &SqlConfig,
    ) -> Result<Self, StoreError> {
        let label = format!("{} store {addr}", dialect.name());
        let names = Names::from_config(&label, c)?;
        Ok(SqlStore {
            sql: Statements::new(dialect, &names),
            dialect,
            label,
            addr,
            sqlite_path,
            names,
            backend,
            create_schema: c.create_schema,
            connect_timeout_ms: c.connect_timeout_ms,
        })
    }

    /// Map a driver error to the crate's, naming the table and what was being done.
    fn error(&self, op: &'static str, e: DbError) -> StoreError {
        let store = self.label.clone();
        let addr = self.addr.clone();
        let e = match e {
            DbError::Sqlx(e) => e,
            // SQLite has no server: what goes wrong is about its file or its table.
            DbError::Sqlite(rusqlite::Error::SqliteFailure(f, detail))
                if f.code == rusqlite::ErrorCode::CannotOpen =>
            {
                return StoreError::Backend {
                    store,
                    op,
                    location: addr,
                    detail: detail.unwrap_or_else(|| f.to_string()),
                }
            }
            other => {
                return StoreError::Backend {
                    store,
                    op,
                    location: format!("{addr} table {}", self.names.table),
                    detail: other.to_string(),
                }
            }
        };
        match e {
            sqlx::Error::Io(io) => StoreError::Unreachable {
                store,
                addr,
                detail: io.to_string(),
            },
            sqlx::Error::PoolTimedOut => StoreError::Unreachable {
                store,
                addr,
                detail: format!("no connection within {} ms", self.connect_timeout_ms),
            },
            sqlx::Error::Database(db) if is_auth_error(db.as_ref()) => StoreError::Auth {
                store,
                addr,
                detail: db.message().to_owned(),
            },
            other => StoreError::Backend {
                store,
                op,
                location: format!("table {}", self.names.table),
                detail: other.to_string(),
            },
        }
    }

    async fn execute(
        &self,
        op: &'static str,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<u64, StoreError> {
        self.backend
            .execute(sql, args)
            .await
            .map_err(|e| self.error(op, e))
    }

    async fn fetch(
        &self,
        op: &'static str,
        sql: &str,
        args: Vec<Arg>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, StoreError> {
        self.backend
            .fetch(sql, args, kinds)
            .await
            .map_err(|e| self.error(op, e))
    }

    fn key_args(&self, app: &str, id: &str) -> Result<Vec<Arg>, StoreError> {
        check_app(&self.label, app)?;
        check_id(&self.label, id)?;
        Ok(vec![Arg::Text(app.to_owned()), Arg::Text(id.to_owned())])
    }

    /// After a compare-and-set changed no row: what the table holds now.
    async fn conflict(&self, app: &str, id: &str) -> Result<Cas, StoreError> {
        Ok(Cas::Conflict {
            current: self.version(app, id).await?,
        })
    }

    fn bad_value(&self, what: &str) -> StoreError {
        StoreError::Corrupt {
            store: self.label.clone(),
            location: format!("table {}", self.names.table),
            detail: format!("unexpected {what} in a row"),
        }
    }
}

fn is_auth_error(db: &dyn sqlx::error::DatabaseError) -> bool {
    // SQLSTATE 28000 / 28P01 (invalid authorization / password); MySQL's 1045 is 28000.
    matches!(db.code().as_deref(), Some("28000" | "28P01"))
}

/// A stored version (a BIGINT, never negative when shoal wrote it).
fn to_version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_db_version(v: u64) -> i64 {
    // check_write keeps versions at or below i64::MAX.
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqlStore {
    fn name(&self) -> &'static str {
        self.dialect.name()
    }

    fn describe(&self) -> String {
        format!("{} table {}", self.label, self.names.table)
    }

    async fn check(&self) -> Result<(), StoreError> {
        schema::check(self).await
    }

    async fn load(&self, app: &str, id: &str) -> Result<Option<StoredSession>, StoreError> {
        use Kind::*;
        let args = self.key_args(app, id)?;
        let rows = self
            .fetch(
                "load",
                &self.sql.load,
                args,
                &[I64, OptText, I64, I64, OptText, OptBytes],
            )
            .await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        match <[Val; 6]>::try_from(row) {
            Ok(
                [Val::I64(v), Val::OptText(valid), Val::I64(mi), Val::I64(la), Val::OptText(owner), Val::OptBytes(data)],
            ) => Ok(Some(StoredSession {
                id: id.to_owned(),
                app: app.to_owned(),
                version: to_version(v),
                valid: valid.is_some_and(|s| s.trim() == "1"),
                max_inactive_s: mi,
                last_access_ms: la,
                owner,
                data: data.unwrap_or_default(),
            })),
            _ => Err(self.bad_value("columns")),
        }
    }

    async fn version(&self, app: &str, id: &str) -> Result<Option<u64>, StoreError> {
        let args = self.key_args(app, id)?;
        let rows = self
            .fetch("read version", &self.sql.version, args, &[Kind::I64])
            .await?;
        match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
            None => Ok(None),
            Some(Val::I64(v)) => Ok(Some(to_version(v))),
            Some(_) => Err(self.bad_value("version")),
        }
    }

    async fn save(&self, s: &StoredSession, expect: Expect) -> Result<Cas, StoreError> {
        check_write(&self.label, s, expect)?;
        let valid = Arg::Text(if s.valid { "1" } else { "0" }.into());
        let (mi, la) = (Arg::I64(s.max_inactive_s), Arg::I64(s.last_access_ms));
        let (owner, data) = (Arg::OptText(s.owner.clone()), Arg::Bytes(s.data.clone()));
        let version = Arg::I64(to_db_version(s.version));
        match expect {
            Expect::Absent => {
                let mut args = self.key_args(&s.app, &s.id)?;
                args.extend([version, valid, mi, la, owner, data]);
                match self.backend.execute(&self.sql.insert, args).await {
                    Ok(_) => Ok(Cas::Done),
                    Err(e) if e.is_unique_violation() => self.conflict(&s.app, &s.id).await,
                    Err(e) => Err(self.error("insert", e)),
                }
            }
            Expect::Version(v) => {
                let mut args = vec![version, valid, mi, la, owner, data];
                args.extend(self.key_args(&s.app, &s.id)?);
                args.push(Arg::I64(to_db_version(v)));
                match self.execute("update", &self.sql.update, args).await? {
                    0 => self.conflict(&s.app, &s.id).await,
                    _ => Ok(Cas::Done),
                }
            }
        }
    }

    async fn remove(&self, app: &str, id: &str, version: u64) -> Result<Cas, StoreError> {
        let mut args = self.key_args(app, id)?;
        args.push(Arg::I64(to_db_version(version)));
        match self.execute("delete", &self.sql.remove, args).await? {
            0 => self.conflict(app, id).await,
            _ => Ok(Cas::Done),
        }
    }

    async fn touch(
        &self,
        app: &str,
        id: &str,
        version: u64,
        last_access_ms: i64,
    ) -> Result<Cas, StoreError> {
        let mut args = vec![Arg::I64(last_access_ms), Arg::I64(last_access_ms)];
        args.extend(self.key_args(app, id)?);
        args.push(Arg::I64(to_db_version(version)));
        if self.execute("touch", &self.sql.touch, args).await? > 0 {
            return Ok(Cas::Done);
        }
        // MySQL counts changed rows, not matched ones: an unchanged value is still done.
        match self.version(app, id).await? {
            Some(v) if v == version => Ok(Cas::Done),
            current => Ok(Cas::Conflict { current }),
        }
    }

    async fn keys(&self, app: &str) -> Result<Vec<String>, StoreError> {
        check_app(&self.label, app)?;
        let rows = self
            .fetch(
                "list keys",
                &self.sql.keys,
                vec![Arg::Text(app.into())],
                &[Kind::Text],
            )
            .await?;
        rows.into_iter()
            .map(|r| match r.into_iter().next() {
                Some(Val::Text(id)) => Ok(id),
                _ => Err(self.bad_value("id")),
            })
            .collect()
    }

    async fn count(&self, app: &str) -> Result<u64, StoreError> {
        check_app(&self.label, app)?;
        let rows = self
            .fetch(
                "count",
                &self.sql.count,
                vec![Arg::Text(app.into())],
                &[Kind::I64],
            )
            .await?;
        match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
            Some(Val::I64(n)) => Ok(to_version(n)),
            _ => Err(self.bad_value("count")),
        }
    }

    async fn expired(
        &self,
        app: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        check_app(&self.label, app)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let args = vec![Arg::Text(app.into()), Arg::I64(now_ms), Arg::I64(limit)];
        let rows = self
            .fetch(
                "list expired",
                &self.sql.expired,
                args,
                &[Kind::Text, Kind::I64],
            )
            .await?;
        rows.into_iter()
            .map(|r| match <[Val; 2]>::try_from(r) {
                Ok([Val::Text(id), Val::I64(v)]) => Ok((id, to_version(v))),
                _ => Err(self.bad_value("id or version")),
            })
            .collect()
    }
}
