//! The farm deployer across three real `shoal node` processes: a plugin deployed through
//! one node's admin API acts on every node, is undeployed everywhere; `file` artifacts of
//! edge sizes (0, k chunks, k ± 1 byte) reach every node byte for byte, and a rollback brings
//! the previous version back everywhere; an invalid component, a bad signature, an oversized
//! and a truncated upload are each refused with a clear error and nothing active.
//!
//! Each node has its own `[farm] dir` (checked on disk: `files/<name>` and `staging/`).
use shoal_farm::{Digest, Kind, Manifest, SignedManifest};
use shoal_testkit::eventually_blocking;
use shoal_tests::farm::{call, read_response};
use shoal_tests::free_ports;
use shoal_tests::sessions::HttpNode;
use shoal_tests::temp_file;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "farm-test-admin-token-0123456789abcdef";
/// Small chunks so that "k chunks" stays small.
const CHUNK: usize = 1024;
const LIMIT: usize = 4 << 20;

fn signer() -> ed25519_compact::KeyPair {
    ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]))
}

fn config(farm_dir: &Path) -> PathBuf {
    let key = hex(signer().pk.as_ref());
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [http.contexts.session]\nmanager = \"delta\"\nreplication = \"sync\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n\
         [farm]\ndir = \"{}\"\nchunk_bytes = {CHUNK}\nmax_upload_bytes = {LIMIT}\n\
         trusted_keys = [\"{key}\"]\nstage_deadline_secs = 20\n",
        farm_dir.display()
    );
    temp_file("shoal.toml", &toml)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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

struct Node {
    http: HttpNode,
    admin: String,
    farm: PathBuf,
}

fn start(names: &[&str]) -> (Vec<Node>, Vec<u16>, PathBuf) {
    let ports = free_ports(names.len());
    let base = std::env::temp_dir().join(format!(
        "shoal-farm-test-{}-{}",
        std::process::id(),
        ports[0]
    ));
    let mut nodes: Vec<Node> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| spawn(n, *p, &ports, &base))
        .collect();
    for n in nodes.iter_mut() {
        n.http.wait_members(names);
    }
    (nodes, ports, base)
}

fn spawn(name: &str, port: u16, ports: &[u16], base: &Path) -> Node {
    let farm = base.join(name);
    let mut http = HttpNode::spawn(name, port, ports, &config(&farm));
    let ready = http
        .proc
        .wait_event("ready", |_| true, Duration::from_secs(10));
    let admin = ready.json["admin"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: ready without admin: {}", ready.json))
        .to_string();
    Node { http, admin, farm }
}

fn put(node: &Node, name: &str, query: &str, body: &[u8]) -> (u16, String) {
    let (status, _, text) = call(
        &node.admin,
        "PUT",
        &format!("/api/v1/deployments/{name}?{query}"),
        body,
    );
    (status, text)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// States of every node of deployment `name` as `node` reports them.
fn states(node: &Node, name: &str) -> Vec<(String, String)> {
    let (status, _, text) = call(
        &node.admin,
        "GET",
        &format!("/api/v1/deployments/{name}"),
        b"",
    );
    if status != 200 {
        return Vec::new();
    }
    let v = json(&text);
    let mut out: Vec<(String, String)> = v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    (
                        n["node"].as_str().unwrap_or_default().to_string(),
                        n["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn all_active(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (n.to_string(), "active".to_string()))
        .collect()
}

fn legacy_header(node: &Node) -> bool {
    let (status, head, _) = call(&node.http.http, "GET", "/app/counter", b"");
    assert_eq!(
        status,
        200,
        "{}: /app/counter answered {status}",
        node.http.name()
    );
    head.contains("x-legacy: 0.1.0")
}

fn file_on(node: &Node, name: &str) -> Option<Vec<u8>> {
    std::fs::read(node.farm.join("files").join(name)).ok()
}

fn staging_is_empty(node: &Node) -> bool {
    std::fs::read_dir(node.farm.join("staging")).is_ok_and(|d| d.count() == 0)
}

#[test]
fn a_plugin_goes_live_on_every_node_and_leaves_everywhere() {
    let names = ["fa", "fb", "fc"];
    let (nodes, _, base) = start(&names);
    for n in &nodes {
        assert!(!legacy_header(n), "{}: no plugin yet", n.http.name());
    }
    let (status, text) = put(
        &nodes[0],
        "greeter",
        "version=1&meta.contexts=/app",
        &component("legacy-valve"),
    );
    assert_eq!(status, 201, "deploy: {text}");
    let d = json(&text);
    assert_eq!(d["version"], "1");
    assert_eq!(d["kind"], "plugin");
    for n in &nodes {
        assert!(
            legacy_header(n),
            "{}: the deployed valve acts on every node",
            n.http.name()
        );
    }
    eventually_blocking(
        "every node active, seen from fb",
        Duration::from_secs(10),
        || states(&nodes[1], "greeter") == all_active(&names),
    );

    // A second deploy of the same name while none runs is fine; a conflicting one is 409
    // (checked in the farm core's tests); here: nothing to roll back to for a first version.
    let (status, _, text) = call(
        &nodes[2].admin,
        "POST",
        "/api/v1/deployments/greeter/rollback",
        b"",
    );
    assert_eq!(status, 409, "rollback without a previous version: {text}");
    assert!(text.contains("no previous version"), "{text}");

    let (status, _, text) = call(
        &nodes[1].admin,
        "DELETE",
        "/api/v1/deployments/greeter",
        b"",
    );
    assert_eq!(status, 204, "undeploy: {text}");
    for n in &nodes {
        assert!(
            !legacy_header(n),
            "{}: undeployed everywhere",
            n.http.name()
        );
    }
    let (status, _, _) = call(&nodes[0].admin, "GET", "/api/v1/deployments/greeter", b"");
    assert_eq!(status, 404, "an undeployed name is not listed");

    // The deploy was coordinated by fa, the undeploy by fb: one activated rollout each.
    for n in &nodes[..2] {
        let (_, _, metrics) = call(&n.admin, "GET", "/metrics", b"");
        assert!(
            metrics.contains("shoal_farm_deploys_total{outcome=\"activated\"} 1"),
            "{}: one rollout counted:\n{}",
            n.http.name(),
            metrics
                .lines()
                .filter(|l| l.contains("shoal_farm"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn files_of_edge_sizes_reach_every_node_and_refusals_leave_nothing_active() {
    let names = ["ea", "eb", "ec"];
    let (nodes, _, base) = start(&names);
    let k = 3;
    for (i, size) in [0, k * CHUNK, k * CHUNK - 1, k * CHUNK + 1]
        .into_iter()
        .enumerate()
    {
        let content: Vec<u8> = (0..size).map(|b| (b % 251) as u8).collect();
        let name = format!("edge-{i}.bin");
        let (status, text) = put(&nodes[i % 3], &name, "kind=file", &content);
        assert_eq!(status, 201, "{size} bytes: {text}");
        for n in &nodes {
            assert_eq!(
                file_on(n, &name).map(|c| c.len()),
                Some(size),
                "{}: {name} ({size} bytes)",
                n.http.name()
            );
            assert!(
                file_on(n, &name) == Some(content.clone()),
                "{}: {name} byte for byte",
                n.http.name()
            );
        }
    }

    // Two versions, then a rollback: the first comes back on every node.
    let (s1, t1) = put(&nodes[0], "conf.txt", "kind=file&version=1", b"one");
    let (s2, t2) = put(&nodes[1], "conf.txt", "kind=file&version=2", b"two");
    assert_eq!((s1, s2), (201, 201), "{t1} {t2}");
    for n in &nodes {
        assert_eq!(file_on(n, "conf.txt").as_deref(), Some(&b"two"[..]));
    }
    let (status, _, text) = call(
        &nodes[2].admin,
        "POST",
        "/api/v1/deployments/conf.txt/rollback",
        b"",
    );
    assert_eq!(status, 200, "rollback: {text}");
    let d = json(&text);
    assert_eq!(d["version"], "1", "{text}");
    assert_eq!(d["previous_version"], "2", "{text}");
    for n in &nodes {
        assert_eq!(
            file_on(n, "conf.txt").as_deref(),
            Some(&b"one"[..]),
            "{}",
            n.http.name()
        );
    }

    // An invalid component: refused by every node's test instantiation, nothing active.
    let (status, text) = put(
        &nodes[0],
        "broken",
        "kind=plugin",
        b"\0asm\x0d\x00\x01\x00garbage",
    );
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("nothing was activated") && text.contains("not a loadable plugin component"),
        "{text}"
    );
    for n in &nodes {
        let (status, _, _) = call(&n.admin, "GET", "/api/v1/deployments/broken", b"");
        assert_eq!(
            status,
            404,
            "{}: a refused artifact is not deployed",
            n.http.name()
        );
    }

    // A signature by an untrusted key: refused with the reason; a trusted one is accepted.
    let body = b"signed content".to_vec();
    let manifest = Manifest {
        name: "signed.txt".into(),
        version: "1".into(),
        kind: Kind::File,
        sha256: Digest::of(&body),
        size: body.len() as u64,
        metadata: BTreeMap::new(),
    };
    let rogue = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9; 32]));
    let bad = SignedManifest::signed(manifest.clone(), &rogue.sk);
    let sig = hex(bad.signature.as_deref().unwrap_or_default());
    let (status, text) = put(
        &nodes[1],
        "signed.txt",
        &format!("kind=file&version=1&signature={sig}"),
        &body,
    );
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("does not verify against any of the 1 trusted keys"),
        "{text}"
    );
    assert!(
        nodes.iter().all(|n| file_on(n, "signed.txt").is_none()),
        "nothing active after a bad signature"
    );
    let good = SignedManifest::signed(manifest, &signer().sk);
    let sig = hex(good.signature.as_deref().unwrap_or_default());
    let (status, text) = put(
        &nodes[1],
        "signed.txt",
        &format!("kind=file&version=1&signature={sig}"),
        &body,
    );
    assert_eq!(status, 201, "{text}");
    assert_eq!(json(&text)["signed"], true);

    // Over the upload limit: 413 naming the limit; nothing staged.
    let big = vec![1u8; LIMIT + 1];
    let (status, text) = put(&nodes[2], "big.bin", "kind=file", &big);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("max_upload_bytes"), "{text}");

    // A truncated upload (the client announces more than it sends and goes away): refused,
    // its staging file removed, nothing deployed.
    let mut s = std::net::TcpStream::connect(&nodes[0].admin).expect("connect");
    let head = format!(
        "PUT /api/v1/deployments/cut.bin?kind=file HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&[5u8; 5000]).expect("part of the body");
    let _ = s.shutdown(std::net::Shutdown::Write);
    let (status, _, text) = read_response(s);
    assert!(
        status == 0 || status == 422 || status == 400,
        "truncated upload answered {status} {text}"
    );
    if status != 0 {
        assert!(text.contains("cut short"), "{text}");
    }
    eventually_blocking(
        "no staging file left behind",
        Duration::from_secs(5),
        || nodes.iter().all(staging_is_empty),
    );
    let (status, _, _) = call(&nodes[0].admin, "GET", "/api/v1/deployments/cut.bin", b"");
    assert_eq!(status, 404, "a truncated upload is not deployed");
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

/// The upload limit's worth of `file` (4 MiB, 4096 chunks of 1 KiB) staged and active on
/// three nodes; the time is printed, not asserted (timings are measured, not tested).
#[test]
fn a_large_file_in_small_chunks_reaches_three_nodes() {
    let names = ["ta", "tb", "tc"];
    let (nodes, _, base) = start(&names);
    let content: Vec<u8> = (0..LIMIT).map(|b| (b % 249) as u8).collect();
    let t = std::time::Instant::now();
    let (status, text) = put(&nodes[0], "ten.bin", "kind=file", &content[..LIMIT]);
    let took = t.elapsed();
    assert_eq!(status, 201, "{text}");
    println!(
        "farm: {} bytes active on 3 nodes in {took:?} (chunk {CHUNK} bytes)",
        LIMIT
    );
    for n in &nodes {
        assert_eq!(file_on(n, "ten.bin").map(|c| c.len()), Some(LIMIT));
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}
