//! Every Tomcat snippet of the seeds, Tomcat's default `<Cluster/>` and the cluster-howto's
//! full example convert into a file the node accepts (parsed and validated as at start).
use super::convert;
use shoal_config::{Config, Overrides};
use std::path::Path;

fn data(name: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tomcat")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (name.to_string(), text)
}

/// Converts `files`, checks the result parses and validates as a node file; returns both.
fn import(files: &[&str]) -> (String, Config, Vec<String>) {
    let texts: Vec<_> = files.iter().map(|f| data(f)).collect();
    let imported = convert(&texts).expect("well-formed");
    let text = imported.render();
    let mut cfg = Config::parse(&text, Path::new("imported.toml"))
        .unwrap_or_else(|e| panic!("{e:#}\n{text}"));
    cfg.apply(&Overrides::default(), &None)
        .unwrap_or_else(|e| panic!("{e:#}\n{text}"));
    (text, cfg, imported.warnings)
}

fn session(cfg: &Config) -> &shoal_session::ManagerConfig {
    &cfg.http.as_ref().expect("[http]").contexts[0].session
}

#[test]
fn tomcat_default_cluster_is_async_multicast_delta() {
    let (text, cfg, warnings) = import(&["seed002-default.xml"]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = &cfg.cluster;
    assert_eq!(
        c.membership.provider,
        shoal_net::Provider::Multicast,
        "{text}"
    );
    assert_eq!(c.membership.multicast.address, "228.0.0.4");
    assert_eq!(c.membership.multicast.port, 45564);
    let s = session(&cfg);
    assert_eq!(s.manager, shoal_session::ManagerKind::Delta);
    assert_eq!(
        s.replication,
        shoal_session::ReplicationMode::Async,
        "{text}"
    );
    let ctx = &cfg.http.as_ref().expect("[http]").contexts[0];
    assert!(ctx.jvm_route_binder);
    assert_eq!(
        ctx.url_filter, "",
        "Tomcat's default ReplicationValve has no filter"
    );
    // What changed meaning says so.
    assert!(text.contains("# CHANGED: Tomcat's \"auto\""), "{text}");
    assert!(text.contains("# Not imported"), "{text}");
}

#[test]
fn cluster_howto_example_converts() {
    let (text, cfg, warnings) = import(&["seed003-howto.xml"]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = &cfg.cluster;
    assert_eq!(c.name, "node01");
    assert_eq!(c.receiver.port, 5000);
    assert_eq!(c.membership.multicast.frequency_ms, 500);
    assert_eq!(c.failure_detector.suspect_after_ms, 3000);
    let names: Vec<&str> = c.interceptor.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["Throughput"], "{text}");
    let s = session(&cfg);
    assert_eq!(s.manager, shoal_session::ManagerKind::Backup);
    assert_eq!(
        s.replication,
        shoal_session::ReplicationMode::Sync,
        "mapSendOptions=6"
    );
    let ctx = &cfg.http.as_ref().expect("[http]").contexts[0];
    assert!(ctx.url_filter.starts_with(".*\\.gif"), "{}", ctx.url_filter);
    assert!(
        !ctx.jvm_route_binder,
        "valves listed without JvmRouteBinderValve"
    );
    assert!(cfg.farm.watch_dir.is_none(), "watchEnabled=false");
    for unmapped in [
        "<Receiver maxThreads>",
        "<Deployer tempDir>",
        "notifyListenersOnReplication",
    ] {
        assert!(text.contains(unmapped), "{unmapped} not listed:\n{text}");
    }
}

#[test]
fn seed000_static_membership_fragment_converts() {
    let (text, cfg, warnings) = import(&["seed000-static-membership.xml"]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = &cfg.cluster;
    assert_eq!(c.membership.provider, shoal_net::Provider::Static);
    assert_eq!(c.membership.members, ["172.16.1.100:5000"], "{text}");
    assert_eq!(c.domain, "product-cluster");
    assert!(text.contains("uniqueId"), "{text}");
}

#[test]
fn seed000_persistent_jdbc_store_converts() {
    let (text, cfg, warnings) = import(&["seed000-context.xml"]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let s = session(&cfg);
    assert_eq!(s.manager, shoal_session::ManagerKind::Persistent);
    assert_eq!(s.persistent.max_idle_backup, 0);
    assert_eq!(s.persistent.process_expires_frequency, 1);
    assert!(s.persistent.save_on_restart);
    let Some(shoal_store::StoreConfig::Mysql(sql)) = &s.store else {
        panic!("not a MySQL store:\n{text}");
    };
    assert_eq!(
        sql.connection_url.as_deref(),
        Some("mysql://[IPアドレス]:3306/tomcat_session")
    );
    assert_eq!(sql.connection_name.as_deref(), Some("[ユーザー名]"));
    assert_eq!(sql.session_table, "sessions");
    assert_eq!(sql.session_last_accessed_col, "last_access");
    assert!(text.contains("<Store driverName>"), "{text}");
}

#[test]
fn seed000_raw_ampersand_is_a_clear_error() {
    let (name, text) = data("seed000-context.xml");
    let raw = text.replace("&amp;", "&");
    let e = convert(&[(name, raw)]).err().expect("not well-formed");
    let e = e.to_string();
    assert!(
        e.contains("seed000-context.xml") && e.contains("&amp;"),
        "{e}"
    );
}

#[test]
fn seed001_tomcat5_cluster_with_dirty_flag_converts() {
    let (text, cfg, warnings) = import(&["seed001-tomcat5.xml"]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let s = session(&cfg);
    assert_eq!(s.manager, shoal_session::ManagerKind::Delta);
    assert!(!s.replicate_whole_session, "useDirtyFlag=true:\n{text}");
    assert!(text.contains("expireSessionsOnShutdown"), "{text}");
}

#[test]
fn server_and_context_files_combine() {
    let (_, cfg, _) = import(&["seed000-static-membership.xml", "seed000-context.xml"]);
    assert_eq!(cfg.cluster.membership.members, ["172.16.1.100:5000"]);
    assert_eq!(
        session(&cfg).manager,
        shoal_session::ManagerKind::Persistent
    );
}

#[test]
fn unknown_class_names_are_warnings_naming_them() {
    let xml = r#"<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster">
        <Channel className="org.apache.catalina.tribes.group.GroupChannel">
          <Interceptor className="com.example.MyInterceptor"/>
        </Channel>
        <Valve className="com.example.AuditValve"/>
        <Manager className="com.example.RedisManager"/>
      </Cluster>"#;
    let imported = convert(&[("server.xml".into(), xml.into())]).expect("converts");
    let w = imported.warnings.join("\n");
    for name in [
        "com.example.MyInterceptor",
        "com.example.AuditValve",
        "com.example.RedisManager",
    ] {
        assert!(w.contains(name), "{name} not named:\n{w}");
    }
    let text = imported.render();
    Config::parse(&text, Path::new("imported.toml")).unwrap_or_else(|e| panic!("{e:#}\n{text}"));
}
