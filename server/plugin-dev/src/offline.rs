//! `shoal plugin test [dir]`: the component run here, offline, as a node would run it (the
//! same registry, limits and failure policy), against sample requests, messages or
//! artifacts, with an in-memory session and a fake node `node1`. It prints what the plugin
//! did and fails when a call failed, so plugin authors can run it in CI.
use anyhow::{bail, Context as _};
use shoal_cluster::{ChannelMessage, Interceptor, MemberId, SendOptions};
use shoal_plugin_host::{
    Artifact, DeployDecision, EngineOptions, HttpRequest, MemberFact, MemorySession, PluginInfo,
    PluginRegistry, PluginSpec, PluginWorld, SharedFacts, ValveOutcome,
};
use std::sync::Arc;
use std::time::Instant;

/// The fake node the plugin runs on.
pub(crate) const NODE: &str = "node1";

/// What to run the plugin against.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// `METHOD PATH[?QUERY]` (valves, URL filters), e.g. `GET /app/hello?x=1`.
    pub requests: Vec<String>,
    /// `NAME: VALUE`, added to every request.
    pub headers: Vec<String>,
    /// Payloads (text) sent through an interceptor, then received back.
    pub messages: Vec<String>,
    /// `NAME[:SIZE]` offered to a deploy hook.
    pub artifacts: Vec<String>,
    /// `KEY=VALUE` configuration.
    pub config: Vec<(String, String)>,
}

fn registry() -> anyhow::Result<Arc<PluginRegistry>> {
    let facts = SharedFacts::new(MemberFact {
        id: "00000000000000000000000000000001".into(),
        name: NODE.into(),
        address: "127.0.0.1:4000".into(),
        domain: String::new(),
    });
    // No pooling: a one-shot run needs no preallocated slots.
    let options = EngineOptions {
        pooling: false,
        ..EngineOptions::default()
    };
    Ok(Arc::new(PluginRegistry::new(options, facts)?))
}

/// Loads `component` as a node would (world detected and checked against `expected`, WIT
/// version, imports, first instance); the plugin's facts as a node would list them.
pub(crate) fn check_loads(
    name: &str,
    component: &[u8],
    expected: Option<PluginWorld>,
) -> anyhow::Result<PluginInfo> {
    let registry = registry()?;
    load(&registry, name, component, expected, Vec::new())
}

fn load(
    registry: &PluginRegistry,
    name: &str,
    component: &[u8],
    expected: Option<PluginWorld>,
    config: Vec<(String, String)>,
) -> anyhow::Result<PluginInfo> {
    let spec = PluginSpec {
        config,
        world: None,
        ..PluginSpec::default()
    };
    let info = registry.load(name, component, spec)?;
    if let Some(want) = expected {
        if info.world != want {
            bail!(
                "plugin {name}: Cargo.toml declares the {} world but src/lib.rs exports the {} world: make them agree (the SDK feature and [package.metadata.shoal] kind, and the export_… macro)",
                want.wit_name(),
                info.world.wit_name()
            );
        }
    }
    Ok(info)
}

/// Runs the samples; returns the report, or an error when a call failed.
pub(crate) fn run(
    name: &str,
    component: &[u8],
    expected: Option<PluginWorld>,
    samples: &Samples,
) -> anyhow::Result<String> {
    let registry = registry()?;
    let info = load(&registry, name, component, expected, samples.config.clone())?;
    let mut out = format!(
        "plugin {name}: world {}, shoal:plugin@{}, on fake node {NODE}\n",
        info.world.wit_name(),
        info.wit_version
    );
    match info.world {
        PluginWorld::Valve => valve(&registry, name, samples, &mut out)?,
        PluginWorld::UrlFilter => url_filter(&registry, name, samples, &mut out)?,
        PluginWorld::ChannelInterceptor => interceptor(&registry, name, samples, &mut out)?,
        PluginWorld::DeployHook => deploy_hook(&registry, name, samples, &mut out)?,
    }
    for m in registry.metrics() {
        if !m.name.contains(".host.") {
            out += &format!("metric {} = {}\n", m.name, m.value);
        }
    }
    let after = registry.info(name)?;
    let f = &after.failures;
    let failed = f.traps + f.timeouts + f.memory + f.bad_output + f.instantiation;
    if failed > 0 {
        bail!(
            "{out}plugin {name} failed {failed} of {} calls; last: {}",
            after.calls,
            after.last_error.unwrap_or_default()
        );
    }
    Ok(out)
}

fn request(line: &str, headers: &[String]) -> anyhow::Result<HttpRequest> {
    let mut words = line.split_whitespace();
    let (method, target) = match (words.next(), words.next()) {
        (Some(m), Some(t)) => (m, t),
        (Some(t), None) if t.starts_with('/') => ("GET", t),
        _ => bail!("--request {line:?}: write `METHOD /path?query`, e.g. `GET /app/hello`"),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        bail!("--request {line:?}: the path must start with `/`");
    }
    let mut hs = Vec::new();
    for h in headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header {h:?}: write `name: value`");
        };
        hs.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    Ok(HttpRequest {
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: hs,
        body: None,
    })
}

fn requests(samples: &Samples) -> Vec<String> {
    if samples.requests.is_empty() {
        vec!["GET /".into()]
    } else {
        samples.requests.clone()
    }
}

fn valve(
    registry: &PluginRegistry,
    name: &str,
    samples: &Samples,
    out: &mut String,
) -> anyhow::Result<()> {
    // One browser: the session a request creates is sent with the next ones.
    let mut session = MemorySession::none();
    for line in requests(samples) {
        let req = request(&line, &samples.headers)?;
        session.is_new = false;
        let outcome = registry.valve_call(name, &req, &mut session)?;
        *out += &format!("{line}\n");
        match outcome {
            ValveOutcome::Next {
                set_request_headers,
                add_response_headers,
            } => {
                *out += "  -> next (the request goes on to the next stage)\n";
                for (k, v) in set_request_headers {
                    *out += &format!("     request header  {k}: {v}\n");
                }
                for (k, v) in add_response_headers {
                    *out += &format!("     response header {k}: {v}\n");
                }
            }
            ValveOutcome::Respond(r) => {
                *out += &format!("  -> respond {}\n", r.status);
                for (k, v) in &r.headers {
                    *out += &format!("     header {k}: {v}\n");
                }
                let body = String::from_utf8_lossy(&r.body);
                let shown: String = body.chars().take(400).collect();
                *out += &format!("     body ({} bytes): {}\n", r.body.len(), shown.trim_end());
            }
        }
        match &session.id {
            Some(id) => {
                let attrs: Vec<String> = session
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                    .collect();
                *out += &format!("     session {id}: {}\n", attrs.join(" "));
            }
            None => *out += "     no session\n",
        }
    }
    Ok(())
}

fn url_filter(
    registry: &PluginRegistry,
    name: &str,
    samples: &Samples,
    out: &mut String,
) -> anyhow::Result<()> {
    for line in requests(samples) {
        let req = request(&line, &samples.headers)?;
        let touch = registry.url_filter(name, &req)?;
        *out += &format!(
            "{line}\n  -> {}\n",
            if touch {
                "may touch the session (replicates as usual)"
            } else {
                "filtered: the session is not replicated after it"
            }
        );
    }
    Ok(())
}

fn interceptor(
    registry: &Arc<PluginRegistry>,
    name: &str,
    samples: &Samples,
    out: &mut String,
) -> anyhow::Result<()> {
    let mut layer = registry.interceptor(name)?;
    let messages = if samples.messages.is_empty() {
        vec!["hello".to_owned()]
    } else {
        samples.messages.clone()
    };
    let (local, peer) = (MemberId([1; 16]), MemberId([2; 16]));
    for (i, text) in messages.iter().enumerate() {
        let msg = ChannelMessage {
            id: i as u64 + 1,
            from: local,
            destinations: vec![peer],
            options: SendOptions(0),
            payload: text.as_bytes().to_vec(),
        };
        *out += &format!("message {:?} ({} bytes)\n", text, text.len());
        let mut sent = Vec::new();
        if let Err(e) = layer.on_send(Instant::now(), msg, &mut sent) {
            *out += &format!("  send    -> error to the sender: {}\n", e.reason);
            continue;
        }
        if sent.is_empty() {
            *out += "  send    -> dropped\n";
        }
        for m in sent {
            *out += &format!("  send    -> {}\n", payload(&m.payload, text));
            // Back through the layer as the peer receives it.
            let back = ChannelMessage {
                from: peer,
                destinations: Vec::new(),
                ..m
            };
            let mut received = Vec::new();
            match layer.on_receive(Instant::now(), back, &mut received) {
                Err(e) => *out += &format!("  receive -> error: {}\n", e.reason),
                Ok(()) if received.is_empty() => *out += "  receive -> dropped\n",
                Ok(()) => {
                    for r in received {
                        *out += &format!("  receive -> {}\n", payload(&r.payload, text));
                    }
                }
            }
        }
    }
    Ok(())
}

fn payload(bytes: &[u8], original: &str) -> String {
    if bytes == original.as_bytes() {
        return "passed unchanged".into();
    }
    match std::str::from_utf8(bytes) {
        Ok(t) => format!("rewritten to {t:?} ({} bytes)", bytes.len()),
        Err(_) => format!("rewritten to {} bytes (not text)", bytes.len()),
    }
}

fn deploy_hook(
    registry: &PluginRegistry,
    name: &str,
    samples: &Samples,
    out: &mut String,
) -> anyhow::Result<()> {
    let artifacts = if samples.artifacts.is_empty() {
        vec!["app.war:1024".to_owned()]
    } else {
        samples.artifacts.clone()
    };
    for a in artifacts {
        let (file, size) = match a.split_once(':') {
            Some((n, s)) => (
                n.to_owned(),
                s.parse::<u64>()
                    .with_context(|| format!("--artifact {a:?}: write NAME:SIZE (bytes)"))?,
            ),
            None => (a.clone(), 0),
        };
        let artifact = Artifact {
            name: file.clone(),
            digest: "0".repeat(64),
            size,
            metadata: Vec::new(),
        };
        let decision = registry.deploy_hook_before(name, &artifact)?;
        *out += &format!(
            "artifact {file} ({size} bytes)\n  -> {}\n",
            match decision {
                DeployDecision::Allow => "allowed".to_owned(),
                DeployDecision::Veto(why) => format!("vetoed: {why}"),
            }
        );
    }
    Ok(())
}
