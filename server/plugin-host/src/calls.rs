//! Typed calls into plugins. A call that fails (trap, limit, bad output) is answered by
//! the plugin's failure policy; `Err` is only for caller mistakes (unknown plugin, wrong
//! world).
use crate::error::PluginError;
use crate::generation::{AcquireError, Generation, Live};
use crate::plugin::{Answer, FailureKind, Plugin};
use crate::registry::PluginRegistry;
use crate::session::{lend, SessionAccess, SessionResource};
use crate::types::{
    Artifact, DeployDecision, HttpRequest, HttpResponse, PluginWorld, ValveOutcome,
};
use crate::wit::bindings::{deploy_types, http};
use crate::wit::Exports;
use wasmtime::component::Resource;

impl PluginRegistry {
    /// Runs one call on an instance of the current version of `name`, with the version's
    /// time limit, then `check`s the result; failures become the policy's [`Answer`].
    pub(crate) fn run<R>(
        &self,
        name: &str,
        world: PluginWorld,
        call: impl FnOnce(&mut Live, &Generation) -> wasmtime::Result<R>,
        check: impl FnOnce(&R, &Generation) -> Result<(), String>,
    ) -> Result<Result<R, Answer>, PluginError> {
        let plugin = self.lookup(name)?;
        run_on(&plugin, world, call, check)
    }

    /// Whether the valve wants the request body (read once per version).
    pub fn valve_wants_body(&self, name: &str) -> Result<bool, PluginError> {
        let version = self
            .lookup(name)?
            .generation()
            .ok_or_else(|| PluginError::Engine("poisoned plugin lock".into()))?;
        Ok(version.world == PluginWorld::Valve && version.wants_body)
    }

    /// Runs the valve `name` on `request`, lending it `session` for the call.
    /// Failure answers: fail-open passes, fail-closed (and reload) responds 503.
    pub fn valve_call(
        &self,
        name: &str,
        request: &HttpRequest,
        session: &mut dyn SessionAccess,
    ) -> Result<ValveOutcome, PluginError> {
        valve_call_on(&*self.lookup(name)?, request, session)
    }

    /// Whether `request` may touch the session (false: do not replicate after it).
    /// A failing filter answers true: replicating is always safe.
    pub fn url_filter(&self, name: &str, request: &HttpRequest) -> Result<bool, PluginError> {
        let result = self.run(
            name,
            PluginWorld::UrlFilter,
            |live, _| {
                let Exports::UrlFilter(filter) = &live.exports else {
                    return Err(world_mismatch());
                };
                with_wit_request(request, false, |req| {
                    filter.call_may_touch_session(&mut live.store, req)
                })
            },
            |_, _| Ok(()),
        )?;
        Ok(result.unwrap_or(true))
    }

    /// True unless an enabled URL filter says the request must not touch the session.
    pub fn url_filters_allow(&self, request: &HttpRequest) -> bool {
        self.enabled(PluginWorld::UrlFilter)
            .iter()
            .all(|name| self.url_filter(name, request).unwrap_or(true))
    }

    /// Asks the deploy hook `name`. Failure answers: fail-open allows, fail-closed vetoes.
    pub fn deploy_hook_before(
        &self,
        name: &str,
        artifact: &Artifact,
    ) -> Result<DeployDecision, PluginError> {
        let result = self.run(
            name,
            PluginWorld::DeployHook,
            |live, _| {
                let Exports::Deploy(hook) = &live.exports else {
                    return Err(world_mismatch());
                };
                hook.call_before_deploy(&mut live.store, &wit_artifact(artifact))
            },
            |_, _| Ok(()),
        )?;
        Ok(match result {
            Ok(deploy_types::Decision::Allow) | Err(Answer::Skip) => DeployDecision::Allow,
            Ok(deploy_types::Decision::Veto(mut reason)) => {
                truncate(&mut reason, 1024);
                DeployDecision::Veto(reason)
            }
            Err(Answer::Closed) => DeployDecision::Veto(format!(
                "deploy hook {name} failed and its policy is to veto"
            )),
        })
    }

    /// Runs every enabled deploy hook in order; the first veto wins (prefixed with the
    /// hook's name).
    pub fn deploy_hooks_before(&self, artifact: &Artifact) -> DeployDecision {
        for name in self.enabled(PluginWorld::DeployHook) {
            if let Ok(DeployDecision::Veto(reason)) = self.deploy_hook_before(&name, artifact) {
                return DeployDecision::Veto(format!("{name}: {reason}"));
            }
        }
        DeployDecision::Allow
    }

    /// Tells the hook an artifact was deployed.
    pub fn deploy_hook_after(&self, name: &str, artifact: &Artifact) -> Result<(), PluginError> {
        self.run(
            name,
            PluginWorld::DeployHook,
            |live, _| {
                let Exports::Deploy(hook) = &live.exports else {
                    return Err(world_mismatch());
                };
                hook.call_after_deploy(&mut live.store, &wit_artifact(artifact))
            },
            |_, _| Ok(()),
        )
        .map(|_| ())
    }

    /// Tells the hook an artifact was undeployed.
    pub fn deploy_hook_after_undeploy(
        &self,
        name: &str,
        artifact_name: &str,
    ) -> Result<(), PluginError> {
        self.run(
            name,
            PluginWorld::DeployHook,
            |live, _| {
                let Exports::Deploy(hook) = &live.exports else {
                    return Err(world_mismatch());
                };
                hook.call_after_undeploy(&mut live.store, artifact_name)
            },
            |_, _| Ok(()),
        )
        .map(|_| ())
    }
}

/// [`PluginRegistry::run`] on a plugin already looked up (a registered plugin, or a
/// context's application, which is not in the registry's list).
pub(crate) fn run_on<R>(
    plugin: &Plugin,
    world: PluginWorld,
    call: impl FnOnce(&mut Live, &Generation) -> wasmtime::Result<R>,
    check: impl FnOnce(&R, &Generation) -> Result<(), String>,
) -> Result<Result<R, Answer>, PluginError> {
    let version = plugin
        .generation()
        .ok_or_else(|| PluginError::Engine("poisoned plugin lock".into()))?;
    if version.world != world {
        return Err(PluginError::WrongWorld {
            name: plugin.name.clone(),
            expected: world,
            found: version.world,
        });
    }
    if let Some(answer) = plugin.gate() {
        return Ok(Err(answer));
    }
    let mut live = match version.acquire() {
        Ok(live) => live,
        Err(AcquireError::Busy) => {
            let why = format!(
                "{} instances busy for {:?}",
                version.limits.max_instances, version.limits.call_timeout
            );
            return Ok(Err(plugin.failed(version.number, FailureKind::Busy, &why)));
        }
        Err(AcquireError::Instantiate(why)) => {
            return Ok(Err(plugin.failed(
                version.number,
                FailureKind::Instantiation,
                &why,
            )));
        }
    };
    live.store.set_epoch_deadline(version.ticks);
    live.store.data_mut().limiter.hit = false;
    match call(&mut live, &version) {
        Ok(result) => match check(&result, &version) {
            Ok(()) => {
                version.release(live);
                plugin.succeeded();
                Ok(Ok(result))
            }
            Err(why) => {
                version.discard(live);
                Ok(Err(plugin.failed(
                    version.number,
                    FailureKind::BadOutput,
                    &why,
                )))
            }
        },
        Err(e) => {
            let kind = classify(&e, live.store.data().limiter.hit);
            version.discard(live);
            Ok(Err(plugin.failed(version.number, kind, &format!("{e:#}"))))
        }
    }
}

/// [`PluginRegistry::valve_call`] on a plugin already looked up.
pub(crate) fn valve_call_on(
    plugin: &Plugin,
    request: &HttpRequest,
    session: &mut dyn SessionAccess,
) -> Result<ValveOutcome, PluginError> {
    let result = run_on(
        plugin,
        PluginWorld::Valve,
        |live, version| {
            let Live { store, exports } = live;
            let Exports::Valve(valve) = exports else {
                return Err(world_mismatch());
            };
            with_wit_request(request, version.wants_body, |req| {
                lend(
                    store,
                    |s| &mut s.data_mut().session,
                    session,
                    |store| {
                        let borrow = Resource::<SessionResource>::new_borrow(0);
                        valve.call_handle(store, req, borrow)
                    },
                )
            })
        },
        |outcome, version| check_outcome(outcome, version.limits.max_output_bytes),
    )?;
    Ok(match result {
        Ok(http::Outcome::Next(next)) => ValveOutcome::Next {
            set_request_headers: next.set_request_headers,
            add_response_headers: next.add_response_headers,
        },
        Ok(http::Outcome::Respond(r)) => {
            plugin.count_response();
            ValveOutcome::Respond(HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
        }
        Err(Answer::Skip) => ValveOutcome::pass(),
        Err(Answer::Closed) => ValveOutcome::Respond(unavailable(&plugin.name)),
    })
}

fn classify(e: &wasmtime::Error, memory_hit: bool) -> FailureKind {
    if memory_hit {
        return FailureKind::Memory;
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => FailureKind::Timeout,
        Some(_) => FailureKind::Trap,
        // Not a trap: the results could not be lifted (bad UTF-8, bad discriminant, ...).
        None => FailureKind::BadOutput,
    }
}

pub(crate) fn world_mismatch() -> wasmtime::Error {
    wasmtime::Error::msg("internal: instance of another world")
}

/// Requests with at most this many headers are lowered without a heap allocation.
const STACK_HEADERS: usize = 24;

/// Runs `f` on the request as the bindings lower it: borrowed, so nothing is copied on the
/// host side; the header list is rebuilt as pairs of `&str`, on the stack for the usual
/// handful of headers (this runs on every request of every Wasm valve and URL filter).
fn with_wit_request<R>(
    r: &HttpRequest,
    with_body: bool,
    f: impl FnOnce(http::Request<'_>) -> R,
) -> R {
    let lowered = |headers| http::Request {
        method: &r.method,
        path: &r.path,
        query: &r.query,
        headers,
        body: if with_body { r.body.as_deref() } else { None },
    };
    if r.headers.len() <= STACK_HEADERS {
        let mut buf = [("", ""); STACK_HEADERS];
        for (slot, (k, v)) in buf.iter_mut().zip(&r.headers) {
            *slot = (k.as_str(), v.as_str());
        }
        f(lowered(&buf[..r.headers.len()]))
    } else {
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        f(lowered(&headers))
    }
}

fn wit_artifact(a: &Artifact) -> deploy_types::Artifact {
    deploy_types::Artifact {
        name: a.name.clone(),
        digest: a.digest.clone(),
        size: a.size,
        metadata: a.metadata.clone(),
    }
}

fn unavailable(name: &str) -> HttpResponse {
    HttpResponse {
        status: 503,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: format!("error=plugin-unavailable plugin={name}\n").into_bytes(),
    }
}

/// Rejects what no HTTP stack can send: bad status, header names or values that would
/// split the response, or more output than the plugin's limit.
fn check_outcome(outcome: &http::Outcome, max_output: usize) -> Result<(), String> {
    let (headers, body_len, status): (Vec<&(String, String)>, usize, Option<u16>) = match outcome {
        http::Outcome::Next(n) => (
            n.set_request_headers
                .iter()
                .chain(&n.add_response_headers)
                .collect(),
            0,
            None,
        ),
        http::Outcome::Respond(r) => (r.headers.iter().collect(), r.body.len(), Some(r.status)),
    };
    if let Some(status) = status.filter(|s| !(100..=999).contains(s)) {
        return Err(format!("status {status} is not an HTTP status"));
    }
    let mut total = body_len;
    for (k, v) in headers {
        let token = !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !token || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("invalid header {k:?}"));
        }
        total += k.len() + v.len();
    }
    if total > max_output {
        return Err(format!(
            "{total} bytes of output, over the limit of {max_output}"
        ));
    }
    Ok(())
}

pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}
