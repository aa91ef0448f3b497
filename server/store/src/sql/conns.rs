//! The SQL store's connections: at most `max_connections`, each running one statement at a
//! time, so that a statement costs exactly one round trip to the server.
//!
//! sqlx's `Pool` pings a connection when it hands it out (`test_before_acquire`, on by
//! default) and again, always, when it takes it back: three round trips per statement where
//! one is needed, so a per-request session (one load, one compare-and-set save) cost six.
//! Here a connection is pinged only when it sat idle longer than [`IDLE_PING`] (it may have
//! been cut meanwhile). A connection whose statement failed below SQL (I/O, protocol) or
//! whose statement was abandoned mid-way (the caller's timeout dropped the future) is
//! closed, never reused: its state is unknown. After such a failure every idle connection is
//! dropped too (a restarted server has cut them all), so a restart costs one failed
//! statement, not one per pooled connection.
use sqlx::Connection;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// An idle connection older than this is pinged before its next statement.
pub(crate) const IDLE_PING: Duration = Duration::from_secs(10);

pub(crate) struct Conns<C: Connection> {
    options: C::Options,
    idle: Mutex<Vec<(C, Instant)>>,
    permits: Semaphore,
    /// How long to wait for a free connection or a new one.
    acquire_timeout: Duration,
}

impl<C: Connection> std::fmt::Debug for Conns<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns")
            .field("idle", &self.lock().len())
            .field("free", &self.permits.available_permits())
            .finish()
    }
}

/// One connection, lent for one statement. Dropped without [`Lease::done`] (an abandoned
/// statement), its connection is closed.
pub(crate) struct Lease<'a, C: Connection> {
    conns: &'a Conns<C>,
    conn: Option<C>,
    _permit: SemaphorePermit<'a>,
}

impl<C: Connection> Conns<C> {
    /// Nothing connects until the first statement.
    pub(crate) fn new(options: C::Options, max: u32, acquire_timeout: Duration) -> Self {
        let max = usize::try_from(max.max(1)).unwrap_or(1);
        Conns {
            options,
            idle: Mutex::new(Vec::with_capacity(max)),
            permits: Semaphore::new(max),
            acquire_timeout,
        }
    }

    pub(crate) fn options(&self) -> &C::Options {
        &self.options
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(C, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for one statement: an idle one (pinged first if idle for long), else a
    /// new one. `PoolTimedOut` when none is free or can be opened within the timeout.
    pub(crate) async fn lease(&self) -> Result<Lease<'_, C>, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        let permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.lock().pop();
        let conn = match idle {
            Some((c, since)) if since.elapsed() < IDLE_PING => Some(c),
            Some((mut c, _)) => match tokio::time::timeout_at(deadline, c.ping()).await {
                Ok(Ok(())) => Some(c),
                // Cut while idle (or too slow to tell): a new one instead.
                _ => None,
            },
            None => None,
        };
        let conn = match conn {
            Some(c) => c,
            None => tokio::time::timeout_at(deadline, C::connect_with(&self.options))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok(Lease {
            conns: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    /// Idle connections (for tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.lock().len()
    }
}

impl<C: Connection> Lease<'_, C> {
    /// The connection (`None` only after [`Lease::done`], which consumes the lease).
    pub(crate) fn conn(&mut self) -> Option<&mut C> {
        self.conn.as_mut()
    }

    /// The statement finished with `result`: the connection goes back to the idle set
    /// unless the error says the connection itself is in doubt, in which case it and every
    /// idle connection are closed.
    pub(crate) fn done<T>(mut self, result: &Result<T, sqlx::Error>) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match result {
            Err(e) if !connection_survives(e) => {
                drop(conn);
                self.conns.lock().clear();
            }
            _ => self.conns.lock().push((conn, Instant::now())),
        }
    }
}

/// Errors the server answered at the SQL level (a constraint, a type or a missing row):
/// the connection is still in a known state.
pub(crate) fn connection_survives(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(d) = e {
        // Except the server's connection exceptions (SQLSTATE 08…) and shutdowns (57P…:
        // "terminating connection due to unexpected postmaster exit"): they end the session.
        return !d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P"));
    }
    matches!(
        e,
        sqlx::Error::Database(_)
            | sqlx::Error::RowNotFound
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    fn conns(max: u32) -> Conns<SqliteConnection> {
        Conns::new(
            SqliteConnectOptions::new().in_memory(true),
            max,
            Duration::from_millis(500),
        )
    }

    async fn select(
        lease: &mut Lease<'_, SqliteConnection>,
        sql: &str,
    ) -> Result<i64, sqlx::Error> {
        let c = lease.conn().ok_or(sqlx::Error::PoolClosed)?;
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(c)
            .await
    }

    #[tokio::test]
    async fn a_connection_is_reused_after_success_and_sql_errors() {
        let c = conns(2);
        let mut l = c.lease().await.expect("lease");
        let r = select(&mut l, "select 1").await;
        assert_eq!(r.as_ref().ok(), Some(&1));
        l.done(&r);
        assert_eq!(c.idle_count(), 1);
        let mut l = c.lease().await.expect("lease");
        assert_eq!(
            c.idle_count(),
            0,
            "the idle connection was taken, not a new one made"
        );
        let r = select(&mut l, "select * from no_such_table").await;
        assert!(matches!(r, Err(sqlx::Error::Database(_))), "{r:?}");
        l.done(&r);
        assert_eq!(c.idle_count(), 1, "an SQL error keeps the connection");
    }

    #[tokio::test]
    async fn an_abandoned_or_broken_statement_closes_the_connection_and_the_idle_ones() {
        let c = conns(3);
        let (mut a, mut b) = (c.lease().await.expect("a"), c.lease().await.expect("b"));
        let ra = select(&mut a, "select 1").await;
        a.done(&ra);
        // Dropped without done: the statement's state is unknown.
        let _ = select(&mut b, "select 2").await;
        drop(b);
        assert_eq!(c.idle_count(), 1, "the abandoned connection is not reused");
        let l = c.lease().await.expect("lease");
        l.done::<()>(&Err(sqlx::Error::Io(std::io::Error::other("cut"))));
        assert_eq!(
            c.idle_count(),
            0,
            "an I/O error drops every idle connection"
        );
    }

    #[tokio::test]
    async fn leases_are_bounded_and_time_out() {
        let c = conns(1);
        let held = c.lease().await.expect("first");
        let e = c.lease().await.err();
        assert!(matches!(e, Some(sqlx::Error::PoolTimedOut)), "{e:?}");
        drop(held);
        assert!(c.lease().await.is_ok(), "the permit came back");
    }
}
