//! `shoal ctl drain` against a served fake cluster: it starts the drain, follows it, and
//! returns once the node's admin API stops answering; it gives up with a clear message at
//! its deadline.

mod common;

use std::time::Duration;

use clap::Parser;
use common::*;

#[derive(Parser)]
struct Top {
    #[command(flatten)]
    ctl: shoal_ctl::Ctl,
}

async fn ctl(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["ctl"];
    argv.extend_from_slice(args);
    shoal_ctl::run(Top::try_parse_from(argv)?.ctl).await
}

#[tokio::test]
async fn drain_follows_the_node_until_its_api_is_gone() {
    let (url, backend, stop) = served().await;
    // Plays the node: once drained, its admin listener closes.
    let watcher = {
        let backend = backend.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !backend.is_draining() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = stop.send(());
        })
    };
    // --node names the node to drain; --url (unreachable here) is not used.
    let r = ctl(&[
        "--url",
        "http://127.0.0.1:9",
        "--token",
        ADMIN,
        "drain",
        "--node",
        &url,
        "--timeout-secs",
        "10",
    ])
    .await;
    r.expect("drain returns once the node is gone");
    assert!(backend.is_draining(), "the drain was requested");
    watcher.await.expect("watcher");
}

#[tokio::test]
async fn drain_needs_the_admin_token_and_gives_up_at_its_deadline() {
    let (url, backend, _stop) = served().await;
    let e = ctl(&["--url", &url, "--token", READ, "drain"])
        .await
        .expect_err("read token refused");
    assert!(e.to_string().contains("403"), "{e}");
    assert!(!backend.is_draining());

    // The in-memory node never goes away: the CLI stops following with a clear message.
    let e = ctl(&[
        "--url",
        &url,
        "--token",
        ADMIN,
        "drain",
        "--timeout-secs",
        "1",
    ])
    .await
    .expect_err("deadline");
    let msg = e.to_string();
    assert!(msg.contains("still draining after 1 s"), "{msg}");
    assert!(backend.is_draining());
    // A second drain follows the one under way instead of failing on 409.
    let e = ctl(&[
        "--url",
        &url,
        "--token",
        ADMIN,
        "drain",
        "--timeout-secs",
        "1",
    ])
    .await
    .expect_err("deadline again");
    assert!(e.to_string().contains("still draining"), "{e}");
}
