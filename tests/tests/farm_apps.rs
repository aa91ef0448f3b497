//! `application` artifacts across three real `shoal node` processes: the example
//! `wasi:http` component `hello-http` deployed through one node's admin API creates context
//! `/hello` on every node; its session counter replicates (delta manager, sync); a redeploy
//! under a bounded load fails no request and loses no increment; a restarted node serves
//! the context as soon as it is ready; an invalid component is refused everywhere; undeploy
//! removes the context everywhere (404). The valve-world `bench-app` runs as an application
//! too; moved to another path by a redeploy and back by a rollback; bad metadata is refused.
use shoal_testkit::eventually_blocking;
use shoal_tests::farm::FarmNode;
use shoal_tests::sessions::Http;
use shoal_tests::temp_file;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "farm-apps-test-admin-token-0123456789abcdef";
/// The context settings of the deployed applications (metadata `context`).
const CONTEXT: &str = "session = { manager = \"delta\", replication = \"sync\" }";
/// Requests of the load that runs during a redeploy (bounded).
const LOAD_MAX: usize = 3000;

fn config(farm_dir: &Path) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n\
         [farm]\ndir = \"{}\"\nstage_deadline_secs = 30\n",
        farm_dir.display()
    );
    temp_file("shoal.toml", &toml)
}

fn component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/components")
        .join(format!("{name}.component.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; the example plugins are built by shoal-plugin-host's build (cargo build -p shoal)",
            path.display()
        )
    })
}

/// Restarts `name` with its farm dir under `base` (as [`start`] made it).
fn spawn(name: &str, port: u16, ports: &[u16], base: &Path) -> FarmNode {
    let farm = base.join(name);
    let cfg = config(&farm);
    FarmNode::spawn(name, port, ports, farm, &cfg)
}

fn start(names: &[&str]) -> (Vec<FarmNode>, Vec<u16>, PathBuf) {
    shoal_tests::farm::start("farm-apps", names, |_, farm| config(farm))
}

/// A blocking HTTP/1.1 exchange with the admin API: status and body.
fn call(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(90)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Deploys `bytes` as application `name` at context `path`.
fn deploy(node: &FarmNode, name: &str, version: &str, path: &str, bytes: &[u8]) -> (u16, String) {
    call(
        &node.admin,
        "PUT",
        &format!(
            "/api/v1/deployments/{name}?kind=application&version={version}&meta.path={}&meta.context={}",
            encode(path),
            encode(CONTEXT)
        ),
        bytes,
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The admin API lists the context (installed contexts count, not only the config file's).
fn lists_context(node: &FarmNode, path: &str) -> bool {
    let (status, text) = call(&node.admin, "GET", "/api/v1/contexts", b"");
    status == 200 && text.contains(&format!("\"{path}\""))
}

/// One increment of the session counter on `addr`; keeps the cookie up to date (the route
/// binder rewrites it when another node answers).
fn bump(client: &Http, addr: &str, path: &str, cookie: &mut Option<String>) -> Result<u64, String> {
    let r = client.try_get(addr, path, cookie.as_deref())?;
    if r.status != 200 {
        return Err(format!("{addr}{path}: {} {}", r.status, r.body));
    }
    if let Some(c) = r.cookie.clone() {
        *cookie = Some(c);
    }
    r.field("counter")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr}{path}: no counter in {:?}", r.body))
}

#[test]
fn a_wasi_http_application_creates_a_replicated_context_everywhere_and_leaves_everywhere() {
    let names = ["pa", "pb", "pc"];
    let (mut nodes, ports, base) = start(&names);
    let client = Http::new();
    let hello = component("hello-http");
    for n in &nodes {
        let r = client.get(&n.http.http, "/hello/hello", None);
        assert_eq!(
            r.status,
            404,
            "{}: no /hello before the deploy",
            n.http.name()
        );
    }

    let (status, text) = deploy(&nodes[0], "hello", "1", "/hello", &hello);
    assert_eq!(status, 201, "deploy: {text}");
    let d = json(&text);
    assert_eq!(
        (d["kind"].as_str(), d["version"].as_str()),
        (Some("application"), Some("1"))
    );
    for n in &nodes {
        let r = client.get(&n.http.http, "/hello/hello", None);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "hello from wasi:http\n"),
            "{}: the application answers on every node",
            n.http.name()
        );
        assert!(
            lists_context(n, "hello"),
            "{}: /hello listed",
            n.http.name()
        );
    }

    // A session counter started on pa continues on pb and pc (delta manager, sync).
    let mut cookie = None;
    let mut expected = 0;
    for n in [&nodes[0], &nodes[1], &nodes[2], &nodes[0]] {
        expected += 1;
        let got = bump(&client, &n.http.http, "/hello/counter", &mut cookie)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, expected, "{}: the counter continues", n.http.name());
    }

    // Redeploy (version 2) while a bounded load increments the counter round-robin over
    // the nodes: no request fails and no increment is lost.
    let addrs: Vec<String> = nodes.iter().map(|n| n.http.http.clone()).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let mut cookie = cookie.clone();
        std::thread::spawn(move || {
            let client = Http::new();
            let mut n = expected;
            // Requests answered before the redeploy returned; then 10 more on the new version.
            let mut during = None;
            for i in 0..LOAD_MAX {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let d = *during.get_or_insert(i);
                    if i >= d + 10 {
                        break;
                    }
                }
                let addr = &addrs[i % addrs.len()];
                n += 1;
                match bump(&client, addr, "/hello/counter", &mut cookie) {
                    Ok(got) if got == n => {}
                    Ok(got) => {
                        return Err(format!(
                            "request {i} on {addr}: counter {got}, expected {n}"
                        ))
                    }
                    Err(e) => return Err(format!("request {i}: {e}")),
                }
            }
            Ok((n, cookie, during.unwrap_or(LOAD_MAX)))
        })
    };
    let (status, text) = deploy(&nodes[1], "hello", "2", "/hello", &hello);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(status, 201, "redeploy: {text}");
    assert_eq!(json(&text)["version"], "2", "{text}");
    let (after, mut cookie, during) = load
        .join()
        .unwrap_or_else(|_| panic!("the load thread panicked"))
        .unwrap_or_else(|e| panic!("under a redeploy: {e}"));
    assert!(
        during > 0,
        "the load ran while the redeploy was rolling out ({during} requests)"
    );
    eprintln!("{during} requests answered during the redeploy, none failed");
    let got = bump(&client, &nodes[2].http.http, "/hello/counter", &mut cookie)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, after + 1, "the session survived the redeploy");

    // An invalid component: refused before staging by every node, the running version stays.
    let (status, text) = deploy(
        &nodes[2],
        "hello",
        "3",
        "/hello",
        b"\0asm\x0d\x00\x01\x00junk",
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("nothing was activated"), "{text}");
    let (_, text) = call(&nodes[0].admin, "GET", "/api/v1/deployments/hello", b"");
    assert_eq!(json(&text)["version"], "2", "{text}");

    // A restarted node re-applies the persisted catalog before it reports ready.
    let pc = nodes.remove(2);
    drop(pc);
    let mut pc = spawn("pc", ports[2], &ports, &base);
    pc.http.wait_members(&names);
    let got = bump(&client, &pc.http.http, "/hello/counter", &mut cookie)
        .unwrap_or_else(|e| panic!("pc after its restart: {e}"));
    assert_eq!(
        got,
        after + 2,
        "pc serves /hello with the session after its restart"
    );
    nodes.push(pc);

    let (status, text) = call(&nodes[1].admin, "DELETE", "/api/v1/deployments/hello", b"");
    assert_eq!(status, 204, "undeploy: {text}");
    for n in &nodes {
        let r = client.get(&n.http.http, "/hello/hello", None);
        assert_eq!(r.status, 404, "{}: /hello removed", n.http.name());
        assert!(
            !lists_context(n, "hello"),
            "{}: /hello not listed",
            n.http.name()
        );
        let r = client.get(&n.http.http, "/app/counter", None);
        assert_eq!(r.status, 200, "{}: /app untouched", n.http.name());
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn a_valve_world_application_and_bad_context_settings() {
    let names = ["va", "vb", "vc"];
    let (nodes, _, base) = start(&names);
    let client = Http::new();
    let bench = component("bench-app");

    // No path, a path of the config file, unknown settings: refused with the reason.
    let (status, text) = call(
        &nodes[0].admin,
        "PUT",
        "/api/v1/deployments/nopath?kind=application",
        &bench,
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("metadata `path` is required"), "{text}");
    let (status, text) = deploy(&nodes[0], "clash", "1", "/app", &bench);
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("defined in this node's config file"),
        "{text}"
    );
    let (status, text) = call(
        &nodes[0].admin,
        "PUT",
        &format!(
            "/api/v1/deployments/odd?kind=application&meta.path=/odd&meta.context={}",
            encode("sesion = 1")
        ),
        &bench,
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("metadata `context`"), "{text}");

    // The valve answers under the context its `context` config names (metadata
    // `config.context`, given to the application as `context`).
    let (status, text) = call(
        &nodes[1].admin,
        "PUT",
        &format!(
            "/api/v1/deployments/bench?kind=application&version=1&meta.path=/wasm&meta.config.context=/wasm&meta.context={}",
            encode(CONTEXT)
        ),
        &bench,
    );
    assert_eq!(status, 201, "deploy: {text}");
    let mut cookie = None;
    for (i, n) in nodes.iter().enumerate() {
        let got = bump(&client, &n.http.http, "/wasm/counter", &mut cookie)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got,
            i as u64 + 1,
            "{}: the counter continues",
            n.http.name()
        );
    }
    // Version 2 moves the application to /wasm2: /wasm goes everywhere; a rollback brings
    // /wasm back and removes /wasm2.
    let (status, text) = call(
        &nodes[0].admin,
        "PUT",
        &format!(
            "/api/v1/deployments/bench?kind=application&version=2&meta.path=/wasm2&meta.config.context=/wasm2&meta.context={}",
            encode(CONTEXT)
        ),
        &bench,
    );
    assert_eq!(status, 201, "redeploy at another path: {text}");
    for n in &nodes {
        assert_eq!(client.get(&n.http.http, "/wasm/counter", None).status, 404);
        assert_eq!(client.get(&n.http.http, "/wasm2/counter", None).status, 200);
    }
    let (status, text) = call(
        &nodes[1].admin,
        "POST",
        "/api/v1/deployments/bench/rollback",
        b"",
    );
    assert_eq!(status, 200, "rollback: {text}");
    assert_eq!(json(&text)["version"], "1", "{text}");
    for n in &nodes {
        assert_eq!(client.get(&n.http.http, "/wasm2/counter", None).status, 404);
        assert_eq!(client.get(&n.http.http, "/wasm/counter", None).status, 200);
    }

    let (status, text) = call(&nodes[2].admin, "DELETE", "/api/v1/deployments/bench", b"");
    assert_eq!(status, 204, "undeploy: {text}");
    eventually_blocking("/wasm gone everywhere", Duration::from_secs(5), || {
        nodes
            .iter()
            .all(|n| client.get(&n.http.http, "/wasm/counter", None).status == 404)
    });
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

/// A node down while an application is deployed and another undeployed: when it comes back,
/// its first answer (it serves HTTP only once ready) already has the new context and no
/// longer the removed one.
#[test]
fn a_node_down_during_a_deploy_and_an_undeploy_serves_the_new_set_from_its_first_request() {
    let names = ["da", "db", "dc"];
    let (mut nodes, ports, base) = start(&names);
    let client = Http::new();
    let hello = component("hello-http");
    let (status, text) = deploy(&nodes[0], "old", "1", "/old", &hello);
    assert_eq!(status, 201, "deploy /old: {text}");
    let r = client.get(&nodes[2].http.http, "/old/hello", None);
    assert_eq!(r.status, 200, "dc serves /old before it goes down");

    drop(nodes.remove(2));
    let (status, text) = deploy(&nodes[1], "hello", "1", "/hello", &hello);
    assert_eq!(status, 201, "deploy /hello while dc is down: {text}");
    let (status, text) = call(&nodes[0].admin, "DELETE", "/api/v1/deployments/old", b"");
    assert_eq!(status, 204, "undeploy /old while dc is down: {text}");

    let dc = spawn("dc", ports[2], &ports, &base);
    let r = client.get(&dc.http.http, "/hello/hello", None);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello from wasi:http\n"),
        "dc's first answer has /hello, deployed while it was down"
    );
    let r = client.get(&dc.http.http, "/old/hello", None);
    assert_eq!(
        r.status, 404,
        "dc no longer serves /old, undeployed while it was down"
    );
    assert!(lists_context(&dc, "hello") && !lists_context(&dc, "old"));
    nodes.push(dc);
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}
