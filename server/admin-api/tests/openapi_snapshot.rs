//! The OpenAPI document is generated from the code; this test pins it so that every change
//! of the API is a visible diff in review. Update with `UPDATE_SNAPSHOTS=1 cargo test -p
//! shoal-admin --test openapi_snapshot`.

use std::path::PathBuf;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json")
}

#[test]
fn openapi_document_matches_snapshot() {
    let actual = shoal_admin::openapi_json() + "\n";
    let path = snapshot_path();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).expect("write snapshot");
        println!("updated {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); create it with UPDATE_SNAPSHOTS=1 cargo test -p shoal-admin --test openapi_snapshot", path.display())
    });
    if expected != actual {
        panic!(
            "the OpenAPI document changed:\n{}\nIf the change is intended, run:\n  UPDATE_SNAPSHOTS=1 cargo test -p shoal-admin --test openapi_snapshot\nand commit {}",
            diff(&expected, &actual),
            path.display()
        );
    }
}

/// A short line diff: every changed region with 2 lines of context, at most 80 lines.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    let prefix = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let suffix = e[prefix..]
        .iter()
        .rev()
        .zip(a[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = String::new();
    let start = prefix.saturating_sub(2);
    for line in &e[start..prefix] {
        out += &format!("  {line}\n");
    }
    for line in &e[prefix..e.len() - suffix] {
        out += &format!("- {line}\n");
    }
    for line in &a[prefix..a.len() - suffix] {
        out += &format!("+ {line}\n");
    }
    let lines: Vec<&str> = out.lines().take(80).collect();
    format!("@@ line {} @@\n{}", prefix + 1, lines.join("\n"))
}

#[test]
fn document_is_openapi_3_1_with_every_operation_secured_or_public_by_design() {
    let doc: serde_json::Value = serde_json::from_str(&shoal_admin::openapi_json()).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 25, "{} paths", paths.len());
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let security = &op["security"];
            let public = path == "/api/v1/health" || path == "/api/v1/ready";
            if public {
                assert_eq!(security, &serde_json::json!([{}]), "{method} {path}");
            } else {
                assert_eq!(
                    security,
                    &serde_json::json!([{"bearer": []}]),
                    "{method} {path}"
                );
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} lacks 401"
                );
            }
            assert!(
                op["summary"].is_string(),
                "{method} {path} has no doc comment"
            );
        }
    }
}
