//! `shoal ctl` with an error the user caused (no node at the address) prints one line and
//! exits non-zero, even with `RUST_BACKTRACE=1` set.
use shoal_tests::shoal_bin;
use std::process::Command;

#[test]
fn ctl_error_is_one_line_without_a_backtrace() {
    // A port nothing listens on: bound, then released.
    let port = shoal_tests::free_port();
    let out = Command::new(shoal_bin())
        .args([
            "ctl",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "members",
        ])
        .args(["--token", "ctl-errors-token-0123456789"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run shoal ctl");
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, no backtrace:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        lines[0].contains(&port.to_string()),
        "names the address: {err}"
    );
}
