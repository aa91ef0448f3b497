//! The three sqlx drivers behind one small interface: run a statement with bound values and
//! get rows affected, or fetch rows as values of the kinds asked for. This keeps the store's
//! logic in one place without sqlx's generic executor bounds.
use super::conns::Conns;
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
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

/// The connections (lazy: nothing connects until the first statement; one round trip per
/// statement, see `conns.rs`), whose options `check` also uses to open one more connection
/// directly and report why a server cannot be reached.
#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(Conns<SqliteConnection>),
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
    pub(crate) async fn execute(&self, sql: &str, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Backend::Sqlite(p) => on_conn!(p, |c| bind_all!(sql, args).execute(c))?.rows_affected(),
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
    ) -> Result<Vec<Vec<Val>>, sqlx::Error> {
        match self.fetch_once(sql, args.clone(), kinds).await {
            Err(e)
                if !super::conns::connection_survives(&e)
                    && !matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) =>
            {
                self.fetch_once(sql, args, kinds).await
            }
            r => r,
        }
    }

    async fn fetch_once(
        &self,
        sql: &str,
        args: Vec<Arg>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, sqlx::Error> {
        match self {
            Backend::Sqlite(p) => {
                let rows = on_conn!(p, |c| bind_all!(sql, args).fetch_all(c))?;
                decode_rows!(rows, kinds)
            }
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
    pub(crate) async fn probe(&self) -> Result<(), sqlx::Error> {
        match self {
            Backend::Sqlite(p) => {
                SqliteConnection::connect_with(p.options())
                    .await?
                    .close()
                    .await
            }
            Backend::Postgres(p) => PgConnection::connect_with(p.options()).await?.close().await,
            Backend::MySql(p) => {
                MySqlConnection::connect_with(p.options())
                    .await?
                    .close()
                    .await
            }
        }
    }
}
