//! `--log-format json` and `[log] format = "json"`: every line a real node writes on stderr is
//! one JSON object with the time, level, target and the node's name; an unknown format in
//! the file is refused naming the key.
use serde_json::Value;
use shoal_tests::{free_port, shoal_bin, temp_file, NodeProc, NodeSpec};
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "logs-json-secret-0123456789";

/// Every stderr line of `node` parses and names it; returns the parsed lines.
fn json_lines(node: &NodeProc, name: &str) -> Vec<Value> {
    let text = node.stderr_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    for v in &lines {
        assert_eq!(v["node"], name, "{v}");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
        assert!(v["level"].is_string() && v["target"].is_string(), "{v}");
    }
    lines
}

fn stop(mut node: NodeProc) -> NodeProc {
    node.command("quit");
    node.wait_exit(Duration::from_secs(10));
    node
}

#[test]
fn log_format_flag_writes_json_lines_with_the_node_name() {
    let spec = NodeSpec::new("jsonlog1", free_port(), &[], SECRET);
    let node = NodeProc::spawn_with(spec, &["--log-format", "json"]);
    let listening = node
        .wait_log(&["cluster channel listening"], Duration::from_secs(10))
        .expect("the channel's start is logged");
    let v: Value = serde_json::from_str(&listening).expect("JSON");
    // The event's own fields are fields of the object.
    assert!(
        v["member"].as_str().is_some_and(|m| m.contains("jsonlog1")),
        "{v}"
    );
    assert!(v["message"].as_str().is_some(), "{v}");
    let node = stop(node);
    json_lines(&node, "jsonlog1");
}

#[test]
fn log_format_from_the_config_file() {
    let config = temp_file("node.toml", "[log]\nformat = \"json\"\n");
    let mut spec = NodeSpec::new("jsonlog2", free_port(), &[], SECRET);
    spec.config = Some(config);
    let node = NodeProc::spawn_with(spec, &["--http-port", "0"]);
    node.wait_log(&["cluster channel listening"], Duration::from_secs(10))
        .expect("the channel's start is logged");
    let node = stop(node);
    let lines = json_lines(&node, "jsonlog2");
    assert!(lines.len() >= 2, "{lines:?}");
}

#[test]
fn unknown_log_format_is_refused_naming_the_key() {
    let config = temp_file("node.toml", "[log]\nformat = \"xml\"\n");
    let out = Command::new(shoal_bin())
        .args(["node", "--port", &free_port().to_string(), "--config"])
        .arg(&config)
        .env("SHOAL_CLUSTER_SECRET", SECRET)
        .output()
        .expect("run shoal node");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log.format") && err.contains("xml"), "{err}");
    assert!(err.contains("node.toml"), "names the file: {err}");
}
