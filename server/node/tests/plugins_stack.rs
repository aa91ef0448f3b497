//! Interceptor plugins and the live channel stack of running nodes: load inserts the
//! `wasm:` layer on every node, reorder moves the `wasm:` layers among themselves, unload
//! removes them (`Plugins::attach_channel`; the net side is tested in shoal-net's
//! `live_stack`, the admin API path in shoal-tests' `plugins_live_interceptor`).
mod common;
mod plugins_support;

use plugins_support::{contexts, nodes, shutdown};
use shoal_node::plugins::ControlOp;
use shoal_node::RunningNode;
use shoal_plugin_host::{FailurePolicy, Limits, PluginWorld};
use std::time::Duration;

fn load(name: &str, example: &str, config: &[(&str, &str)]) -> ControlOp {
    ControlOp::Load {
        name: name.into(),
        bytes: shoal_plugin_host::examples::component(example).unwrap_or_else(|e| panic!("{e}")),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        limits: Limits::default(),
        policy: FailurePolicy::FailOpen,
        world: Some(PluginWorld::ChannelInterceptor),
        contexts: Vec::new(),
    }
}

/// The `wasm:` layers of `node`'s live stack, top first.
async fn wasm_layers(node: &RunningNode) -> Vec<String> {
    node.channel
        .interceptors()
        .await
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.starts_with("wasm:"))
        .collect()
}

async fn wait_layers(nodes: &[RunningNode], want: &[&str]) {
    for n in nodes {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = wasm_layers(n).await;
            if got == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: stack has {got:?}, wanted {want:?}",
                n.channel.local().name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interceptor_plugins_join_move_and_leave_every_live_stack() {
    let n = nodes(contexts(&["/app"], 1800), vec![vec![], vec![]], true).await;
    let lenient = [("seal", "false"), ("accept-unsealed", "true")];
    let apply = |op: ControlOp| {
        let (plugins, channel) = (n[0].plugins.clone(), n[0].channel.clone());
        async move {
            let (_, results) = plugins
                .apply_everywhere(&channel, op)
                .await
                .expect("applied here");
            assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
        }
    };
    apply(load("crc", "checksum-interceptor", &lenient)).await;
    apply(load("legacy", "legacy-interceptor", &[])).await;
    wait_layers(&n, &["wasm:crc", "wasm:legacy"]).await;

    apply(ControlOp::Reorder {
        order: vec!["legacy".into(), "crc".into()],
    })
    .await;
    wait_layers(&n, &["wasm:legacy", "wasm:crc"]).await;

    // The layers act on the control messages between the nodes: the 0.1.0 one counts them.
    let sent = |i: usize| {
        n[i].plugins
            .registry
            .metrics()
            .iter()
            .find(|m| m.name == "plugin.legacy.sent")
            .map_or(0, |m| m.value)
    };
    assert!(sent(0) >= 1, "node1 sent the reorder through wasm:legacy");

    apply(ControlOp::Unload { name: "crc".into() }).await;
    wait_layers(&n, &["wasm:legacy"]).await;
    apply(ControlOp::Unload {
        name: "legacy".into(),
    })
    .await;
    wait_layers(&n, &[]).await;
    shutdown(n).await;
}
