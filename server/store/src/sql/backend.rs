//! The three sqlx drivers behind one small interface: run a statement with bound values and
//! get rows affected, or fetch rows as values of the kinds asked for. This keeps the store's
//! logic in one place without sqlx's generic executor bounds.
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{AssertSqlSafe, Connection, Row};

/// A value bound to a statement.
#[derive(Debug)]
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

/// A pool (lazy: nothing connects until the first statement) and the options to open one
/// more connection directly, which `check` uses to report why a server cannot be reached.
#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool, SqliteConnectOptions),
    Postgres(PgPool, PgConnectOptions),
    MySql(MySqlPool, MySqlConnectOptions),
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
    pub(crate) async fn execute(&self, sql: &str, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Backend::Sqlite(p, _) => bind_all!(sql, args).execute(p).await?.rows_affected(),
            Backend::Postgres(p, _) => bind_all!(sql, args).execute(p).await?.rows_affected(),
            Backend::MySql(p, _) => bind_all!(sql, args).execute(p).await?.rows_affected(),
        })
    }

    /// Run a query; its rows as values of `kinds` (one per column, in order).
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        args: Vec<Arg>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, sqlx::Error> {
        match self {
            Backend::Sqlite(p, _) => {
                let rows = bind_all!(sql, args).fetch_all(p).await?;
                decode_rows!(rows, kinds)
            }
            Backend::Postgres(p, _) => {
                let rows = bind_all!(sql, args).fetch_all(p).await?;
                decode_rows!(rows, kinds)
            }
            Backend::MySql(p, _) => {
                let rows = bind_all!(sql, args).fetch_all(p).await?;
                decode_rows!(rows, kinds)
            }
        }
    }

    /// Open and close one connection outside the pool: its error says why (refused,
    /// credentials, unknown database) where a pool would only time out.
    pub(crate) async fn probe(&self) -> Result<(), sqlx::Error> {
        match self {
            Backend::Sqlite(_, o) => sqlx::SqliteConnection::connect_with(o).await?.close().await,
            Backend::Postgres(_, o) => sqlx::PgConnection::connect_with(o).await?.close().await,
            Backend::MySql(_, o) => sqlx::MySqlConnection::connect_with(o).await?.close().await,
        }
    }
}
