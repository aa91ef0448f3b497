//! `shoal ctl` against a served fake cluster: commands parse, run, and change the cluster.

mod common;

use clap::Parser;
use common::*;
use shoal_admin::AdminBackend;

#[derive(Parser)]
struct Top {
    #[command(flatten)]
    ctl: shoal_ctl::Ctl,
}

async fn ctl(url: &str, token: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["ctl", "--url", url, "--token", token];
    argv.extend_from_slice(args);
    shoal_ctl::run(Top::try_parse_from(argv)?.ctl).await
}

#[tokio::test]
async fn reads_and_changes_through_the_api() {
    let (url, backend, _stop) = served().await;
    for args in [
        &["status"][..],
        &["members"],
        &["--json", "members"],
        &["sessions", "list", "app", "--limit", "5"],
        &["plugins", "list"],
        &["deployments"],
        &["contexts"],
        &["stats", "cart"],
        &["--json", "stats", "cart"],
    ] {
        ctl(&url, READ, args)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    let page = backend
        .sessions("app", Default::default())
        .await
        .expect("sessions");
    let id = page.items[0].id.clone();
    ctl(&url, READ, &["sessions", "show", "app", &id])
        .await
        .expect("show");
    ctl(&url, ADMIN, &["sessions", "expire", "app", &id])
        .await
        .expect("expire");
    assert!(backend.session("app", &id).await.is_err(), "session gone");
    ctl(&url, ADMIN, &["sessions", "expire", "shop", "--all"])
        .await
        .expect("expire all");
    assert_eq!(
        backend
            .sessions("shop", Default::default())
            .await
            .expect("shop")
            .total,
        0
    );

    ctl(&url, ADMIN, &["plugins", "disable", "url-filter"])
        .await
        .expect("disable");
    assert_eq!(
        backend.plugin("url-filter").await.expect("p").state,
        shoal_admin::dto::PluginState::Disabled
    );

    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("big.bin");
    // A plugin artifact: the twin, as a node, refuses bytes without a Wasm header.
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.resize(300_000, 5);
    std::fs::write(&file, bytes).expect("write");
    ctl(&url, ADMIN, &["deploy", file.to_str().expect("utf8")])
        .await
        .expect("deploy");
    assert_eq!(
        backend
            .deployment("big.bin")
            .await
            .expect("deployed")
            .size_bytes,
        300_000
    );
    ctl(&url, ADMIN, &["undeploy", "big.bin"])
        .await
        .expect("undeploy");

    let comp = dir.path().join("c.wasm");
    std::fs::write(&comp, component()).expect("write");
    ctl(
        &url,
        ADMIN,
        &[
            "plugins",
            "load",
            comp.to_str().expect("utf8"),
            "--name",
            "audit",
            "--world",
            "channel-interceptor",
        ],
    )
    .await
    .expect("load");
    assert!(backend.plugin("audit").await.is_ok());
}

/// `plugins load` sends policy, limits, label and position; `--replace` changes what it
/// is given; `contexts pipeline` shows and changes a context's order.
#[tokio::test]
async fn plugin_flags_and_the_pipeline_command() {
    let (url, backend, _stop) = served().await;
    let dir = tempfile::tempdir().expect("tmp");
    let comp = dir.path().join("c.wasm");
    std::fs::write(&comp, component()).expect("write");
    let file = comp.to_str().expect("utf8");
    let base = [
        "plugins", "load", file, "--name", "hello", "--world", "valve",
    ];
    let mut load = base.to_vec();
    load.extend(["--attach", "app", "--after", "ReplicationValve"]);
    ctl(&url, ADMIN, &load).await.expect("load");
    let p = backend.plugin("hello").await.expect("loaded");
    assert_eq!(
        p.policy,
        shoal_admin::dto::FailurePolicy::FailClosed,
        "the documented default"
    );
    let mut replace = base.to_vec();
    replace.extend([
        "--replace",
        "--policy",
        "reload",
        "--memory-mib",
        "32",
        "--call-timeout-ms",
        "250",
        "--max-instances",
        "2",
        "--label",
        "build-7",
    ]);
    ctl(&url, ADMIN, &replace).await.expect("replace");
    let p = backend.plugin("hello").await.expect("replaced");
    assert_eq!(
        (
            p.policy,
            p.limits.memory_bytes,
            p.limits.call_timeout_ms,
            p.limits.max_instances
        ),
        (shoal_admin::dto::FailurePolicy::Reload, 32 << 20, 250, 2)
    );
    assert_eq!((p.label.as_deref(), p.generation), (Some("build-7"), 2));
    let e = ctl(
        &url,
        ADMIN,
        &[&base[..], &["--before", "a", "--after", "b"]].concat(),
    )
    .await
    .expect_err("both positions");
    assert!(e.to_string().contains("cannot be used with"), "{e}");

    ctl(&url, READ, &["contexts", "pipeline", "app"])
        .await
        .expect("show the pipeline");
    let ctx = backend.context("app").await.expect("app");
    let mut order: Vec<String> = ctx.pipeline.iter().map(|s| s.name.clone()).collect();
    order.reverse();
    let set = order.join(",");
    ctl(&url, ADMIN, &["contexts", "pipeline", "app", "--set", &set])
        .await
        .expect("reorder");
    let now: Vec<String> = backend
        .context("app")
        .await
        .expect("app")
        .pipeline
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(now, order);
    let e = ctl(
        &url,
        ADMIN,
        &["contexts", "pipeline", "app", "--set", "nope"],
    )
    .await
    .expect_err("not a permutation");
    assert!(e.to_string().contains("409"), "{e}");
}

#[tokio::test]
async fn events_follows_the_stream() {
    let (url, backend, _stop) = served().await;
    let follower = tokio::spawn(async move { ctl(&url, READ, &["events", "--count", "2"]).await });
    // The follower subscribes asynchronously: emit until it has seen two events.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !follower.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ctl events did not return after 2 events"
        );
        backend
            .set_member_state("node3", shoal_admin::MemberState::Suspect, "test")
            .expect("node3");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    follower.await.expect("join").expect("events ok");
}

#[tokio::test]
async fn errors_say_what_to_do() {
    let (url, _, _stop) = served().await;
    let e = ctl(&url, READ, &["plugins", "disable", "url-filter"])
        .await
        .expect_err("read token cannot disable");
    assert!(
        e.to_string().contains("403") && e.to_string().contains("admin token"),
        "{e}"
    );
    let e = ctl(&url, "wrong-token-0123456789", &["members"])
        .await
        .expect_err("wrong token");
    assert!(e.to_string().contains("401"), "{e}");
    let e = ctl(&url, READ, &["sessions", "show", "nope", "x"])
        .await
        .expect_err("no context");
    assert!(e.to_string().contains("known: app, shop"), "{e}");
    let e = ctl("http://127.0.0.1:9", READ, &["members"])
        .await
        .expect_err("nobody there");
    assert!(e.to_string().contains("--url"), "{e}");
}
