//! `shoal config import` on Tomcat's default `<Cluster/>`, the cluster-howto's full example,
//! seed 000's static membership and seed 001's Tomcat 5 `<Cluster>`: the file it writes
//! starts a real node. (Seed 000's JDBCStore needs its MySQL server; its conversion is
//! checked in the binary's unit tests.)
use shoal_tests::{free_port, shoal_bin, temp_file, NodeProc, NodeSpec};
use std::path::PathBuf;
use std::process::Command;

fn tomcat_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../server/bin/testdata/tomcat")
        .join(name)
}

#[test]
fn imported_tomcat_configs_start_a_node() {
    for (i, file) in [
        "seed002-default.xml",
        "seed003-howto.xml",
        "seed000-static-membership.xml",
        "seed001-tomcat5.xml",
    ]
    .iter()
    .enumerate()
    {
        let out = temp_file("imported.toml", "");
        let run = Command::new(shoal_bin())
            .args(["config", "import"])
            .arg(tomcat_file(file))
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run shoal config import");
        assert!(
            run.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let text = std::fs::read_to_string(&out).expect("imported file");
        assert!(text.contains("[[http.contexts]]"), "{file}:\n{text}");
        let mut spec = NodeSpec::new(
            &format!("imported{i}"),
            free_port(),
            &[],
            "import-secret-0123456789",
        );
        spec.config = Some(out);
        // The imported file's own HTTP port (8080) may be taken on a test machine.
        let node = NodeProc::spawn_with(spec, &["--http-port", "0"]);
        let ready = node.history.iter().find(|e| e.json["event"] == "ready");
        assert!(
            ready.is_some_and(|e| e.json["http"].is_string()),
            "{file}: a full node (HTTP contexts) is ready"
        );
        node.quit();
    }
}
