//! Interceptor plugins joining and leaving the live channel stacks of running `shoal node`
//! processes through the admin API, while a client keeps a session busy across both nodes.
//!
//! The checksum interceptor (`shoal:plugin@0.2.0`) is rolled in and out the documented way
//! (load lenient → configure sealing → configure lenient → unload), the 0.1.0
//! legacy-interceptor rides beside it, and the test checks that both act on the messages
//! between the nodes (their counters), that the stacks list and then drop them, and that no
//! request of the client ever saw a lost or repeated replication (strict counter sequence).
use shoal_testkit::eventually_blocking;
use shoal_tests::free_ports;
use shoal_tests::sessions::{http_cluster, Http, HttpNode};
use shoal_tests::temp_file;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "live-interceptor-admin-token-0123456789";

fn config() -> PathBuf {
    let toml = "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
                [http.contexts.session]\nmanager = \"delta\"\nreplication = \"sync\"\n\
                max_inactive_secs = 1800\n\n[admin]\nbind = \"127.0.0.1:0\"\n"
        .to_string()
        + &format!("admin_token = \"{TOKEN}\"\n");
    temp_file("shoal.toml", &toml)
}

/// The node's token: `SHOAL_ADMIN_TOKEN` wins over the file when the test runs with it set.
fn token() -> String {
    std::env::var("SHOAL_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| TOKEN.to_string())
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

/// A blocking admin API client of one node.
struct Admin {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Admin {
    fn of(node: &mut HttpNode) -> Admin {
        let ready = node
            .proc
            .wait_event("ready", |_| true, Duration::from_secs(10));
        let addr = ready.json["admin"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: ready without admin: {}", node.name(), ready.json))
            .to_string();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = shoal_testkit::http_client_builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Admin {
            rt,
            client,
            base: format!("http://{addr}"),
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method, &url).bearer_auth(token());
        if let Some(b) = body {
            // Components are uploaded as bytes; configurations are JSON objects.
            let json = b.first() == Some(&b'{');
            let kind = if json {
                "application/json"
            } else {
                "application/octet-stream"
            };
            req = req.header("content-type", kind).body(b);
        }
        self.rt.block_on(async {
            let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        })
    }

    fn ok(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> String {
        let (status, text) = self.call(method.clone(), path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        text
    }

    /// Layer names of the live interceptor stack, top first.
    fn layers(&self) -> Vec<String> {
        let text = self.ok(reqwest::Method::GET, "/api/v1/channel", None);
        let v: serde_json::Value = serde_json::from_str(&text).expect("channel JSON");
        v["interceptors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `shoal_plugin_counter_total{plugin="P",name="N"}` from `/metrics` (0 when absent).
    fn counter(&self, plugin: &str, name: &str) -> i64 {
        let text = self.ok(reqwest::Method::GET, "/metrics", None);
        let key = format!("shoal_plugin_counter_total{{plugin=\"{plugin}\",name=\"{name}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn query_config(json: &str) -> String {
    json.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One session, incremented on node1 and node2 in turn until `stop`; every answer must be
/// exactly one more than the last. Counts answers in `done`; returns what went wrong.
fn client(
    addrs: [String; 2],
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let http = Http::new();
        let (mut cookie, mut expected, mut errors) = (None::<String>, 1i64, Vec::new());
        while !stop.load(Ordering::Relaxed) && errors.len() < 5 {
            let addr = &addrs[(expected % 2) as usize];
            match http.try_get(addr, "/app/counter", cookie.as_deref()) {
                Ok(r) if r.status == 200 => {
                    if let Some(c) = r.cookie.clone() {
                        cookie = Some(c);
                    }
                    let got = r.field("counter").and_then(|v| v.parse::<i64>().ok());
                    if got != Some(expected) {
                        errors.push(format!("request {expected} on {addr}: {}", r.body.trim()));
                    }
                    expected = got.unwrap_or(expected) + 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => errors.push(format!(
                    "request {expected} on {addr}: {} {}",
                    r.status,
                    r.body.trim()
                )),
                Err(e) => errors.push(format!("request {expected} on {addr}: {e}")),
            }
        }
        errors
    })
}

#[test]
fn checksum_interceptor_rolls_in_and_out_of_running_nodes() {
    let cfg = config();
    let ports = free_ports(2);
    let mut nodes = http_cluster(&["node1", "node2"], &ports, &cfg);
    let admins: Vec<Admin> = nodes.iter_mut().map(Admin::of).collect();
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let addrs = [nodes[0].http.clone(), nodes[1].http.clone()];
    let load = client(addrs, stop.clone(), done.clone());
    let answered = || done.load(Ordering::Relaxed);
    eventually_blocking("the client to start", Duration::from_secs(10), || {
        answered() >= 5
    });
    let (post, put, delete) = (
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    );
    let lenient = r#"{"seal":"false","accept-unsealed":"true"}"#;

    // Roll in: lenient everywhere (node2 gets it from node1), then sealing.
    let path = format!(
        "/api/v1/plugins?name=crc&world=channel-interceptor&attach=channel&config={}",
        query_config(lenient)
    );
    admins[0].ok(post.clone(), &path, Some(component("checksum-interceptor")));
    for a in &admins {
        eventually_blocking("wasm:crc in the stack", Duration::from_secs(10), || {
            a.layers().contains(&"wasm:crc".to_string())
        });
    }
    // A 0.1.0 plugin joins beside it (loaded through node2 this time).
    let path = "/api/v1/plugins?name=legacy&world=channel-interceptor&attach=channel";
    admins[1].ok(post, path, Some(component("legacy-interceptor")));
    for a in &admins {
        eventually_blocking("wasm:legacy in the stack", Duration::from_secs(10), || {
            a.layers()
                .ends_with(&["wasm:crc".to_string(), "wasm:legacy".to_string()])
        });
    }
    admins[0].ok(
        put.clone(),
        "/api/v1/plugins/crc/config",
        Some(br#"{"accept-unsealed":"true"}"#.to_vec()),
    );
    // Both nodes seal what they send and verify what they receive.
    for a in &admins {
        eventually_blocking(
            "sealed and verified replication",
            Duration::from_secs(20),
            || a.counter("crc", "sent") >= 5 && a.counter("crc", "verified") >= 5,
        );
        eventually_blocking("the 0.1.0 layer counting", Duration::from_secs(10), || {
            a.counter("legacy", "sent") >= 5 && a.counter("legacy", "received") >= 5
        });
        assert_eq!(a.counter("crc", "dropped"), 0);
    }

    // Swap the two plugin layers through the admin API: every node's live stack follows;
    // an order naming other layers is refused (409).
    let mut order = admins[0].layers();
    let n = order.len();
    order.swap(n - 2, n - 1);
    let body = serde_json::json!({ "order": order })
        .to_string()
        .into_bytes();
    admins[0].ok(put.clone(), "/api/v1/channel/interceptors", Some(body));
    for a in &admins {
        eventually_blocking(
            "wasm:legacy above wasm:crc",
            Duration::from_secs(10),
            || {
                a.layers()
                    .ends_with(&["wasm:legacy".to_string(), "wasm:crc".to_string()])
            },
        );
    }
    let mut bad = admins[0].layers();
    bad.push("NoSuchLayer".into());
    let body = serde_json::json!({ "order": bad }).to_string().into_bytes();
    let (status, text) = admins[0].call(put.clone(), "/api/v1/channel/interceptors", Some(body));
    assert_eq!(
        status, 409,
        "an order that is not the current stack is refused: {text}"
    );
    assert!(text.contains("exactly once"), "{text}");

    // Roll out: lenient again, then unload both.
    admins[0].ok(
        put,
        "/api/v1/plugins/crc/config",
        Some(lenient.as_bytes().to_vec()),
    );
    let passed: Vec<i64> = admins.iter().map(|a| a.counter("crc", "passed")).collect();
    for (a, before) in admins.iter().zip(passed) {
        eventually_blocking("unsealed sends", Duration::from_secs(20), || {
            a.counter("crc", "passed") > before + 3
        });
    }
    admins[1].ok(delete.clone(), "/api/v1/plugins/crc", None);
    admins[0].ok(delete, "/api/v1/plugins/legacy", None);
    for a in &admins {
        eventually_blocking(
            "the stack without plugin layers",
            Duration::from_secs(10),
            || !a.layers().iter().any(|l| l.starts_with("wasm:")),
        );
    }
    // The session keeps replicating with the plain stack.
    let after = answered();
    eventually_blocking("requests after the unload", Duration::from_secs(10), || {
        answered() >= after + 10
    });
    stop.store(true, Ordering::Relaxed);
    let errors = load.join().expect("client thread");
    assert!(errors.is_empty(), "the client saw {errors:#?}");
    assert_eq!(
        admins[0].counter("crc", "sent"),
        0,
        "the unloaded plugin's metrics went with it"
    );
}
