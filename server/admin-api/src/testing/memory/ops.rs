//! The fake cluster's behaviour: paging, reordering, plugin and deployment bookkeeping,
//! counters that move with time, and the metrics text.

use std::{collections::BTreeMap, fmt::Write as _};

use super::{
    data::{digest, FakeContext, NODES},
    State,
};
use crate::{backend::BackendError, dto::*, rules};

/// Applies `order` to `items` if it names every item exactly once.
pub(super) fn reorder<T>(
    items: &mut [T],
    order: &[String],
    name: impl Fn(&T) -> &String,
    what: &str,
) -> Result<(), BackendError> {
    let current: Vec<&str> = items.iter().map(|i| name(i).as_str()).collect();
    rules::check_same_names(&current, order, what)?;
    items.sort_by_key(|i| order.iter().position(|o| o == name(i)));
    Ok(())
}

pub(super) fn page(c: &FakeContext, q: &SessionQuery, now: u64) -> SessionPage {
    let all = c
        .sessions
        .values()
        .map(|s| rules::with_idle(&s.summary, now))
        .collect();
    rules::page_sessions(all, q)
}

pub(super) fn counts(contexts: &[FakeContext]) -> Vec<NodeSessionCount> {
    let mut out = Vec::new();
    for c in contexts {
        for node in NODES {
            let sessions = c.sessions.values().map(|s| &s.summary);
            let (mut primary, mut backup) = (0, 0);
            for s in sessions {
                primary += u64::from(s.primary == node);
                backup += u64::from(s.backups.iter().any(|b| b == node));
            }
            out.push(NodeSessionCount {
                node: node.into(),
                context: c.context.name.clone(),
                primary,
                backup,
            });
        }
    }
    out
}

pub(super) fn with_counters(i: &Interceptor, secs: u64) -> Interceptor {
    let seed = i.name.len() as u64;
    let counters: BTreeMap<String, u64> = [
        ("tx_messages", secs * 120 + seed),
        ("rx_messages", secs * 118 + seed),
        ("tx_bytes", secs * 140_000),
        ("rx_bytes", secs * 138_000),
        ("errors", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Interceptor {
        counters,
        ..i.clone()
    }
}

/// Cumulative counters whose rate waves around a base, so the traffic chart has a shape.
pub(super) fn traffic(peer: &str, i: usize, secs: f64) -> PeerTraffic {
    let base = 120.0 + 60.0 * i as f64;
    let messages = base * secs + 400.0 * (1.0 - (secs / 10.0 + i as f64).cos());
    let bytes = messages * 1100.0;
    PeerTraffic {
        peer: peer.to_owned(),
        messages_sent: messages as u64,
        messages_received: (messages * 0.97) as u64,
        bytes_sent: bytes as u64,
        bytes_received: (bytes * 0.95) as u64,
        acks: (messages * 0.5) as u64,
        failures: 0,
        queue_depth: (secs as u64 + i as u64) % 7,
        at_ms: now_ms(),
    }
}

/// Checks the component header: `\0asm` + the component-model layer.
fn check_component(bytes: &[u8]) -> Result<(), BackendError> {
    match bytes {
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Ok(()),
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Err(BackendError::Invalid(
            "this is a core Wasm module, not a component: build it with `shoal plugin build` (or wrap it with `wasm-tools component new`)".into(),
        )),
        _ => Err(BackendError::Invalid(format!(
            "not a WebAssembly component ({} bytes, does not start with \\0asm): upload the component `shoal plugin build` wrote (or one built for wasm32-wasip2)",
            bytes.len()
        ))),
    }
}

fn attach_target(
    s: &State,
    world: PluginWorld,
    attach: Option<&str>,
) -> Result<Option<String>, BackendError> {
    match (world, attach) {
        (PluginWorld::ChannelInterceptor, None | Some("channel")) => Ok(Some("channel".into())),
        (PluginWorld::ChannelInterceptor, Some(other)) => Err(BackendError::Invalid(format!(
            "a channel-interceptor attaches to `channel`, not `{other}`"
        ))),
        (PluginWorld::DeployHook, None) => Ok(None),
        (PluginWorld::DeployHook, Some(_)) => Err(BackendError::Invalid(
            "a deploy-hook is not attached: omit `attach`".into(),
        )),
        (_, None) => Ok(None),
        (_, Some(ctx)) if s.contexts.iter().any(|c| c.context.name == ctx) => {
            Ok(Some(ctx.to_owned()))
        }
        (_, Some(ctx)) => Err(BackendError::not_found("context", ctx)),
    }
}

pub(super) fn load_plugin(s: &mut State, r: LoadPlugin) -> Result<Plugin, BackendError> {
    check_component(&r.component)?;
    let target = attach_target(s, r.world, r.attach.as_deref())?;
    let previous = s.plugins.iter().find(|p| p.name == r.name).cloned();
    if previous.is_some() {
        if !r.replace {
            return Err(BackendError::Conflict(format!(
                "a plugin named `{}` is already loaded: pass replace=true to hot-reload a new version, or unload it first",
                r.name
            )));
        }
        unload_plugin(s, &r.name)?;
    }
    // Replace keeps what is not given; a load takes the defaults.
    let base = previous.clone();
    let plugin = Plugin {
        name: r.name.clone(),
        wit_version: "0.2.0".into(),
        generation: base.as_ref().map_or(1, |p| p.generation + 1),
        label: r
            .label
            .or_else(|| base.as_ref().and_then(|p| p.label.clone())),
        digest: digest(&r.component),
        world: r.world,
        state: PluginState::Enabled,
        policy: r
            .policy
            .or(base.as_ref().map(|p| p.policy))
            .unwrap_or(FailurePolicy::DEFAULT),
        limits: r.limits.over(
            &base
                .as_ref()
                .map_or_else(PluginLimits::default_limits, |p| p.limits.clone()),
        ),
        failures: FailureCounts::default(),
        attached_to: target.iter().cloned().collect(),
        config: r
            .config
            .or(base.map(|p| p.config))
            .unwrap_or_else(|| serde_json::json!({})),
        size_bytes: r.component.len() as u64,
        loaded_ms: now_ms(),
        nodes: NODES
            .iter()
            .map(|n| NodePluginState {
                node: (*n).into(),
                state: PluginState::Enabled,
                error: None,
            })
            .collect(),
        warnings: Vec::new(),
    };
    match (target.as_deref(), r.world) {
        (Some("channel"), _) => s.interceptors.insert(
            0,
            Interceptor {
                name: r.name.clone(),
                plugin: Some(r.name),
                option_flag: 0,
                enabled: true,
                config: serde_json::json!({}),
                counters: BTreeMap::new(),
            },
        ),
        (Some(ctx), world) => {
            if let Some(c) = s.contexts.iter_mut().find(|c| c.context.name == ctx) {
                let kind = if world == PluginWorld::UrlFilter {
                    StageKind::UrlFilter
                } else {
                    StageKind::Valve
                };
                c.context.pipeline.insert(
                    0,
                    PipelineStage {
                        name: r.name.clone(),
                        kind,
                        plugin: Some(r.name),
                        enabled: true,
                    },
                );
            }
        }
        (None, _) => {}
    }
    s.plugins.push(plugin.clone());
    Ok(plugin)
}

pub(super) fn set_enabled(s: &mut State, p: &mut Plugin, enabled: bool) {
    let state = if enabled {
        PluginState::Enabled
    } else {
        PluginState::Disabled
    };
    p.state = state;
    for n in &mut p.nodes {
        n.state = state;
        n.error = None;
    }
    let mine = |plugin: &Option<String>| plugin.as_deref() == Some(p.name.as_str());
    for i in s.interceptors.iter_mut().filter(|i| mine(&i.plugin)) {
        i.enabled = enabled;
    }
    for st in s
        .contexts
        .iter_mut()
        .flat_map(|c| c.context.pipeline.iter_mut())
        .filter(|st| mine(&st.plugin))
    {
        st.enabled = enabled;
    }
}

pub(super) fn unload_plugin(s: &mut State, name: &str) -> Result<(), BackendError> {
    let before = s.plugins.len();
    s.plugins.retain(|p| p.name != name);
    if s.plugins.len() == before {
        return Err(BackendError::not_found("plugin", name));
    }
    s.interceptors.retain(|i| i.plugin.as_deref() != Some(name));
    for c in &mut s.contexts {
        c.context
            .pipeline
            .retain(|st| st.plugin.as_deref() != Some(name));
    }
    Ok(())
}

pub(super) fn deploy(
    s: &mut State,
    req: &DeployRequest,
    artifact: &[u8],
) -> Result<Deployment, BackendError> {
    let name = req.name.as_str();
    rules::check_artifact_name(name)?;
    if req.kind != ArtifactKind::File {
        rules::check_artifact(name, artifact)?;
        // As a node: a plugin or an application must be a Wasm component (each node
        // test-loads it); every live node fails, nobody activates.
        if !artifact.starts_with(b"\0asm") {
            let reason = format!(
                "{name}: not a loadable plugin component: no Wasm header (\\0asm) in its first bytes"
            );
            return Err(abort(s, req, artifact, &reason));
        }
    }
    // As the node: an application names the context it creates.
    if req.kind == ArtifactKind::Application
        && !req.metadata.get("path").is_some_and(|p| p.starts_with('/'))
    {
        return Err(BackendError::Invalid(format!(
            "{name}: nothing was activated: application {name}: metadata `path` is required \
             (the context path, e.g. meta.path=/hello)"
        )));
    }
    let digest = digest(artifact);
    let version = req
        .version
        .clone()
        .unwrap_or_else(|| digest[..12].to_string());
    let previous = s.deployments.iter().find(|x| x.name == name).cloned();
    let generation = previous.as_ref().map_or(1, |p| p.generation + 1);
    let nodes = s
        .members
        .iter()
        .map(|m| match m.state {
            MemberState::Gone => NodeDeployState {
                node: m.name.clone(),
                state: DeployState::Pending,
                version: None,
                digest: None,
                generation: None,
                detail: Some("node is gone; converges when it rejoins".into()),
                activated_ms: None,
            },
            _ => NodeDeployState {
                node: m.name.clone(),
                state: DeployState::Active,
                version: Some(version.clone()),
                digest: Some(digest.clone()),
                generation: Some(generation),
                detail: None,
                activated_ms: None,
            },
        })
        .collect();
    let d = Deployment {
        name: name.to_owned(),
        kind: req.kind,
        version,
        digest,
        size_bytes: artifact.len() as u64,
        generation,
        signed: req.signature.is_some(),
        metadata: req.metadata.clone(),
        previous_version: previous.as_ref().map(|p| p.version.clone()),
        deployed_ms: now_ms(),
        activation_skew_ms: None,
        nodes,
    };
    if let Some(p) = previous {
        s.previous_deployments.retain(|x| x.name != name);
        s.previous_deployments.push(p);
    }
    s.deployments.retain(|x| x.name != name);
    s.deployments.push(d.clone());
    let size = d.size_bytes;
    record(
        s,
        req,
        artifact,
        RolloutOutcome::Activated,
        |_| (RolloutNodeState::Active, size, None),
        None,
    );
    Ok(d)
}

/// A refused deploy: every live node failed with `reason`; recorded as an aborted rollout.
fn abort(s: &mut State, req: &DeployRequest, artifact: &[u8], reason: &str) -> BackendError {
    let failures: Vec<String> = live_nodes(s)
        .iter()
        .map(|n| format!("node {n}: {reason}"))
        .collect();
    let error = format!(
        "{}: nothing was activated: {}",
        req.name,
        failures.join("; ")
    );
    let size = artifact.len() as u64;
    record(
        s,
        req,
        artifact,
        RolloutOutcome::Aborted,
        |_| (RolloutNodeState::Failed, size, Some(reason.to_string())),
        Some(error.clone()),
    );
    BackendError::Invalid(error)
}

fn live_nodes(s: &State) -> Vec<String> {
    s.members
        .iter()
        .filter(|m| m.state != MemberState::Gone)
        .map(|m| m.name.clone())
        .collect()
}

/// Keeps the rollout of a deploy (the last one per name, most recent first).
fn record(
    s: &mut State,
    req: &DeployRequest,
    artifact: &[u8],
    outcome: RolloutOutcome,
    node: impl Fn(&str) -> (RolloutNodeState, u64, Option<String>),
    error: Option<String>,
) {
    let digest = digest(artifact);
    let nodes = live_nodes(s)
        .into_iter()
        .map(|n| {
            let (state, bytes_received, detail) = node(&n);
            RolloutNode {
                node: n,
                state,
                bytes_received,
                detail,
            }
        })
        .collect();
    let r = Rollout {
        name: req.name.clone(),
        id: format!("node1/{}", s.rollouts.len() + 1),
        undeploy: false,
        kind: Some(req.kind),
        version: Some(
            req.version
                .clone()
                .unwrap_or_else(|| digest[..12].to_string()),
        ),
        digest: Some(digest),
        size_bytes: artifact.len() as u64,
        phase: RolloutPhase::Done,
        outcome: Some(outcome),
        error,
        started_ms: now_ms(),
        nodes,
    };
    s.rollouts.retain(|x| x.name != req.name);
    s.rollouts.insert(0, r);
}

/// The previous version becomes current again (a new generation).
pub(super) fn rollback(s: &mut State, name: &str) -> Result<Deployment, BackendError> {
    let Some(current) = s.deployments.iter().find(|x| x.name == name).cloned() else {
        return Err(BackendError::not_found("deployment", name));
    };
    let Some(mut prev) = s
        .previous_deployments
        .iter()
        .find(|x| x.name == name)
        .cloned()
    else {
        return Err(BackendError::DeployConflict(DeployConflict {
            reason: ConflictReason::NoPreviousVersion,
            competing: None,
            detail: format!("deployment {name:?} has no previous version to roll back to"),
        }));
    };
    prev.generation = current.generation + 1;
    prev.previous_version = Some(current.version.clone());
    prev.deployed_ms = now_ms();
    s.previous_deployments.retain(|x| x.name != name);
    s.previous_deployments.push(current);
    s.deployments.retain(|x| x.name != name);
    s.deployments.push(prev.clone());
    Ok(prev)
}

pub(super) fn metrics(s: &State, secs: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP shoal_members Members by state.\n# TYPE shoal_members gauge"
    );
    for state in [MemberState::Alive, MemberState::Suspect, MemberState::Gone] {
        let n = state.count_in(&s.members);
        let _ = writeln!(
            out,
            "shoal_members{{state=\"{}\"}} {n}",
            format!("{state:?}").to_lowercase()
        );
    }
    let _ = writeln!(out, "# HELP shoal_sessions_active Active sessions per context.\n# TYPE shoal_sessions_active gauge");
    for c in &s.contexts {
        let _ = writeln!(
            out,
            "shoal_sessions_active{{context=\"{}\"}} {}",
            c.context.name,
            c.sessions.len()
        );
    }
    let _ = writeln!(out, "# HELP shoal_channel_sent_bytes_total Bytes sent per peer.\n# TYPE shoal_channel_sent_bytes_total counter");
    for (i, m) in s.members.iter().filter(|m| !m.local).enumerate() {
        let t = traffic(&m.name, i, secs);
        let _ = writeln!(
            out,
            "shoal_channel_sent_bytes_total{{peer=\"{}\"}} {}",
            m.name, t.bytes_sent
        );
    }
    let _ = writeln!(out, "# HELP shoal_plugin_failures_total Plugin failures.\n# TYPE shoal_plugin_failures_total counter");
    for p in &s.plugins {
        let _ = writeln!(
            out,
            "shoal_plugin_failures_total{{plugin=\"{}\"}} {}",
            p.name, p.failures.total
        );
    }
    out
}
