//! The conformance suite against the stores that need no server: the in-memory twin, a
//! directory of files and SQLite; plus what only those stores do (paths, WAL, migration of
//! a Tomcat table).
use shoal_store::testing::suite;
use shoal_store::{
    Cas, Expect, FileStore, MemoryStore, SqlConfig, SqlStore, Store, StoreConfig, StoreError,
};
use std::sync::Arc;

fn sqlite_config(path: std::path::PathBuf) -> SqlConfig {
    SqlConfig {
        path: Some(path),
        ..SqlConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_twin_conforms() {
    suite::run_all(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    suite::run_all(Arc::new(FileStore::new(dir.path().join("sessions")))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StoreConfig::Sqlite(sqlite_config(dir.path().join("data/sessions.db")))
        .open()
        .expect("opens");
    suite::run_all(store).await;
}

#[tokio::test]
async fn file_store_keeps_every_file_inside_its_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("sessions");
    let store = FileStore::new(&dir);
    store.check().await.expect("check");
    // Hostile app names become one escaped path component under the directory.
    for app in ["..", "../..", "/a/../../b", ""] {
        let rec = shoal_store::StoredSession {
            app: app.into(),
            ..suite::session(app, "X1", 1)
        };
        assert_eq!(
            store.save(&rec, Expect::Absent).await.ok(),
            Some(Cas::Done),
            "{app:?}"
        );
    }
    let outside: Vec<_> = std::fs::read_dir(root.path())
        .expect("list")
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .expect("list");
    assert_eq!(outside, ["sessions"], "files escaped the directory");
    for bad in ["../x", "a/b", "", "a\0b"] {
        match store.load("/app", bad).await {
            Err(e @ StoreError::InvalidKey { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("file store") && msg.contains("session id"),
                    "{msg}"
                );
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // A damaged file is reported with its path, not read as a session.
    let path = dir.join("app-%2Fapp").join("BAD.session");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, b"not a session").expect("write");
    let e = store.load("/app", "BAD").await.expect_err("corrupt");
    assert!(
        e.to_string().contains("BAD.session") && e.to_string().contains("magic"),
        "{e}"
    );
    // A crash between write and rename leaves a temp file; keys ignore it, and check removes
    // it once it is old (a fresh one may be another process's save in progress).
    let tmp = dir.join("app-%2Fapp").join("T.session.tmp.1234");
    std::fs::write(&tmp, b"x").expect("write");
    assert_eq!(store.keys("/app").await.ok(), Some(vec!["BAD".to_string()]));
    store.check().await.expect("check");
    assert!(tmp.exists(), "a fresh temporary file is left alone");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.set_modified(old))
        .expect("backdate");
    store.check().await.expect("check");
    assert!(!tmp.exists(), "a crash's temporary file is removed");
}

#[tokio::test]
async fn sqlite_is_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = SqlStore::sqlite(&sqlite_config(path.clone())).expect("opens");
    store.check().await.expect("check");
    assert_eq!(
        store
            .save(&suite::session("/a", "W", 1), Expect::Absent)
            .await
            .ok(),
        Some(Cas::Done)
    );
    assert!(
        dir.path().join("s.db-wal").exists(),
        "no WAL file next to {}",
        path.display()
    );
}

/// A write that finds the file's write lock held by another connection (another node's
/// process on the same file) is not run inline and not refused: it waits on the writer
/// thread and is committed once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_waits_for_a_write_lock_held_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = Arc::new(SqlStore::sqlite(&sqlite_config(path.clone())).expect("opens"));
    store.check().await.expect("check");
    let first = suite::session("/a", "L1", 1);
    assert_eq!(
        store.save(&first, Expect::Absent).await.ok(),
        Some(Cas::Done)
    );
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("takes the write lock");
    let s = store.clone();
    let second = suite::session("/a", "L1", 2);
    let write = tokio::spawn(async move { s.save(&second, Expect::Version(1)).await });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(
        !write.is_finished(),
        "the write answered while another connection held the write lock"
    );
    other.execute_batch("COMMIT").expect("releases the lock");
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), write)
        .await
        .expect("answered within 5 s of the lock's release")
        .expect("task");
    assert_eq!(done.ok(), Some(Cas::Done));
    let row = store.load("/a", "L1").await.expect("load").expect("row");
    assert_eq!(row.version, 2);
}

/// Seed 000's table, as Tomcat's manager docs give it, with a row Tomcat wrote.
const SEED_TABLE: &str =
    "CREATE TABLE tomcat_sessions (session_id VARCHAR(100) NOT NULL PRIMARY KEY, \
    valid_session CHAR(1) NOT NULL, max_inactive INT NOT NULL, last_access BIGINT NOT NULL, \
    app_name VARCHAR(255), session_data BLOB)";

async fn seed_sqlite(path: &std::path::Path) {
    use sqlx::Connection;
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .expect("connect");
    sqlx::query(SEED_TABLE)
        .execute(&mut c)
        .await
        .expect("create");
    sqlx::query("INSERT INTO tomcat_sessions VALUES ('OLD1', '1', 1800, 1000, '/shop', x'CAFE')")
        .execute(&mut c)
        .await
        .expect("insert");
    c.close().await.expect("close");
}

#[tokio::test]
async fn sqlite_tomcat_table_without_version_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tomcat.db");
    seed_sqlite(&path).await;
    // create_schema = false: the error names the store, table and column and what to run.
    let strict = SqlStore::sqlite(&SqlConfig {
        create_schema: false,
        ..sqlite_config(path.clone())
    })
    .expect("opens");
    let e = strict.check().await.expect_err("missing column");
    let msg = e.to_string();
    assert!(matches!(e, StoreError::MissingColumn { .. }), "{e:?}");
    for part in [
        "sqlite store",
        "tomcat_sessions",
        "shoal_version",
        "ALTER TABLE",
        "create_schema = true",
    ] {
        assert!(msg.contains(part), "{part} not in: {msg}");
    }
    // create_schema = true: the columns are added; Tomcat's row reads as version 0.
    let store = SqlStore::sqlite(&sqlite_config(path)).expect("opens");
    store.check().await.expect("migrates");
    let old = store
        .load("/shop", "OLD1")
        .await
        .expect("load")
        .expect("row");
    assert_eq!(
        (
            old.version,
            old.valid,
            old.data.as_slice(),
            old.owner.clone()
        ),
        (0, true, &[0xCA, 0xFE][..], None)
    );
    let next = shoal_store::StoredSession { version: 1, ..old };
    assert_eq!(
        store.save(&next, Expect::Version(0)).await.ok(),
        Some(Cas::Done)
    );
    strict.check().await.expect("now complete");
}

#[tokio::test]
async fn sqlite_missing_table_without_create_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqlStore::sqlite(&SqlConfig {
        create_schema: false,
        session_table: "my_sessions".into(),
        ..sqlite_config(dir.path().join("empty.db"))
    })
    .expect("opens");
    let e = store.check().await.expect_err("no table");
    assert!(matches!(e, StoreError::MissingTable { .. }), "{e:?}");
    assert!(
        e.to_string().contains("my_sessions") && e.to_string().contains("create_schema"),
        "{e}"
    );
}

#[test]
fn sql_names_are_checked() {
    let e = SqlStore::sqlite(&SqlConfig {
        session_table: "t; DROP TABLE x".into(),
        ..sqlite_config("x.db".into())
    })
    .expect_err("refused");
    assert!(e.to_string().contains("session_table"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_file_stores_on_one_directory_lose_no_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<Arc<dyn Store>> = (0..2)
        .map(|_| Arc::new(FileStore::new(dir.path().join("shared"))) as Arc<dyn Store>)
        .collect();
    suite::shared_cas_no_lost_write(&stores, "/shared", 4, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sqlite_stores_on_one_file_lose_no_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<Arc<dyn Store>> = (0..2)
        .map(|_| {
            StoreConfig::Sqlite(sqlite_config(dir.path().join("shared.db")))
                .open()
                .expect("opens")
        })
        .collect();
    suite::shared_cas_no_lost_write(&stores, "/shared", 4, 40).await;
}
