//! The example applications built by the project, detected, installed as contexts of two
//! in-process nodes (MemoryCluster), served over real sockets: sessions persist across
//! requests and replicate; misbehaving requests get a clear error and the app keeps
//! serving; components that are not applications are refused with the reason.
use super::*;
use shoal_http::{ContextConfig, ContextParts, HttpConfig, HttpNode, Installed};
use shoal_plugin_host::{EngineOptions, MemberFact, SharedFacts};
use shoal_session::MemoryCluster;
use shoal_testkit::Reply;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn hosts() -> AppHosts {
    let plugins = PluginRegistry::new(
        EngineOptions {
            pooling: false,
            ..EngineOptions::default()
        },
        SharedFacts::new(MemberFact::default()),
    )
    .unwrap_or_else(|e| panic!("plugin engine: {e}"));
    AppHosts {
        plugins: Arc::new(plugins),
        http: HttpAppHost::new().unwrap_or_else(|e| panic!("wasi:http engine: {e}")),
    }
}

fn example(name: &str) -> Vec<u8> {
    shoal_plugin_host::examples::component(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Two nodes serving only `/app` (the bench app), each on its own listener.
async fn two_nodes() -> (MemoryCluster, Vec<(Arc<HttpNode>, SocketAddr)>) {
    let mem = MemoryCluster::new();
    let mut nodes = Vec::new();
    for i in 1..=2 {
        let node = HttpNode::builder(HttpConfig::default(), mem.join(&format!("node{i}")))
            .start()
            .unwrap_or_else(|e| panic!("start node{i}: {e}"));
        assert!(node.registry().wait_ready(Duration::from_secs(10)).await);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(shoal_http::serve(
            listener,
            node.clone(),
            std::future::pending(),
        ));
        nodes.push((node, addr));
    }
    (mem, nodes)
}

/// A GET that fails the test rather than hang it.
async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    let addr = addr.to_string();
    let get = shoal_testkit::get(&addr, path, cookie, &[]);
    tokio::time::timeout(Duration::from_secs(20), get)
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no answer within 20 s"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn context(path: &str) -> ContextConfig {
    ContextConfig {
        path: path.into(),
        app: "deployed".into(),
        ..ContextConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_http_app_counts_in_a_replicated_session_and_survives_misbehaviour() {
    let hosts = hosts();
    let mut config = AppConfig::new("hello-http@1");
    config.limits.call_timeout = Duration::from_millis(500);
    let (app, kind) = app_from_component(&hosts, &example("hello-http"), config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kind, AppKind::WasiHttp);
    let (_mem, nodes) = two_nodes().await;
    for (node, _) in &nodes {
        let parts = ContextParts {
            app: Some(app.clone()),
            ..ContextParts::default()
        };
        let done = node.install_context(context("/hello"), parts);
        assert_eq!(done.ok(), Some(Installed::Created));
    }
    let (a, b) = (nodes[0].1, nodes[1].1);

    let r = get(a, "/hello/hello", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello from wasi:http\n"),
        "{r:?}"
    );
    assert!(r.cookie.is_none(), "no session without asking: {r:?}");

    let r = get(a, "/hello/counter", None).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("1")), "{r:?}");
    let cookie = r
        .cookie
        .clone()
        .unwrap_or_else(|| panic!("no session cookie: {r:?}"));
    let r = get(a, "/hello/counter", Some(&cookie)).await;
    assert_eq!(r.field("counter"), Some("2"), "{r:?}");
    // The session replicated: the other node goes on counting.
    let r = get(b, "/hello/counter", Some(&cookie)).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("3")), "{r:?}");

    // An endless loop is interrupted at the time limit: a clear 504, not a hung node.
    let started = Instant::now();
    let r = get(a, "/hello/loop", None).await;
    assert_eq!(r.status, 504, "{r:?}");
    assert!(r.body.contains("hello-http@1"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A panic is a trap: 500 naming the application.
    let r = get(a, "/hello/trap", None).await;
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r.body.contains("hello-http@1"), "{r:?}");
    // And it still serves, session intact.
    let r = get(a, "/hello/counter", Some(&cookie)).await;
    assert_eq!(r.field("counter"), Some("4"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valve_world_app_serves_a_context_and_its_session_replicates() {
    let hosts = hosts();
    let mut config = AppConfig::new("bench-app@1");
    config.config = vec![("context".into(), "/wasm".into())];
    let (app, kind) = app_from_component(&hosts, &example("bench-app"), config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kind, AppKind::Valve);
    assert!(
        hosts.plugins.list().is_empty(),
        "an application is not one of the registry's plugins (no other context runs it)"
    );
    let (_mem, nodes) = two_nodes().await;
    for (node, _) in &nodes {
        let parts = ContextParts {
            app: Some(app.clone()),
            ..ContextParts::default()
        };
        let done = node.install_context(context("/wasm"), parts);
        assert_eq!(done.ok(), Some(Installed::Created));
    }
    let (a, b) = (nodes[0].1, nodes[1].1);
    let r = get(a, "/wasm/counter", None).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("1")), "{r:?}");
    let cookie = r
        .cookie
        .clone()
        .unwrap_or_else(|| panic!("no session cookie: {r:?}"));
    let r = get(b, "/wasm/counter", Some(&cookie)).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("2")), "{r:?}");
    // The native app of /app is untouched.
    let r = get(a, "/app/counter", None).await;
    assert_eq!((r.status, r.field("counter")), (200, Some("1")), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_that_are_not_applications_are_refused_with_the_reason() {
    let hosts = hosts();
    let refused = |r: Result<(Arc<dyn App>, AppKind), AppError>| match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    let e = refused(app_from_component(&hosts, b"not wasm at all", AppConfig::new("junk@1")).await);
    assert!(e.contains("junk@1"), "{e}");
    let core = wat::parse_str("(module)").unwrap_or_else(|e| panic!("{e}"));
    let e = refused(app_from_component(&hosts, &core, AppConfig::new("core@1")).await);
    assert!(e.contains("core@1"), "{e}");
    // A URL filter is a component, but neither a wasi:http handler nor a valve.
    let e = refused(
        app_from_component(&hosts, &example("url-filter"), AppConfig::new("filter@1")).await,
    );
    assert!(e.contains("filter@1") && e.contains("valve"), "{e}");
}
