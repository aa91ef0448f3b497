//! The conformance suite against real PostgreSQL, MariaDB and Redis servers that each test
//! starts on loopback (`shoal_store::testing::servers`), and the error paths only a server
//! has: wrong password, nothing listening, a Tomcat table without shoal's columns.
//! A server that cannot start fails the test with the reason.
use shoal_store::testing::servers::{self, Server};
use shoal_store::testing::suite;
use shoal_store::{
    Cas, Expect, Secret, SqlConfig, SqlStore, Store, StoreConfig, StoreError, StoredSession,
};
use std::time::{SystemTime, UNIX_EPOCH};

fn started(r: Result<Server, String>) -> Server {
    r.unwrap_or_else(|e| panic!("test server did not start: {e}"))
}

fn sql(c: StoreConfig) -> SqlConfig {
    match c {
        StoreConfig::Postgres(s) | StoreConfig::Mysql(s) => s,
        other => panic!("not sql: {other:?}"),
    }
}

fn with_url_port(c: &SqlConfig, port: u16, actual: u16) -> SqlConfig {
    SqlConfig {
        connection_url: c
            .connection_url
            .as_ref()
            .map(|u| u.replace(&format!(":{actual}/"), &format!(":{port}/"))),
        connect_timeout_ms: 2_000,
        ..c.clone()
    }
}

async fn expect_unreachable(store: &dyn Store, port: u16) {
    let e = store.check().await.expect_err("nothing listens");
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e:?}");
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains(store.name()),
        "{msg}"
    );
}

/// Tomcat's sample table (seed 000) with one row Tomcat wrote; then the checks.
async fn tomcat_table_is_migrated(
    open: impl Fn(bool) -> SqlStore,
    cfg: &StoreConfig,
    create: &str,
    insert: &str,
) {
    let strict = open(false);
    exec(cfg, create).await;
    exec(cfg, insert).await;
    let e = strict.check().await.expect_err("no version column");
    let msg = e.to_string();
    assert!(matches!(e, StoreError::MissingColumn { .. }), "{e:?}");
    for part in [
        "seed_sessions",
        "shoal_version",
        "ALTER TABLE",
        "create_schema = true",
        strict.name(),
    ] {
        assert!(msg.contains(part), "{part:?} not in: {msg}");
    }
    let store = open(true);
    store
        .check()
        .await
        .unwrap_or_else(|e| panic!("migration: {e}"));
    let old = store
        .load("/shop", "OLD1")
        .await
        .expect("load")
        .expect("Tomcat's row");
    assert_eq!(
        (old.version, old.valid, old.data.clone(), old.owner.clone()),
        (0, true, vec![0xCA, 0xFE], None)
    );
    let next = StoredSession { version: 1, ..old };
    assert_eq!(
        store.save(&next, Expect::Version(0)).await.ok(),
        Some(Cas::Done)
    );
    strict
        .check()
        .await
        .unwrap_or_else(|e| panic!("after migration: {e}"));
}

/// Run a statement on its own connection to the server (what an operator's client does).
async fn exec(cfg: &StoreConfig, stmt: &str) {
    use sqlx::Connection;
    use std::str::FromStr;
    let r = match cfg {
        StoreConfig::Postgres(c) => {
            let o = sqlx::postgres::PgConnectOptions::from_str(
                c.connection_url.as_deref().unwrap_or_default(),
            )
            .expect("url")
            .password(servers::PASSWORD);
            let mut conn = sqlx::PgConnection::connect_with(&o).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned()))
                .execute(&mut conn)
                .await
                .map(drop)
        }
        StoreConfig::Mysql(c) => {
            let o = sqlx::mysql::MySqlConnectOptions::from_str(
                c.connection_url.as_deref().unwrap_or_default(),
            )
            .expect("url")
            .password(servers::PASSWORD);
            let mut conn = sqlx::MySqlConnection::connect_with(&o)
                .await
                .expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned()))
                .execute(&mut conn)
                .await
                .map(drop)
        }
        other => panic!("not sql: {other:?}"),
    };
    r.unwrap_or_else(|e| panic!("{stmt}: {e}"));
}

/// Two stores opened from one config share its records: concurrent compare-and-sets through
/// both lose no acknowledged write.
async fn two_share_without_loss(config: StoreConfig) {
    let two: Vec<_> = (0..2)
        .map(|_| config.clone().open().expect("opens"))
        .collect();
    let app = format!("/shared{:08x}", rand::random::<u32>());
    suite::shared_cas_no_lost_write(&two, &app, 4, 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms_and_reports_errors() {
    let pg = started(servers::postgres().await);
    let good = sql(pg.config());
    suite::run_all(StoreConfig::Postgres(good.clone()).open().expect("opens")).await;
    two_share_without_loss(StoreConfig::Postgres(good.clone())).await;

    let wrong = SqlStore::postgres(&SqlConfig {
        connection_password: Some(Secret("nope".into())),
        ..good.clone()
    })
    .expect("opens");
    let e = wrong.check().await.expect_err("wrong password");
    assert!(matches!(e, StoreError::Auth { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("postgres store 127.0.0.1:{}", pg.port)) && msg.contains("password"),
        "{msg}"
    );
    assert!(
        !msg.contains("nope") && !msg.contains(servers::PASSWORD),
        "password in message: {msg}"
    );

    let closed = Server::closed_port();
    expect_unreachable(
        &SqlStore::postgres(&with_url_port(&good, closed, pg.port)).expect("opens"),
        closed,
    )
    .await;

    let open = |create_schema| {
        SqlStore::postgres(&SqlConfig {
            session_table: "seed_sessions".into(),
            create_schema,
            ..good.clone()
        })
        .expect("opens")
    };
    tomcat_table_is_migrated(
        open,
        &pg.config(),
        "CREATE TABLE seed_sessions (session_id VARCHAR(100) NOT NULL PRIMARY KEY, valid_session CHAR(1) NOT NULL, \
         max_inactive INT NOT NULL, last_access BIGINT NOT NULL, app_name VARCHAR(255), session_data BYTEA)",
        "INSERT INTO seed_sessions VALUES ('OLD1', '1', 1800, 1000, '/shop', '\\xCAFE'::bytea)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_conforms_and_reports_errors() {
    let db = started(servers::mariadb().await);
    let good = sql(db.config());
    suite::run_all(StoreConfig::Mysql(good.clone()).open().expect("opens")).await;
    two_share_without_loss(StoreConfig::Mysql(good.clone())).await;

    let wrong = SqlStore::mysql(&SqlConfig {
        connection_password: Some(Secret("nope".into())),
        ..good.clone()
    })
    .expect("opens");
    let e = wrong.check().await.expect_err("wrong password");
    assert!(matches!(e, StoreError::Auth { .. }), "{e:?}");

    let closed = Server::closed_port();
    expect_unreachable(
        &SqlStore::mysql(&with_url_port(&good, closed, db.port)).expect("opens"),
        closed,
    )
    .await;

    let open = |create_schema| {
        SqlStore::mysql(&SqlConfig {
            session_table: "seed_sessions".into(),
            create_schema,
            ..good.clone()
        })
        .expect("opens")
    };
    tomcat_table_is_migrated(
        open,
        &db.config(),
        // Exactly the table of seed 000 / Tomcat's manager docs (MEMORY engine aside).
        "CREATE TABLE seed_sessions (session_id VARCHAR(100) NOT NULL PRIMARY KEY, valid_session CHAR(1) NOT NULL, \
         max_inactive INT NOT NULL, last_access BIGINT NOT NULL, app_name VARCHAR(255), session_data MEDIUMBLOB, \
         KEY kapp_name(app_name))",
        "INSERT INTO seed_sessions VALUES ('OLD1', '1', 1800, 1000, '/shop', x'CAFE')",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_conforms_and_reports_errors() {
    let rs = started(servers::redis().await);
    let StoreConfig::Redis(good) = rs.config() else {
        panic!("redis config")
    };
    suite::run_all(StoreConfig::Redis(good.clone()).open().expect("opens")).await;
    two_share_without_loss(StoreConfig::Redis(good.clone())).await;

    let wrong_url = good.url.replace(servers::PASSWORD, "nope");
    let wrong = StoreConfig::Redis(shoal_store::RedisConfig {
        url: wrong_url,
        ..good.clone()
    })
    .open()
    .expect("opens");
    let e = wrong.check().await.expect_err("wrong password");
    assert!(matches!(e, StoreError::Auth { .. }), "{e:?}");
    assert!(!e.to_string().contains("nope"), "password in message: {e}");

    let closed = Server::closed_port();
    let url = good
        .url
        .replace(&format!(":{}/", rs.port), &format!(":{closed}/"));
    let unreachable = StoreConfig::Redis(shoal_store::RedisConfig {
        url,
        ..good.clone()
    })
    .open()
    .expect("opens");
    expect_unreachable(unreachable.as_ref(), closed).await;

    // Redis expires a record by its own clock: gone from load, keys and count.
    let store = StoreConfig::Redis(good).open().expect("opens");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let short = StoredSession {
        last_access_ms: now - 999_700,
        max_inactive_s: 1000,
        ..suite::session("/ttl", "GONE", 1)
    };
    let kept = StoredSession {
        max_inactive_s: 0,
        ..suite::session("/ttl", "KEPT", 1)
    };
    assert_eq!(
        store.save(&short, Expect::Absent).await.ok(),
        Some(Cas::Done)
    );
    assert_eq!(
        store.save(&kept, Expect::Absent).await.ok(),
        Some(Cas::Done)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.load("/ttl", "GONE").await.expect("load").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "Redis did not expire the key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        store.keys("/ttl").await.ok(),
        Some(vec!["KEPT".to_string()])
    );
    assert_eq!(store.count("/ttl").await.ok(), Some(1));
}
