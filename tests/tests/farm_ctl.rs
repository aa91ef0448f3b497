//! `shoal ctl` against a real `shoal node` that requires signatures: `keygen` makes the key
//! the node trusts, `deploy --sign-key` is accepted and active, an unsigned deploy or one
//! signed by another key exits non-zero with the node's reason, `rollback` and `undeploy` work.
use shoal_tests::sessions::HttpNode;
use shoal_tests::{free_ports, shoal_bin, temp_file};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const TOKEN: &str = "farm-ctl-admin-token-0123456789abcdef";

fn ctl(admin: &str, args: &[&str]) -> Output {
    let url = format!("http://{admin}");
    Command::new(shoal_bin())
        .args(["ctl", "--url", &url, "--token", TOKEN])
        .args(args)
        .output()
        .expect("run shoal ctl")
}

fn keygen(dir: &Path) -> String {
    let out = Command::new(shoal_bin())
        .args(["ctl", "keygen"])
        .arg(dir)
        .output()
        .expect("run shoal ctl keygen");
    assert!(out.status.success(), "keygen: {out:?}");
    std::fs::read_to_string(dir.join("farm-signing.pub"))
        .expect("public key")
        .trim()
        .to_string()
}

#[test]
fn ctl_deploys_signed_artifacts_and_reports_refusals() {
    let ports = free_ports(1);
    let base = std::env::temp_dir().join(format!(
        "shoal-farm-ctl-{}-{}",
        std::process::id(),
        ports[0]
    ));
    let (good, rogue) = (base.join("good"), base.join("rogue"));
    let trusted = keygen(&good);
    keygen(&rogue);
    let toml = format!(
        "[http]\nbind = \"127.0.0.1\"\nport = 0\n\n[[http.contexts]]\npath = \"/app\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\n\
         [farm]\ndir = \"{}\"\nmin_members = 1\nrequire_signatures = true\n\
         trusted_keys = [\"{trusted}\"]\n",
        base.join("farm").display()
    );
    let mut node = HttpNode::spawn("c1", ports[0], &ports, &temp_file("shoal.toml", &toml));
    let ready = node
        .proc
        .wait_event("ready", |_| true, Duration::from_secs(20));
    let admin = ready.json["admin"]
        .as_str()
        .unwrap_or_else(|| panic!("ready without admin: {}", ready.json))
        .to_string();

    let file = base.join("rates.csv");
    std::fs::write(&file, vec![b'x'; 200_000]).expect("write");
    let f = file.to_str().expect("utf8");
    let key = |d: &Path| {
        d.join("farm-signing.key")
            .to_str()
            .expect("utf8")
            .to_string()
    };

    // Unsigned: refused by the node; exit non-zero with the reason.
    let out = ctl(&admin, &["deploy", f, "--kind", "file"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "unsigned accepted: {err}");
    assert!(err.contains("unsigned"), "{err}");
    // Signed by an untrusted key: refused.
    let out = ctl(
        &admin,
        &["deploy", f, "--kind", "file", "--sign-key", &key(&rogue)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rogue signature accepted: {err}");
    assert!(err.contains("trusted"), "{err}");

    // Signed by the trusted key, with metadata and default version: active.
    let out = ctl(
        &admin,
        &[
            "--json",
            "deploy",
            f,
            "--kind",
            "file",
            "--meta",
            "owner=ops",
            "--sign-key",
            &key(&good),
        ],
    );
    assert!(out.status.success(), "signed deploy: {out:?}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("deployment JSON");
    assert_eq!(d["signed"], true, "{d}");
    assert_eq!(d["metadata"]["owner"], "ops", "{d}");
    assert!(d["nodes"][0]["state"] == "active", "{d}");
    let v1 = d["version"].as_str().expect("version").to_string();

    std::fs::write(&file, b"second").expect("write");
    let out = ctl(
        &admin,
        &[
            "deploy",
            f,
            "--kind",
            "file",
            "--version",
            "2",
            "--sign-key",
            &key(&good),
        ],
    );
    assert!(out.status.success(), "second deploy: {out:?}");
    let out = ctl(&admin, &["--json", "rollback", "rates.csv"]);
    assert!(out.status.success(), "rollback: {out:?}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("deployment JSON");
    assert_eq!(d["version"], v1.as_str(), "{d}");
    let out = ctl(&admin, &["deployments"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rates.csv"),
        "{out:?}"
    );
    let out = ctl(&admin, &["undeploy", "rates.csv"]);
    assert!(out.status.success(), "undeploy: {out:?}");
    let out = ctl(&admin, &["undeploy", "rates.csv"]);
    assert!(!out.status.success(), "second undeploy succeeded");
    let _ = std::fs::remove_dir_all(&base);
}

/// `shoal ctl deploy` on a 3-node cluster, its stderr a pipe (not a terminal): plain
/// progress lines per node from `GET /api/v1/rollouts`, bytes received of the size while
/// the content travels (paced at 1 MiB/s so it takes seconds), then the final state.
#[test]
fn ctl_deploy_prints_a_progress_line_per_node() {
    use shoal_tests::farm::{config, start, TOKEN as FARM_TOKEN};
    let names = ["pa", "pb", "pc"];
    let (nodes, _, base) = start("farm-ctl-progress", &names, |_, dir| {
        config(
            dir,
            "transfer_rate_mib_s = 1\nmax_upload_bytes = 8388608",
            "",
        )
    });
    std::fs::create_dir_all(&base).expect("base dir");
    let file = base.join("big.bin");
    let size = 3 << 20;
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &body).expect("write");
    let out = Command::new(shoal_bin())
        .args(["ctl", "--url", &format!("http://{}", nodes[0].admin)])
        .args(["--token", FARM_TOKEN, "deploy"])
        .arg(&file)
        .args(["--kind", "file", "--version", "1"])
        .output()
        .expect("run shoal ctl deploy");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "deploy: {err}");
    let total = format!("/{size} bytes");
    for n in names {
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("{n} ")) && l.contains(&total))
            .collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("100%") && l.ends_with("active")),
            "{n}: a final progress line, active:\n{err}"
        );
        if n != names[0] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.ends_with("receiving") && !l.contains("100%")),
                "{n}: a line while it was receiving:\n{err}"
            );
        }
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}
