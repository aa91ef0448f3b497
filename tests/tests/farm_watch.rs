//! The farm watch directory on a real `shoal node` process: a file written slowly (chunks with
//! pauses shorter than the settle time) is not deployed while it is being written, is deployed
//! once complete with the full content's digest, exactly once; a temporary name is never
//! deployed; removing the file undeploys it.
use shoal_farm::Digest;
use shoal_testkit::eventually_blocking;
use shoal_tests::free_ports;
use shoal_tests::sessions::HttpNode;
use shoal_tests::temp_file;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "farm-watch-admin-token-0123456789abcdef";

fn config(farm_dir: &Path, watch_dir: &Path) -> std::path::PathBuf {
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n\
         [farm]\ndir = \"{}\"\nwatch_dir = \"{}\"\nmin_members = 1\n",
        farm_dir.display(),
        watch_dir.display()
    );
    temp_file("shoal.toml", &toml)
}

/// GET on the admin API: status and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write head");
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

/// The deployment as JSON if it exists.
fn deployment(admin: &str, name: &str) -> Option<serde_json::Value> {
    let (status, body) = get(admin, &format!("/api/v1/deployments/{name}"));
    if status != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

fn active(d: &serde_json::Value) -> bool {
    d["nodes"]
        .as_array()
        .is_some_and(|n| !n.is_empty() && n.iter().all(|n| n["state"] == "active"))
}

#[test]
fn a_slowly_written_file_is_deployed_once_complete_and_undeployed_when_removed() {
    let ports = free_ports(1);
    let base = std::env::temp_dir().join(format!(
        "shoal-farm-watch-{}-{}",
        std::process::id(),
        ports[0]
    ));
    let (farm_dir, watch_dir) = (base.join("farm"), base.join("drop"));
    std::fs::create_dir_all(&watch_dir).expect("watch dir");
    let mut node = HttpNode::spawn("w1", ports[0], &ports, &config(&farm_dir, &watch_dir));
    let ready = node
        .proc
        .wait_event("ready", |_| true, Duration::from_secs(20));
    let admin = ready.json["admin"]
        .as_str()
        .unwrap_or_else(|| panic!("ready without admin: {}", ready.json))
        .to_string();

    // A temporary name, complete at once: must never be deployed.
    std::fs::write(watch_dir.join("data.bin.part"), b"partial").expect("write part");

    // 5 chunks of 100 KiB, 300 ms apart (the settle time is 1 s); after each chunk the
    // artifact must not exist yet.
    let content: Vec<u8> = (0..5 * 100 * 1024).map(|i| (i % 251) as u8).collect();
    let path = watch_dir.join("data.bin");
    {
        let mut f = std::fs::File::create(&path).expect("create");
        for (i, chunk) in content.chunks(100 * 1024).enumerate() {
            f.write_all(chunk).expect("write chunk");
            f.flush().expect("flush");
            assert!(
                deployment(&admin, "data.bin").is_none(),
                "deployed half-way, after chunk {i}"
            );
            // The writer pauses between chunks, as a slow copy does.
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let digest = Digest::of(&content).to_string();
    eventually_blocking(
        "data.bin active with the full content's digest",
        Duration::from_secs(20),
        || deployment(&admin, "data.bin").is_some_and(|d| active(&d) && d["digest"] == digest),
    );
    let d = deployment(&admin, "data.bin").expect("deployed");
    assert_eq!(d["kind"], "file", "{d}");
    assert_eq!(d["size_bytes"], content.len() as u64, "{d}");
    assert_eq!(d["metadata"]["source"], "watch-dir", "{d}");
    let on_disk = std::fs::read(farm_dir.join("files").join("data.bin")).expect("files/data.bin");
    assert!(
        on_disk == content,
        "files/data.bin differs from the written file"
    );

    // A later file is deployed after data.bin was looked at again: data.bin must still be at
    // its first generation (deployed exactly once).
    std::fs::write(watch_dir.join("marker.txt"), b"marker").expect("write marker");
    eventually_blocking("marker.txt active", Duration::from_secs(20), || {
        deployment(&admin, "marker.txt").is_some_and(|d| active(&d))
    });
    let d = deployment(&admin, "data.bin").expect("still deployed");
    assert_eq!(d["generation"], 1, "data.bin deployed more than once: {d}");
    assert!(deployment(&admin, "data.bin.part").is_none());

    std::fs::remove_file(&path).expect("remove");
    eventually_blocking("data.bin undeployed", Duration::from_secs(20), || {
        deployment(&admin, "data.bin").is_none()
    });
    assert!(
        deployment(&admin, "marker.txt").is_some(),
        "only the removed file is undeployed"
    );
    let _ = std::fs::remove_dir_all(&base);
}
