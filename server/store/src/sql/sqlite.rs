//! The SQLite backend: `rusqlite` connections on dedicated threads, with group commit.
//!
//! sqlx's SQLite driver runs each connection on a worker thread and hops to it and back per
//! statement through async channels, with its own argument and row machinery around every
//! call; a per-request session (one load, one compare-and-set) paid that four times. Here:
//!
//! - **Writes run inline when nothing else writes**: a write that finds the write
//!   connection free and no write queued runs on the calling thread, in autocommit (a point
//!   `UPDATE` on a cached page with `synchronous = NORMAL` takes microseconds, less than the
//!   two thread wake-ups of a hop to a writer thread and back, which were ~25% of a
//!   per-request session's time). It never waits there: if the connection is busy or
//!   another process holds the file's write lock, the write goes to the queue below.
//! - **One writer thread** takes the writes that found the connection busy: every write
//!   waiting in its queue (up to [`BATCH_MAX`]), run in **one transaction** (`BEGIN
//!   IMMEDIATE` … `COMMIT`) on the same connection: one WAL append and one lock round for
//!   the whole batch (group commit under contention). Each statement is still its own
//!   compare-and-set (its `WHERE … AND version = ?` and its rows-affected count); a
//!   statement that fails (a primary-key violation) is rolled back alone by SQLite and
//!   answered with its error, the others commit. Every write is answered only after its
//!   `COMMIT` returned: an acknowledged write is committed.
//! - **Reads run inline** on the calling thread: on the write connection when it is free and
//!   no write is queued (its page cache is never stale after its own writes), else on a
//!   connection from a small pool (one per thread reading at the same moment; the read has no
//!   await point): a point `SELECT` on a cached page takes microseconds, less than the two
//!   thread wake-ups a hop to a reader thread costs. Outside any transaction, concurrently
//!   with the writer (WAL: readers never wait for the writer), each read sees every write
//!   acknowledged before it started.
//! - Statements are prepared once per connection (`prepare_cached`).
//! - **Checkpoints off the request path**: SQLite's automatic checkpoint (every 1,000 WAL
//!   pages, run by the commit that crosses the mark, with an `fsync`) would now run inline on
//!   a request's thread. It is off (`wal_autocheckpoint = 0`); every [`CHECKPOINT_EVERY`]
//!   commits the writer thread runs a `PASSIVE` checkpoint on a connection of its own, which
//!   never blocks the writes and reads going on meanwhile.
//!
//! Durability: WAL with `synchronous = NORMAL`. A commit is in the WAL file (written, not
//! fsynced) when it returns, so it survives `kill -9` of the process, which is what the
//! persistent manager promises; a power loss or an OS crash may lose the last commits
//! (`FULL` would fsync the WAL on every commit).
//!
//! Several processes on one file (two nodes in per-request mode): SQLite's file locks keep
//! them apart. An inline write that finds the write lock taken does not wait (its statement
//! did nothing; it goes to the writer thread). The writer thread retries in a busy handler
//! that sleeps 50 µs doubling to 3.2 ms (SQLite's own sleeps 1 ms to 100 ms), up to the
//! store's `connect_timeout_ms` (at least 1 s), then answers `database is locked`.
//!
//! A connection is opened on its thread's first statement (so `check` can create the
//! directory first) and opened again after an error that leaves it in doubt.
use super::backend::{Arg, DbError, Kind, Val};
use rusqlite::{Connection, OpenFlags};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;
use tokio::sync::oneshot;

/// Writes committed in one transaction at most.
pub(crate) const BATCH_MAX: usize = 256;
/// Commits between two checkpoints (a commit appends one WAL frame per page it changed:
/// about SQLite's default of a checkpoint every 1,000 pages).
pub(crate) const CHECKPOINT_EVERY: usize = 300;
/// Idle read connections kept.
pub(crate) const READERS_IDLE: usize = 4;

enum Msg {
    Write(Job),
    /// Copy the WAL into the database file (`PRAGMA wal_checkpoint(PASSIVE)`).
    Checkpoint,
}

struct Job {
    sql: String,
    args: Vec<Arg>,
    reply: oneshot::Sender<Result<u64, DbError>>,
}

/// How the threads open their connections.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) path: PathBuf,
    /// Longest a writer waits for another process's write lock.
    pub(crate) busy_timeout: Duration,
    /// `PRAGMA cache_size` (negative: KiB).
    pub(crate) cache_size: i64,
}

thread_local! {
    /// This thread runs an inline write: the busy handler gives up at once.
    static INLINE: Cell<bool> = const { Cell::new(false) };
}

/// The write connection (opened on first use) and the writes sent to the writer thread and
/// not answered yet.
struct Writes {
    conn: Mutex<Option<Connection>>,
    queued: AtomicUsize,
    /// Commits since the last checkpoint was asked for.
    commits: AtomicUsize,
}

impl Writes {
    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` commits; true when a checkpoint is due.
    fn committed(&self, n: usize) -> bool {
        let before = self.commits.fetch_add(n, Ordering::AcqRel);
        if before + n >= CHECKPOINT_EVERY {
            self.commits.store(0, Ordering::Release);
            return true;
        }
        false
    }

    /// The connection if no one holds it now.
    fn try_lock(&self) -> Option<MutexGuard<'_, Option<Connection>>> {
        match self.conn.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// The write connection, its writer thread and the read connections of one SQLite file.
pub(crate) struct SqliteDb {
    options: Options,
    writer: mpsc::Sender<Msg>,
    writes: Arc<Writes>,
    /// Idle read connections.
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
            .field("path", &self.options.path)
            .finish_non_exhaustive()
    }
}

impl SqliteDb {
    /// Starts the writer thread; nothing opens the file before the first statement. The
    /// thread ends when the `SqliteDb` is dropped (its queue closes).
    pub(crate) fn new(options: Options) -> Self {
        let (writer, wrx) = mpsc::channel::<Msg>();
        let o = options.clone();
        let writes = Arc::new(Writes {
            conn: Mutex::new(None),
            queued: AtomicUsize::new(0),
            commits: AtomicUsize::new(0),
        });
        let w = writes.clone();
        let _ = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(&o, &w, &wrx));
        SqliteDb {
            options,
            writer,
            writes,
            readers: Mutex::new(Vec::new()),
        }
    }

    /// Runs a write (committed when this returns `Ok`); the rows it changed. Inline when
    /// the connection is free and no write is queued, else through the writer thread.
    pub(crate) async fn execute(&self, sql: &str, args: Vec<Arg>) -> Result<u64, DbError> {
        if self.writes.queued.load(Ordering::Acquire) == 0 {
            if let Some(mut conn) = self.writes.try_lock() {
                if let Some(r) = write_inline(&self.options, &mut conn, sql, &args) {
                    drop(conn);
                    if r.is_ok() && self.writes.committed(1) {
                        let _ = self.writer.send(Msg::Checkpoint);
                    }
                    return r;
                }
            }
        }
        let (reply, rx) = oneshot::channel();
        let job = Job {
            sql: sql.to_owned(),
            args,
            reply,
        };
        self.writes.queued.fetch_add(1, Ordering::AcqRel);
        if self.writer.send(Msg::Write(job)).is_err() {
            self.writes.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(DbError::Gone("the sqlite writer thread has stopped".into()));
        }
        rx.await.unwrap_or_else(|_| {
            Err(DbError::Gone(
                "the sqlite writer thread dropped the statement".into(),
            ))
        })
    }

    /// Runs a read here, now; its rows as values of `kinds`.
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        args: Vec<Arg>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, DbError> {
        // On the write connection when it is free: its page cache holds what it wrote, where
        // a read connection would find its cache stale after every write and read the pages
        // again (`readDbPage`, ~6% of a per-request session's time).
        if self.writes.queued.load(Ordering::Acquire) == 0 {
            if let Some(mut conn) = self.writes.try_lock() {
                if let Ok(c) = connection(&self.options, &mut conn) {
                    let r = exec_read(c, sql, &args, kinds);
                    if matches!(&r, Err(e) if connection_in_doubt(e)) {
                        *conn = None;
                    }
                    return Ok(r?);
                }
            }
        }
        let idle = self.lock_readers().pop();
        let c = match idle {
            Some(c) => c,
            None => open(&self.options)?,
        };
        let r = exec_read(&c, sql, &args, kinds);
        let keep = !matches!(&r, Err(e) if connection_in_doubt(e));
        if keep {
            let mut idle = self.lock_readers();
            if idle.len() < READERS_IDLE {
                idle.push(c);
            }
        }
        Ok(r?)
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the file once outside the threads: its error says why (a directory that cannot
    /// be created or written, a file that is not a database).
    pub(crate) async fn probe(&self) -> Result<(), DbError> {
        let o = self.options.clone();
        tokio::task::spawn_blocking(move || open(&o).map(drop))
            .await
            .map_err(|e| DbError::Gone(e.to_string()))?
    }
}

/// Opens a connection in WAL mode with `synchronous = NORMAL`, the cache size, the busy
/// handler and a statement cache.
fn open(o: &Options) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut c = Connection::open_with_flags(&o.path, flags)?;
    let limit = o.busy_timeout;
    c.busy_handler(Some(move |n: i32| {
        !INLINE.with(Cell::get) && busy(n, limit)
    }))?;
    // journal_mode answers a row; the others answer nothing.
    let _: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    c.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA cache_size = {};",
        o.cache_size
    ))?;
    // Checkpoints run on the writer thread (`checkpoint`), never in a request's commit.
    c.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    c.set_prepared_statement_cache_capacity(32);
    Ok(c)
}

/// The busy handler: sleep 50 µs doubling to 3.2 ms per retry, until `limit` has passed.
fn busy(n: i32, limit: Duration) -> bool {
    let n = u32::try_from(n).unwrap_or(0);
    // Sleeps before retry n: 50, 100, 200, 400, 800, 1600, then 3200 µs each.
    let slept_us: u64 =
        (0..n.min(6)).map(|i| 50u64 << i).sum::<u64>() + u64::from(n.saturating_sub(6)) * 3_200;
    if u128::from(slept_us) >= limit.as_micros() {
        return false;
    }
    std::thread::sleep(Duration::from_micros(50u64 << n.min(6)));
    true
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, args: &[Arg]) -> rusqlite::Result<()> {
    for (i, a) in args.iter().enumerate() {
        let i = i + 1;
        match a {
            Arg::I64(v) => stmt.raw_bind_parameter(i, v)?,
            Arg::Text(v) => stmt.raw_bind_parameter(i, v.as_str())?,
            Arg::OptText(v) => stmt.raw_bind_parameter(i, v.as_deref())?,
            Arg::Bytes(v) => stmt.raw_bind_parameter(i, v.as_slice())?,
        }
    }
    Ok(())
}

fn exec_write(c: &Connection, sql: &str, args: &[Arg]) -> rusqlite::Result<u64> {
    let mut stmt = c.prepare_cached(sql)?;
    bind(&mut stmt, args)?;
    let n = stmt.raw_execute()?;
    Ok(n as u64)
}

fn exec_read(
    c: &Connection,
    sql: &str,
    args: &[Arg],
    kinds: &[Kind],
) -> rusqlite::Result<Vec<Vec<Val>>> {
    let mut stmt = c.prepare_cached(sql)?;
    bind(&mut stmt, args)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut vals = Vec::with_capacity(kinds.len());
        for (i, k) in kinds.iter().enumerate() {
            vals.push(match k {
                Kind::I64 => Val::I64(row.get(i)?),
                Kind::Text => Val::Text(row.get(i)?),
                Kind::OptText => Val::OptText(row.get(i)?),
                Kind::OptBytes => Val::OptBytes(row.get(i)?),
            });
        }
        out.push(vals);
    }
    Ok(out)
}

/// Errors after which the connection is closed and opened again: everything but what a
/// statement answers about its own input (a constraint, a type, a missing table).
fn connection_in_doubt(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(ConstraintViolation | TypeMismatch | TooBig | ApiMisuse | OperationInterrupted) => {
            false
        }
        Some(Unknown) => false, // SQLITE_ERROR: a bad statement (no such table or column)
        Some(DatabaseBusy | DatabaseLocked) => false,
        Some(_) => true,
        None => false,
    }
}

fn connection<'c>(
    o: &Options,
    conn: &'c mut Option<Connection>,
) -> Result<&'c Connection, DbError> {
    if conn.is_none() {
        *conn = Some(open(o)?);
    }
    conn.as_ref()
        .ok_or_else(|| DbError::Gone("no sqlite connection".into()))
}

/// Runs a write on the calling thread in autocommit. `None` when the file's write lock is
/// taken (by another process): the statement did nothing; queue it instead.
fn write_inline(
    o: &Options,
    conn: &mut Option<Connection>,
    sql: &str,
    args: &[Arg],
) -> Option<Result<u64, DbError>> {
    let c = match connection(o, conn) {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    INLINE.with(|f| f.set(true));
    let r = exec_write(c, sql, args);
    INLINE.with(|f| f.set(false));
    match r {
        Err(e) if is_busy(&e) => None,
        Err(e) => {
            if connection_in_doubt(&e) {
                *conn = None;
            }
            Some(Err(DbError::Sqlite(e)))
        }
        Ok(n) => Some(Ok(n)),
    }
}

/// Another connection holds the write lock (a statement in autocommit then did nothing).
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A `PASSIVE` checkpoint on the writer thread's own connection: copies what no reader
/// still needs from the WAL into the database file, without blocking anyone.
fn checkpoint(o: &Options, conn: &mut Option<Connection>) {
    let r = connection(o, conn).and_then(|c| {
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(DbError::Sqlite)
    });
    if let Err(e) = r {
        tracing::debug!(path = %o.path.display(), "sqlite checkpoint: {e}");
        *conn = None;
    }
}

fn write_loop(o: &Options, writes: &Writes, rx: &mpsc::Receiver<Msg>) {
    let mut batch: Vec<Job> = Vec::with_capacity(BATCH_MAX);
    let mut ckpt_conn: Option<Connection> = None;
    loop {
        let mut want_checkpoint = false;
        match rx.recv() {
            Ok(Msg::Write(j)) => batch.push(j),
            Ok(Msg::Checkpoint) => want_checkpoint = true,
            Err(_) => return,
        }
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(Msg::Write(j)) => batch.push(j),
                Ok(Msg::Checkpoint) => want_checkpoint = true,
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if want_checkpoint {
                checkpoint(o, &mut ckpt_conn);
            }
            continue;
        }
        let n = batch.len();
        let mut conn = writes.lock();
        match connection(o, &mut conn) {
            Ok(c) => {
                if !commit_batch(c, &mut batch) {
                    *conn = None;
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for j in batch.drain(..) {
                    let _ = j.reply.send(Err(DbError::Gone(msg.clone())));
                }
            }
        }
        drop(conn);
        writes.queued.fetch_sub(n, Ordering::AcqRel);
        if writes.committed(1) || want_checkpoint {
            checkpoint(o, &mut ckpt_conn);
        }
    }
}

/// Runs `batch` in one transaction and answers every job after the commit (or with the
/// error that stopped it). False when the connection is in doubt.
fn commit_batch(c: &Connection, batch: &mut Vec<Job>) -> bool {
    if batch.len() == 1 {
        // Alone: autocommit, no BEGIN / COMMIT statements around it.
        let Some(j) = batch.pop() else { return true };
        let r = exec_write(c, &j.sql, &j.args);
        let healthy = !matches!(&r, Err(e) if connection_in_doubt(e));
        let _ = j.reply.send(r.map_err(DbError::Sqlite));
        return healthy;
    }
    if let Err(e) = c.execute_batch("BEGIN IMMEDIATE") {
        let healthy = !connection_in_doubt(&e);
        let msg = e.to_string();
        for j in batch.drain(..) {
            let _ = j.reply.send(Err(DbError::Batch(msg.clone())));
        }
        return healthy;
    }
    let mut results: Vec<Result<u64, rusqlite::Error>> = Vec::with_capacity(batch.len());
    let mut aborted: Option<String> = None;
    for j in batch.iter() {
        if aborted.is_some() {
            results.push(Ok(0)); // not run; answered with `aborted` below
            continue;
        }
        let r = exec_write(c, &j.sql, &j.args);
        if r.is_err() && c.is_autocommit() {
            // The error rolled back the whole transaction (I/O, full disk): nothing of
            // this batch is committed.
            aborted = Some(match &r {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            });
        }
        results.push(r);
    }
    if aborted.is_none() {
        if let Err(e) = c.execute_batch("COMMIT") {
            let _ = c.execute_batch("ROLLBACK");
            aborted = Some(e.to_string());
        }
    }
    let healthy = aborted.is_none();
    for (j, r) in batch.drain(..).zip(results) {
        let answer = match &aborted {
            Some(msg) => Err(DbError::Batch(msg.clone())),
            None => r.map_err(DbError::Sqlite),
        };
        let _ = j.reply.send(answer);
    }
    healthy
}

#[cfg(test)]
mod tests {
    use super::busy;
    use std::time::Duration;

    #[test]
    fn the_busy_handler_gives_up_after_its_limit() {
        let limit = Duration::from_millis(20);
        // 50+100+200+400+800+1600 = 3150 µs after 6 retries, then 3200 µs each.
        assert!(busy(0, limit));
        assert!(busy(7, limit));
        assert!(!busy(12, limit));
    }
}
