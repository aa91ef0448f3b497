//! The three drivers behind one small interface: run a statement with bound values and
//! get rows affected, or fetch rows as values of the kinds asked for. This keeps the store's
//! logic in one place without sqlx's generic executor bounds. PostgreSQL and MySQL/MariaDB
//! go through sqlx; SQLite through rusqlite on dedicated threads with group commit
//! (`sqlite.rs` says why).
use super::conns::Conns;
use super::sqlite::SqliteDb;
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

/// A value bound to a statement.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    I64(i64),
    Text(String),
    OptText(Option<String>),
    Bytes(Vec<u8>),
}

/// The kind of a fetched column.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    I64,
    Text,
    OptText,
    OptBytes,
}

/// A fetched value.
#[derive(Debug)]
pub(crate) enum Val {
    I64(i64),
    Text(String),
    OptText(Option<String>),
    OptBytes(Option<Vec<u8>>),
}

/// What a driver answered instead of a result.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlx(sqlx::Error),
    Sqlite(rusqlite::Error),
    /// SQLite: the transaction this write was part of failed as a whole (nothing of it was
    /// committed), with the reason.
    Batch(String),
    /// SQLite: the connection thread is gone or could not answer.
    Gone(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Sqlx(e) => e.fmt(f),
            DbError::Sqlite(e) => e.fmt(f),
            DbError::Batch(m) => write!(f, "the transaction of this write failed: {m}"),
            DbError::Gone(m) => f.write_str(m),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        DbError::Sqlx(e)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl DbError {
    /// An insert over an existing primary key.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlx(sqlx::Error::Database(db)) => db.is_unique_violation(),
            DbError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            ),
            _ => false,
        }
    }
}

/// The connections (lazy: nothing connects until the first statement; one round trip per
/// statement, see `conns.rs`), whose options `check` also uses to open one more connection
/// directly and report why a server cannot be reached.
#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(SqliteDb),
    Postgres(Conns<PgConnection>),
    MySql(Conns<MySqlConnection>),
}

/// Runs `$run` (a query future on `c`) on a leased connection and gives it back.
macro_rules! on_conn {
    ($conns:expr, |$c:ident| $run:expr) => {{
        let mut lease = $conns.lease().await?;
        let r = match lease.conn() {
            Some($c) => $run.await,
            None => Err(sqlx::Error::PoolClosed),
        };
        lease.done(&r);
        r
    }};
}

macro_rules! bind_all {
    ($sql:expr, $args:expr) => {{
        let mut q = sqlx::query(AssertSqlSafe($sql.to_owned()));
        for a in $args {
            q = match a {
                Arg::I64(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::OptText(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
            };
        }
        q
    }};
}

macro_rules! decode_rows {
    ($rows:expr, $kinds:expr) => {
        $rows
            .iter()
            .map(|row| {
                $kinds
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        Ok(match k {
                            Kind::I64 => Val::I64(row.try_get(i)?),
                            Kind::Text => Val::Text(row.try_get(i)?),
                            Kind::OptText => Val::OptText(row.try_get(i)?),
                            Kind::OptBytes => Val::OptBytes(row.try_get(i)?),
                        })
                    })
                    .collect::<Result<Vec<Val>, sqlx::Error>>()
            })
            .collect::<Result<Vec<Vec<Val>>, sqlx::Error>>()
    };
}

impl Backend {
    /// Run a statement; the number of rows it changed.
    pub(crate) async fn execute(&self, sql: &str, args: Vec<Arg>) -> Result<u64, DbError> {
        Ok(match self {
            Backend::Sqlite(db) => db.execute(sql, args).await?,
            Backend::Postgres(p) => {
                on_conn!(p, |c| bind_all!(sql, args).execute(c))?.rows_affected()
            }
            Backend::MySql(p) => on_conn!(p, |c| bind_all!(sql, args).execute(c))?.rows_affected(),
        })
    }

    /// Run a query; its rows as values of `kinds` (one per column, in order).
    ///
    /// Every query here only reads, so one that failed because its connection was cut (a
    /// restarted server cuts every idle connection; the failure drops them all) is tried once
    /// more on a new connection: a server restart costs readers nothing. Writes are never
    /// tried twice (their outcome is unknown).
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        args: Vec<Arg>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, DbError> {
        if let Backend::Sqlite(db) = self {
            return db.fetch(sql, args, kinds).await;
        }
        match self.fetch_once(sql, args.clone(), kinds).await {
            Err(e)
                if !super::conns::connection_survives(&e)
                    && !matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) =>
            {
                Ok(self.fetch_once(sql, args, kinds).await?)
            }
            r => Ok(r?),
        }
    }

    async fn fetch_once(
        &self,
        sql: &str,
        args: Vec<Arg>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, sqlx::Error> {
        match self {
            Backend::Sqlite(_) => Err(sqlx::Error::PoolClosed),
            Backend::Postgres(p) => {
                let rows = on_conn!(p, |c| bind_all!(sql, args).fetch_all(c))?;
                decode_rows!(rows, kinds)
            }
            Backend::MySql(p) => {
                let rows = on_conn!(p, |c| bind_all!(sql, args).fetch_all(c))?;
                decode_rows!(rows, kinds)
            }
        }
    }

    /// Open and close one connection outside the pool: its error says why (refused,
    /// credentials, unknown database) where a pool would only time out.
    pub(crate) async fn probe(&self) -> Result<(), DbError> {
        match self {
            Backend::Sqlite(db) => db.probe().await,
            Backend::Postgres(p) => Ok(PgConnection::connect_with(p.options())
                .await?
                .close()
                .await?),
            Backend::MySql(p) => Ok(MySqlConnection::connect_with(p.options())
                .await?
                .close()
                .await?),
        }
    }
}
