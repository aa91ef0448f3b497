//! The `[http]` section: defaults, TOML parsing, unknown keys rejected, validation messages.
use shoal_http::{ConfigError, HttpConfig};
use shoal_session::{ManagerKind, ReplicationMode};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    http: HttpConfig,
}

fn parse(text: &str) -> Result<HttpConfig, String> {
    toml::from_str::<File>(text)
        .map(|f| f.http)
        .map_err(|e| e.to_string())
}

#[test]
fn defaults_match_tomcat() {
    let c = HttpConfig::default();
    assert_eq!(c.cookie_name, "JSESSIONID");
    let ctx = &c.contexts[0];
    assert_eq!(ctx.path, "/app");
    assert_eq!(ctx.session.max_inactive_secs, 1800);
    assert_eq!(ctx.session.send_all_sessions_size, 1000);
    assert_eq!(ctx.session.state_transfer_timeout_secs, 60);
    assert_eq!(ctx.session.backups, 1);
    assert!(c.validate().is_ok());
    let f = ctx
        .filter()
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("default filter"));
    assert!(
        f.is_match("/app/img/logo.png") && f.is_match("/app/a.woff2") && f.is_match("/app/s.js")
    );
    assert!(!f.is_match("/app/counter"));
}

#[test]
fn parses_a_full_section() {
    let c = parse(
        r#"
        [http]
        bind = "0.0.0.0"
        port = 18081
        cookie_name = "SID"

        [[http.contexts]]
        path = "/app"
        url_filter = ""

        [http.contexts.session]
        manager = "backup"
        replication = "async"
        backups = 2
        max_inactive_secs = 60
        limits = { max_attributes = 10, max_attribute_bytes = 2048 }

        [[http.contexts]]
        path = "/shop"
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.port, c.cookie_name.as_str()), (18081, "SID"));
    assert_eq!(c.contexts.len(), 2);
    let s = &c.contexts[0].session;
    assert_eq!(
        (s.manager, s.replication, s.backups),
        (ManagerKind::Backup, ReplicationMode::Async, 2)
    );
    assert_eq!(s.limits.max_attributes, 10);
    assert_eq!(
        s.limits.max_session_bytes,
        8 << 20,
        "unset limits keep their defaults"
    );
    assert!(
        c.contexts[0].filter().ok().flatten().is_none(),
        "empty filter disables it"
    );
    assert_eq!(c.contexts[1].session.manager, ManagerKind::Delta);
    assert!(c.validate().is_ok());
}

#[test]
fn unknown_keys_are_errors() {
    let e = parse("[http]\nprot = 1\n").err().unwrap_or_default();
    assert!(e.contains("prot"), "{e}");
    let e = parse(
        "[http]\n[[http.contexts]]\npath = \"/a\"\n[http.contexts.session]\nmanger = \"delta\"\n",
    )
    .err()
    .unwrap_or_default();
    assert!(e.contains("manger"), "{e}");
    let e = parse("[http]\n[[http.contexts]]\n[http.contexts.session]\nmanager = \"mesh\"\n")
        .err()
        .unwrap_or_default();
    assert!(e.contains("mesh") || e.contains("variant"), "{e}");
}

#[test]
fn validation_names_the_offending_key() {
    let mut c = HttpConfig::default();
    c.contexts[0].url_filter = "(".into();
    assert!(matches!(c.validate(), Err(ConfigError::BadFilter { .. })));
    assert!(c
        .validate()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("url_filter"));
    let mut c = HttpConfig::default();
    c.contexts.push(c.contexts[0].clone());
    assert!(matches!(c.validate(), Err(ConfigError::DuplicatePath(_))));
    let mut c = HttpConfig::default();
    c.contexts[0].path = "app/".into();
    assert!(matches!(c.validate(), Err(ConfigError::BadPath(_))));
    let c = HttpConfig {
        cookie_name: "a b".into(),
        ..HttpConfig::default()
    };
    assert!(c.validate().is_err());
}

/// Seed 000's Tomcat configuration (PersistentManager, JDBCStore on MySQL, maxIdleBackup=0,
/// processExpiresFrequency=1) in shoal's TOML, as the README shows it.
const SEED000: &str = r#"
[http]
[[http.contexts]]
path = "/app"

[http.contexts.session]
manager = "persistent"
max_inactive_secs = 1800

[http.contexts.session.persistent]
mode = "sticky"
max_idle_backup = 0
process_expires_frequency = 1
save_on_restart = true

[http.contexts.session.store]
kind = "mysql"
connection_url = "mysql://tomcat@db.example:3306/tomcat"
connection_password = "secret"
session_table = "tomcat_sessions"
session_id_col = "session_id"
session_app_col = "app_name"
session_valid_col = "valid_session"
session_max_inactive_col = "max_inactive"
session_last_accessed_col = "last_access"
session_data_col = "session_data"
"#;

#[test]
fn persistent_context_with_tomcat_names_parses_and_unknown_keys_are_named() {
    let c = parse(SEED000).unwrap_or_else(|e| panic!("{e}"));
    let s = &c.contexts[0].session;
    assert_eq!(s.manager, ManagerKind::Persistent);
    assert_eq!(s.persistent.max_idle_backup, 0);
    assert_eq!(s.persistent.process_expires_frequency, 1);
    assert!(matches!(
        &s.store,
        Some(shoal_store::StoreConfig::Mysql(m)) if m.session_table == "tomcat_sessions"
    ));
    assert!(c.validate().is_ok());

    let bad = parse(&SEED000.replace("max_idle_backup = 0", "max_idle_backup = 900"))
        .unwrap_or_else(|e| panic!("{e}"));
    let e = bad
        .validate()
        .expect_err("write-behind above a quarter interval")
        .to_string();
    assert!(e.contains("/app") && e.contains("max_idle_backup"), "{e}");

    let typo = SEED000.replace("max_idle_backup", "maxIdleBackup");
    let e = parse(&typo).expect_err("Tomcat's camel case is not a key");
    assert!(e.contains("maxIdleBackup"), "{e}");
    let typo = SEED000.replace("session_table", "session_tabel");
    let e = parse(&typo).expect_err("unknown store key");
    assert!(e.contains("session_tabel"), "{e}");
}

#[test]
fn persistent_context_without_a_store_defaults_to_sqlite() {
    let c = parse("[http]\n[[http.contexts]]\npath = \"/app\"\n[http.contexts.session]\nmanager = \"persistent\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let store = c.contexts[0].session.store_config();
    let shoal_store::StoreConfig::Sqlite(sql) = store else {
        panic!("default store: {store:?}")
    };
    assert_eq!(
        sql.path.as_deref(),
        Some(std::path::Path::new(shoal_session::DEFAULT_STORE_PATH))
    );
}
