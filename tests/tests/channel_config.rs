//! `shoal node --config FILE`: bad files are refused with the file and key named; a stack of
//! native interceptors from the file carries messages end to end.
use shoal_tests::{free_port, shoal_bin, temp_file, NodeProc, NodeSpec};
use std::process::Command;
use std::time::Duration;

fn refused(contents: &str, needles: &[&str]) {
    let path = temp_file("bad.toml", contents);
    let out = Command::new(shoal_bin())
        .args(["node", "--port", "0", "--config"])
        .arg(&path)
        .env("SHOAL_CLUSTER_SECRET", "x")
        .output()
        .expect("run shoal node");
    assert!(!out.status.success(), "{contents:?} was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&path.display().to_string()),
        "error does not name the file: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "error does not mention {n:?}: {err}");
    }
}

#[test]
fn bad_config_files_are_refused_naming_file_and_key() {
    refused("[cluster]\nnmae = \"x\"\n", &["nmae"]);
    refused(
        "[cluster.receiver]\naddress = \"0.0.0.0\"\n",
        &["cluster.receiver.address"],
    );
    refused(
        "[cluster.failure_detector]\nping_interval_ms = 0\n",
        &["cluster.failure_detector.ping_interval_ms"],
    );
    refused(
        "[[cluster.interceptor]]\nname = \"Telepathy\"\n",
        &["cluster.interceptor[0]", "Telepathy"],
    );
    refused(
        "[[cluster.interceptor]]\nname = \"Order\"\nbogus = 1\n",
        &["cluster.interceptor[0]", "bogus"],
    );
}

#[test]
fn interceptor_stack_from_the_file_carries_messages() {
    let cfg = temp_file(
        "stack.toml",
        "[[cluster.interceptor]]\nname = \"Throughput\"\n\
         [[cluster.interceptor]]\nname = \"Order\"\n\
         [[cluster.interceptor]]\nname = \"Compression\"\n",
    );
    let (p1, p2) = (free_port(), free_port());
    let spec = |n: &str, p: u16| NodeSpec {
        config: Some(cfg.clone()),
        ..NodeSpec::new(n, p, &[p1, p2], "stack-secret")
    };
    let mut a = NodeProc::spawn(spec("i1", p1));
    let mut b = NodeProc::spawn(spec("i2", p2));
    a.wait_members(&["i2"], Duration::from_secs(10));
    b.wait_members(&["i1"], Duration::from_secs(10));
    let text = "compressible ".repeat(50);
    a.command(&format!("send sync {text}"));
    let r = a.wait_event("send_report", |_| true, Duration::from_secs(10));
    assert_eq!(r.json["ok"], true, "{}", r.json);
    b.wait_event(
        "received",
        |v| {
            v["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("compressible"))
        },
        Duration::from_secs(10),
    );
}
