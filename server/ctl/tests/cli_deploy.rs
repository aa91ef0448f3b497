//! `shoal ctl deploy / rollback / undeploy / keygen` against a served fake cluster: the query
//! the node gets (kind, version, metadata, signature), the rollout's end, and failures.

mod common;

use clap::Parser;
use common::*;
use shoal_admin::dto::ArtifactKind;
use shoal_admin::AdminBackend;

#[derive(Parser)]
struct Top {
    #[command(flatten)]
    ctl: shoal_ctl::Ctl,
}

async fn ctl(url: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["ctl", "--url", url, "--token", ADMIN];
    argv.extend_from_slice(args);
    shoal_ctl::run(Top::try_parse_from(argv)?.ctl).await
}

#[tokio::test]
async fn deploy_signs_streams_rolls_back_and_undeploys() {
    let (url, backend, _stop) = served().await;
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    ctl(&url, &["keygen", keys.to_str().expect("utf8")])
        .await
        .expect("keygen");
    let public = std::fs::read_to_string(keys.join("farm-signing.pub")).expect("pub");
    assert_eq!(public.trim().len(), 64, "64 hex digits: {public}");
    assert!(public.trim().chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        ctl(&url, &["keygen", keys.to_str().expect("utf8")])
            .await
            .is_err(),
        "an existing key is never overwritten"
    );

    // 300 000 bytes: several 64 KiB pieces of the streamed body.
    let file = dir.path().join("data.bin");
    std::fs::write(&file, vec![9u8; 300_000]).expect("write");
    let key = keys.join("farm-signing.key");
    let f = file.to_str().expect("utf8");
    ctl(
        &url,
        &[
            "deploy",
            f,
            "--kind",
            "file",
            "--version",
            "1",
            "--meta",
            "owner=ops",
            "--sign-key",
            key.to_str().expect("utf8"),
        ],
    )
    .await
    .expect("deploy v1");
    let d = backend.deployment("data.bin").await.expect("deployed");
    assert_eq!(
        (d.kind, d.version.as_str(), d.size_bytes, d.signed),
        (ArtifactKind::File, "1", 300_000, true)
    );
    assert_eq!(d.metadata.get("owner").map(String::as_str), Some("ops"));

    std::fs::write(&file, vec![8u8; 1000]).expect("write");
    ctl(&url, &["deploy", f, "--kind", "file", "--version", "2"])
        .await
        .expect("deploy v2");
    let d = backend.deployment("data.bin").await.expect("deployed");
    assert_eq!((d.version.as_str(), d.signed), ("2", false));

    ctl(&url, &["rollback", "data.bin"])
        .await
        .expect("rollback");
    assert_eq!(
        backend.deployment("data.bin").await.expect("d").version,
        "1"
    );
    ctl(&url, &["deployments"]).await.expect("list");

    ctl(&url, &["undeploy", "data.bin"])
        .await
        .expect("undeploy");
    assert!(backend.deployment("data.bin").await.is_err());
}

#[tokio::test]
async fn a_refused_deploy_fails_with_the_reason() {
    let (url, backend, _stop) = served().await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("app.wasm");
    std::fs::write(&file, component()).expect("write");
    let f = file.to_str().expect("utf8");
    // An application without the context path it creates: nothing activated, and the
    // error says what to add.
    let e = ctl(&url, &["deploy", f, "--kind", "application"])
        .await
        .expect_err("refused");
    let text = format!("{e:#}");
    assert!(text.contains("nothing was activated"), "{text}");
    assert!(text.contains("meta.path"), "{text}");
    assert!(backend.deployment("app.wasm").await.is_err());
    ctl(
        &url,
        &[
            "deploy",
            f,
            "--kind",
            "application",
            "--meta",
            "path=/hello",
        ],
    )
    .await
    .expect("an application with its path deploys");
    assert!(backend.deployment("app.wasm").await.is_ok());
    ctl(&url, &["undeploy", "app.wasm"])
        .await
        .expect("undeploy");

    let e = ctl(&url, &["deploy", f, "--meta", "novalue"])
        .await
        .expect_err("bad meta");
    assert!(format!("{e:#}").contains("key=value"), "{e:#}");
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "xyz").expect("write");
    let e = ctl(
        &url,
        &["deploy", f, "--sign-key", bad_key.to_str().expect("utf8")],
    )
    .await
    .expect_err("bad key");
    assert!(format!("{e:#}").contains("bad.key"), "{e:#}");
    let e = ctl(&url, &["rollback", "nothing"]).await.expect_err("404");
    assert!(format!("{e:#}").contains("404"), "{e:#}");
}
