//! Static-file bundles of `application` artifacts across three real `shoal node` processes:
//! `shoal ctl deploy --static DIR` packs `hello-http` and a directory into one bundle;
//! every node serves the files under the context (same bytes and ETag everywhere, 304 on
//! `If-None-Match`, content type by extension, a path not in the bundle falls through to the
//! application); a redeploy with a changed file serves the new bytes and ETag after
//! activation; a rollback restores the old file; a bundle with a `../` entry is refused by
//! every node naming the entry, and nothing changes; undeploy removes files and application.
use shoal_tests::farm::FarmNode;
use shoal_tests::{shoal_bin, temp_file};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const TOKEN: &str = "farm-static-test-admin-token-0123456789abcdef";

fn config(farm_dir: &Path) -> PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n\
         [farm]\ndir = \"{}\"\nstage_deadline_secs = 30\n",
        farm_dir.display()
    );
    temp_file("shoal.toml", &toml)
}

fn component_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/components")
        .join(format!("{name}.component.wasm"));
    assert!(
        path.exists(),
        "{}: missing; the example plugins are built by shoal-plugin-host's build (cargo build -p shoal)",
        path.display()
    );
    path
}

/// One HTTP/1.1 exchange: status, headers (lower-case names) and body bytes.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn exchange(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(90)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(body).unwrap_or_else(|e| panic!("{e}"));
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let len = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if len == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + len]);
        b = &b[eol + 2 + len + 2..];
    }
    out
}

fn ctl(admin: &str, args: &[&str]) -> Output {
    Command::new(shoal_bin())
        .args(["ctl", "--url", &format!("http://{admin}"), "--token", TOKEN])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run shoal ctl: {e}"))
}

fn deploy_site(admin: &str, site: &Path, version: &str) -> Output {
    let wasm = component_path("hello-http");
    ctl(
        admin,
        &[
            "deploy",
            wasm.to_str().unwrap_or_default(),
            "--name",
            "site",
            "--kind",
            "application",
            "--version",
            version,
            "--meta",
            "path=/site",
            "--static",
            site.to_str().unwrap_or_default(),
        ],
    )
}

/// A bundle whose second entry climbs out of its directory (written with a raw name: tar
/// writers refuse such paths).
fn evil_bundle() -> Vec<u8> {
    let wasm = std::fs::read(component_path("hello-http")).unwrap_or_else(|e| panic!("{e}"));
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("component.wasm", wasm.as_slice()),
        ("static/../../../escaped.txt", b"owned".as_slice()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, data).unwrap_or_else(|e| panic!("{e}"));
    }
    b.into_inner().unwrap_or_else(|e| panic!("{e}"))
}

/// GETs `path` on every node; asserts each answers 200 with `want` and one ETag; returns it.
fn same_everywhere(nodes: &[FarmNode], path: &str, want: &[u8]) -> String {
    let mut etags = Vec::new();
    for n in nodes {
        let a = exchange(&n.http.http, "GET", path, &[], b"");
        assert_eq!(
            (a.status, a.text()),
            (200, String::from_utf8_lossy(want).into_owned()),
            "{}: GET {path}",
            n.http.name()
        );
        let etag = a
            .header("etag")
            .unwrap_or_else(|| panic!("{}: GET {path}: no ETag", n.http.name()))
            .to_string();
        etags.push(etag);
    }
    assert!(
        etags.windows(2).all(|w| w[0] == w[1]),
        "ETags differ: {etags:?}"
    );
    etags.remove(0)
}

#[test]
fn an_application_bundle_serves_its_files_on_every_node_and_changes_with_it() {
    let names = ["sa", "sb", "sc"];
    let (nodes, _, base) = shoal_tests::farm::start("farm-static", &names, |_, farm| config(farm));

    let site = base.join("site");
    std::fs::create_dir_all(site.join("css")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(site.join("index.html"), "<h1>v1</h1>").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(site.join("css/site.css"), "body{color:red}").unwrap_or_else(|e| panic!("{e}"));

    // v1 through node sa: packed by the ctl, active everywhere.
    let out = deploy_site(&nodes[0].admin, &site, "1");
    assert!(
        out.status.success(),
        "deploy v1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let css1 = same_everywhere(&nodes, "/site/css/site.css", b"body{color:red}");
    let index1 = same_everywhere(&nodes, "/site/", b"<h1>v1</h1>");
    for n in &nodes {
        let addr = &n.http.http;
        let a = exchange(addr, "GET", "/site/css/site.css", &[], b"");
        assert_eq!(
            a.header("content-type"),
            Some("text/css"),
            "{}",
            n.http.name()
        );
        // Revalidation: 304, no body, same ETag.
        let a = exchange(
            addr,
            "GET",
            "/site/css/site.css",
            &[("if-none-match", &css1)],
            b"",
        );
        assert_eq!(
            (a.status, a.body.len()),
            (304, 0),
            "{}: revalidation",
            n.http.name()
        );
        assert_eq!(a.header("etag"), Some(css1.as_str()));
        let a = exchange(addr, "HEAD", "/site/index.html", &[], b"");
        assert_eq!(a.status, 200, "{}: HEAD", n.http.name());
        // Not in the bundle: the application answers.
        let a = exchange(addr, "GET", "/site/hello", &[], b"");
        assert_eq!(
            (a.status, a.text()),
            (200, "hello from wasi:http\n".to_string()),
            "{}",
            n.http.name()
        );
    }

    // v2 through node sb with a changed stylesheet: after activation every node serves it.
    std::fs::write(site.join("css/site.css"), "body{color:blue}").unwrap_or_else(|e| panic!("{e}"));
    let out = deploy_site(&nodes[1].admin, &site, "2");
    assert!(
        out.status.success(),
        "deploy v2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let css2 = same_everywhere(&nodes, "/site/css/site.css", b"body{color:blue}");
    assert_ne!(css1, css2, "a changed file has a new ETag");
    let index2 = same_everywhere(&nodes, "/site/", b"<h1>v1</h1>");
    assert_eq!(
        index1, index2,
        "an unchanged file keeps its ETag across redeploys"
    );
    for n in &nodes {
        let a = exchange(
            &n.http.http,
            "GET",
            "/site/css/site.css",
            &[("if-none-match", &css1)],
            b"",
        );
        assert_eq!(a.status, 200, "{}: the old ETag is stale", n.http.name());
    }

    // A bundle with a `../` entry: refused by every node naming the entry; v2 stays.
    let evil = evil_bundle();
    let a = exchange(
        &nodes[2].admin,
        "PUT",
        "/api/v1/deployments/site?kind=application&version=3&meta.path=/site",
        &[("content-type", "application/octet-stream")],
        &evil,
    );
    let text = a.text();
    assert_eq!(a.status, 422, "{text}");
    assert!(
        text.contains("entry `static/../../../escaped.txt`") && text.contains(".."),
        "the error names the entry: {text}"
    );
    // The coordinating node checks its own copy before it sends it anywhere: it refuses,
    // the others never stage it.
    assert!(
        text.contains(&format!("node {}", names[2])),
        "the coordinating node refused: {text}"
    );
    for n in &nodes {
        let a = exchange(&n.admin, "GET", "/api/v1/deployments/site", &[], b"");
        let d: serde_json::Value =
            serde_json::from_slice(&a.body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d["version"], "2", "{}: nothing changed: {d}", n.http.name());
    }
    same_everywhere(&nodes, "/site/css/site.css", b"body{color:blue}");
    for dir in [
        base.clone(),
        base.parent().map(Path::to_path_buf).unwrap_or_default(),
    ] {
        assert!(
            !dir.join("escaped.txt").exists(),
            "nothing escaped to {}",
            dir.display()
        );
    }

    // Rollback: v1's files and ETags come back together with v1's component.
    let a = exchange(
        &nodes[0].admin,
        "POST",
        "/api/v1/deployments/site/rollback",
        &[],
        b"",
    );
    assert_eq!(a.status, 200, "rollback: {}", a.text());
    let back = same_everywhere(&nodes, "/site/css/site.css", b"body{color:red}");
    assert_eq!(back, css1, "the rolled-back file has its old ETag");

    // Undeploy: files and application are gone everywhere.
    let a = exchange(
        &nodes[1].admin,
        "DELETE",
        "/api/v1/deployments/site",
        &[],
        b"",
    );
    assert_eq!(a.status, 204, "undeploy: {}", a.text());
    for n in &nodes {
        for path in ["/site/css/site.css", "/site/hello"] {
            let a = exchange(&n.http.http, "GET", path, &[], b"");
            assert_eq!(a.status, 404, "{}: {path} after undeploy", n.http.name());
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}
