//! One version of a plugin: its compiled component, pre-instantiated template, and the
//! pool of instances serving calls. A reload makes a new version; calls already holding
//! the old one finish on it, and its instances go away with its last call.
use crate::bindings;
use crate::engine::PluginEngine;
use crate::error::PluginError;
use crate::state::{HostState, PluginContext};
use crate::types::{Limits, PluginWorld};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};

/// The `shoal:plugin` package versions this host links, oldest first. A version stays
/// linked at least as long as plugins/README.md ("Versions") promises.
pub const SUPPORTED_WIT_VERSIONS: [&str; 2] = ["0.1.0", "0.2.0"];
/// The version of `wit/`, which the SDK targets.
pub const CURRENT_WIT_VERSION: &str = "0.2.0";

/// The package version a component was built against (from its imports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WitVersion {
    V0_1,
    V0_2,
}

impl WitVersion {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
        }
    }

    /// By compatibility line, as wasmtime's semver-aware linker matches names (`0.2.*`):
    /// a later patch of a line only adds items, which link or fail to link by name.
    fn parse(v: &str) -> Option<WitVersion> {
        let line = v.rsplit_once('.').map_or(v, |(line, _)| line);
        match line {
            "0.1" => Some(WitVersion::V0_1),
            "0.2" => Some(WitVersion::V0_2),
            _ => None,
        }
    }
}

/// The typed template of each world (and version, where the world's exports changed).
enum Pre {
    Valve(bindings::valve::ValvePre<HostState>),
    UrlFilter(bindings::url_filter::UrlFilterPre<HostState>),
    Interceptor(bindings::interceptor::ChannelInterceptorPre<HostState>),
    InterceptorV0_1(bindings::v0_1::interceptor::ChannelInterceptorPre<HostState>),
    Deploy(bindings::deploy::DeployHookPre<HostState>),
}

/// The typed exports of a live instance.
pub(crate) enum Exports {
    Valve(bindings::valve::Valve),
    UrlFilter(bindings::url_filter::UrlFilter),
    Interceptor(bindings::interceptor::ChannelInterceptor),
    /// A channel interceptor built against 0.1.0 (its `send-verdict` lacks `narrow`).
    InterceptorV0_1(bindings::v0_1::interceptor::ChannelInterceptor),
    Deploy(bindings::deploy::DeployHook),
}

/// An instance with its store: it serves one call at a time.
pub(crate) struct Live {
    pub store: Store<HostState>,
    pub exports: Exports,
}

pub(crate) enum AcquireError {
    /// `max_instances` are all busy and none was freed in time.
    Busy,
    Instantiate(String),
}

#[derive(Default)]
struct Pool {
    idle: Vec<Live>,
    /// Instances in existence (idle + serving + being created).
    alive: u32,
    /// Calls waiting for an instance: releases skip the (syscall) notify when there are none.
    waiting: u32,
}

pub(crate) struct Version {
    pub number: u64,
    pub digest: String,
    pub world: PluginWorld,
    pub wit: WitVersion,
    pub component: Component,
    pub context: Arc<PluginContext>,
    pub limits: Limits,
    /// Asked from the first instance: valves that want the request body get it.
    pub wants_body: bool,
    /// Asked from the first instance: the option bits an interceptor acts on.
    pub option_flag: u32,
    pub ticks: u64,
    engine: Engine,
    /// Epoch time runs while this version exists (see `engine::Ticker`).
    _ticking: crate::engine::TickGuard,
    pre: Pre,
    pool: Mutex<Pool>,
    freed: Condvar,
}

/// The `shoal:plugin` version a component was built against: the version of the
/// `shoal:plugin/<interface>@<version>` names it imports (every world imports `host`). A
/// component importing none of them (e.g. a hand-written WAT fixture defining its own
/// types) is taken as current; one mixing versions, or naming a version this host does not
/// link, is refused with the versions it supports.
pub(crate) fn detect_version(
    name: &str,
    engine: &Engine,
    component: &Component,
) -> Result<WitVersion, PluginError> {
    let ty = component.component_type();
    let mut found: Vec<String> = Vec::new();
    let names = ty
        .imports(engine)
        .map(|(n, _)| n.to_string())
        .chain(ty.exports(engine).map(|(n, _)| n.to_string()));
    for n in names {
        let Some(rest) = n.strip_prefix("shoal:plugin/") else {
            continue;
        };
        let v = rest.split_once('@').map_or("(no version)", |(_, v)| v);
        if !found.iter().any(|f| f == v) {
            found.push(v.to_string());
        }
    }
    match found.as_slice() {
        [] => Ok(WitVersion::V0_2),
        [one] => WitVersion::parse(one).ok_or_else(|| PluginError::UnsupportedVersion {
            name: name.to_string(),
            found: one.clone(),
            supported: SUPPORTED_WIT_VERSIONS.join(", "),
        }),
        _ => Err(PluginError::MixedVersions {
            name: name.to_string(),
            found: found.join(", "),
        }),
    }
}

/// The world a component implements, from its exports.
pub(crate) fn detect_world(
    name: &str,
    engine: &Engine,
    component: &Component,
) -> Result<PluginWorld, PluginError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    PluginWorld::ALL
        .into_iter()
        .find(|w| exports.iter().any(|e| e == w.marker_export()))
        .ok_or_else(|| PluginError::UnknownWorld {
            name: name.to_string(),
            exports: exports.join(", "),
        })
}

impl Version {
    /// Links, type-checks against `world` as of WIT version `wit`, and creates the first instance (which also
    /// answers `wants-body` / `option-flag`).
    pub(crate) fn new(
        engine: &PluginEngine,
        number: u64,
        digest: String,
        (world, wit): (PluginWorld, WitVersion),
        component: Component,
        context: Arc<PluginContext>,
        limits: Limits,
    ) -> Result<Version, PluginError> {
        let name = context.name.clone();
        let link = |e: wasmtime::Error| PluginError::Link {
            name: name.clone(),
            world,
            reason: format!("{e:#}"),
        };
        let pre = engine.linker.instantiate_pre(&component).map_err(link)?;
        let pre = match world {
            PluginWorld::Valve => Pre::Valve(bindings::valve::ValvePre::new(pre).map_err(link)?),
            PluginWorld::UrlFilter => {
                Pre::UrlFilter(bindings::url_filter::UrlFilterPre::new(pre).map_err(link)?)
            }
            PluginWorld::ChannelInterceptor if wit == WitVersion::V0_1 => Pre::InterceptorV0_1(
                bindings::v0_1::interceptor::ChannelInterceptorPre::new(pre).map_err(link)?,
            ),
            PluginWorld::ChannelInterceptor => Pre::Interceptor(
                bindings::interceptor::ChannelInterceptorPre::new(pre).map_err(link)?,
            ),
            PluginWorld::DeployHook => {
                Pre::Deploy(bindings::deploy::DeployHookPre::new(pre).map_err(link)?)
            }
        };
        let mut version = Version {
            number,
            digest,
            world,
            wit,
            component,
            context,
            ticks: engine.ticks(limits.call_timeout),
            limits,
            wants_body: false,
            option_flag: 0,
            engine: engine.engine.clone(),
            _ticking: engine.tick_guard(),
            pre,
            pool: Mutex::default(),
            freed: Condvar::new(),
        };
        let first = |e: wasmtime::Error| PluginError::Instantiate {
            name: name.clone(),
            reason: format!("{e:#}"),
        };
        let mut live = version.instantiate().map_err(first)?;
        live.store.set_epoch_deadline(version.ticks);
        match &live.exports {
            Exports::Valve(v) => {
                version.wants_body = v.call_wants_body(&mut live.store).map_err(first)?
            }
            Exports::Interceptor(i) => {
                version.option_flag = i.call_option_flag(&mut live.store).map_err(first)?
            }
            Exports::InterceptorV0_1(i) => {
                version.option_flag = i.call_option_flag(&mut live.store).map_err(first)?
            }
            Exports::UrlFilter(_) | Exports::Deploy(_) => {}
        }
        if let Ok(mut pool) = version.pool.lock() {
            pool.alive = 1;
            pool.idle.push(live);
        }
        Ok(version)
    }

    fn instantiate(&self) -> wasmtime::Result<Live> {
        let state = HostState::new(self.context.clone(), self.limits.memory_bytes);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Constructors and start functions get the same time limit as a call.
        store.set_epoch_deadline(self.ticks);
        let exports = match &self.pre {
            Pre::Valve(p) => Exports::Valve(p.instantiate(&mut store)?),
            Pre::UrlFilter(p) => Exports::UrlFilter(p.instantiate(&mut store)?),
            Pre::Interceptor(p) => Exports::Interceptor(p.instantiate(&mut store)?),
            Pre::InterceptorV0_1(p) => Exports::InterceptorV0_1(p.instantiate(&mut store)?),
            Pre::Deploy(p) => Exports::Deploy(p.instantiate(&mut store)?),
        };
        Ok(Live { store, exports })
    }

    /// An idle instance, a new one while fewer than `max_instances` exist, or else waits
    /// up to the call timeout for one to be released.
    pub(crate) fn acquire(&self) -> Result<Live, AcquireError> {
        // Read the clock only when the call has to wait: most calls find an idle instance.
        let mut deadline = None;
        let mut pool = self.pool.lock().map_err(|_| AcquireError::Busy)?;
        loop {
            if let Some(live) = pool.idle.pop() {
                return Ok(live);
            }
            if pool.alive < self.limits.max_instances.max(1) {
                pool.alive += 1;
                drop(pool);
                return self.instantiate().map_err(|e| {
                    self.forget_one();
                    AcquireError::Instantiate(format!("{e:#}"))
                });
            }
            let deadline =
                *deadline.get_or_insert_with(|| Instant::now() + self.limits.call_timeout);
            let left = deadline.saturating_duration_since(Instant::now());
            if left == Duration::ZERO {
                return Err(AcquireError::Busy);
            }
            // Counted so that `release` / `forget_one` notify (they skip it with no waiter).
            pool.waiting += 1;
            pool = self
                .freed
                .wait_timeout(pool, left)
                .map_err(|_| AcquireError::Busy)?
                .0;
            pool.waiting = pool.waiting.saturating_sub(1);
        }
    }

    /// Returns a healthy instance to the pool: its state persists for later calls.
    pub(crate) fn release(&self, live: Live) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.idle.push(live);
            if pool.waiting > 0 {
                self.freed.notify_one();
            }
        }
    }

    /// Drops an instance that failed: its memory may be in any state.
    pub(crate) fn discard(&self, live: Live) {
        drop(live);
        self.forget_one();
    }

    fn forget_one(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.alive = pool.alive.saturating_sub(1);
            if pool.waiting > 0 {
                self.freed.notify_one();
            }
        }
    }

    pub(crate) fn alive(&self) -> u32 {
        self.pool.lock().map(|p| p.alive).unwrap_or(0)
    }
}
