//! WIT compatibility: which `shoal:plugin` package versions this host links, how a
//! component's version and world are detected, the linker holding every version's host
//! imports, and the typed templates and exports the rest of the crate calls through.
//!
//! Everything that depends on which WIT versions exist is in this folder, so adding or
//! dropping a version touches this folder only:
//! - `mod.rs` (this file): [`SUPPORTED_WIT_VERSIONS`], [`WitVersion`], detection,
//!   [`linker`], [`Pre`] / [`Exports`] and the version-blind [`ChannelInterceptor`];
//! - `bindings.rs`: the only `bindgen!`s, one module per world and version;
//! - `v0_1.rs`: every conversion between 0.1.0 and the current version (spin's
//!   `crates/world/src/conversions.rs` is the model): the 0.1.0 host imports, implemented
//!   by converting to the current ones, and the 0.1.0 interceptor exports, called with the
//!   current types.
//!
//! Data flows one way: callers hand current types in and get current types back; the
//! conversions to and from older versions happen here.
pub(crate) mod bindings;
mod v0_1;

use crate::error::PluginError;
use crate::state::HostState;
use crate::types::PluginWorld;
use bindings::{channel, types};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
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
            supported: SUPPORTED_WIT_VERSIONS.join(", "),
        })
}

/// A linker with the host imports of every supported version (their names differ by the
/// `@<version>` suffix) and the WASI imports components built for wasip2 need.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    bindings::valve::Valve::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    bindings::channel::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    bindings::deploy_types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    // The frozen 0.1.0 imports, beside the current ones (distinct names: `...@0.1.0`).
    bindings::v0_1::valve::Valve::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    bindings::v0_1::channel::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    bindings::v0_1::deploy_types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    Ok(linker)
}

/// The typed template of each world (and version, where the world's exports changed).
/// Of the 0.1.0 worlds only `channel-interceptor` differs from the current one; valve,
/// url-filter and deploy-hook export the same functions with the same shapes, so the
/// current templates serve them (component types are structural).
pub(crate) enum Pre {
    Valve(bindings::valve::ValvePre<HostState>),
    UrlFilter(bindings::url_filter::UrlFilterPre<HostState>),
    Interceptor(bindings::interceptor::ChannelInterceptorPre<HostState>),
    InterceptorV0_1(bindings::v0_1::interceptor::ChannelInterceptorPre<HostState>),
    Deploy(bindings::deploy::DeployHookPre<HostState>),
}

impl Pre {
    /// Type-checks `pre` against `world` as of WIT version `wit`.
    pub(crate) fn new(
        world: PluginWorld,
        wit: WitVersion,
        pre: InstancePre<HostState>,
    ) -> wasmtime::Result<Pre> {
        Ok(match world {
            PluginWorld::Valve => Pre::Valve(bindings::valve::ValvePre::new(pre)?),
            PluginWorld::UrlFilter => Pre::UrlFilter(bindings::url_filter::UrlFilterPre::new(pre)?),
            PluginWorld::ChannelInterceptor if wit == WitVersion::V0_1 => Pre::InterceptorV0_1(
                bindings::v0_1::interceptor::ChannelInterceptorPre::new(pre)?,
            ),
            PluginWorld::ChannelInterceptor => {
                Pre::Interceptor(bindings::interceptor::ChannelInterceptorPre::new(pre)?)
            }
            PluginWorld::DeployHook => Pre::Deploy(bindings::deploy::DeployHookPre::new(pre)?),
        })
    }

    pub(crate) fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            Pre::Valve(p) => Exports::Valve(p.instantiate(store)?),
            Pre::UrlFilter(p) => Exports::UrlFilter(p.instantiate(store)?),
            Pre::Interceptor(p) => {
                Exports::Interceptor(ChannelInterceptor::Current(p.instantiate(store)?))
            }
            Pre::InterceptorV0_1(p) => {
                Exports::Interceptor(ChannelInterceptor::V0_1(p.instantiate(store)?))
            }
            Pre::Deploy(p) => Exports::Deploy(p.instantiate(store)?),
        })
    }
}

/// The typed exports of a live instance.
pub(crate) enum Exports {
    Valve(bindings::valve::Valve),
    UrlFilter(bindings::url_filter::UrlFilter),
    Interceptor(ChannelInterceptor),
    Deploy(bindings::deploy::DeployHook),
}

/// A channel interceptor of any supported version, called with the current types.
pub(crate) enum ChannelInterceptor {
    Current(bindings::interceptor::ChannelInterceptor),
    /// Built against 0.1.0 (its `send-verdict` lacks `narrow`).
    V0_1(bindings::v0_1::interceptor::ChannelInterceptor),
}

impl ChannelInterceptor {
    pub(crate) fn call_option_flag(&self, store: &mut Store<HostState>) -> wasmtime::Result<u32> {
        match self {
            ChannelInterceptor::Current(i) => i.call_option_flag(store),
            ChannelInterceptor::V0_1(i) => i.call_option_flag(store),
        }
    }

    /// `on-send`; `message` is lent to the call and comes back unchanged (nothing copied).
    pub(crate) fn call_on_send(
        &self,
        store: &mut Store<HostState>,
        message: &mut channel::Message,
    ) -> wasmtime::Result<channel::SendVerdict> {
        match self {
            ChannelInterceptor::Current(i) => i.call_on_send(store, message),
            ChannelInterceptor::V0_1(i) => v0_1::on_send(i, store, message),
        }
    }

    /// `on-receive`; `message` is lent to the call and comes back unchanged.
    pub(crate) fn call_on_receive(
        &self,
        store: &mut Store<HostState>,
        message: &mut channel::Message,
    ) -> wasmtime::Result<channel::ReceiveVerdict> {
        match self {
            ChannelInterceptor::Current(i) => i.call_on_receive(store, message),
            ChannelInterceptor::V0_1(i) => v0_1::on_receive(i, store, message),
        }
    }

    pub(crate) fn call_member_added(
        &self,
        store: &mut Store<HostState>,
        member: &types::MemberInfo,
    ) -> wasmtime::Result<()> {
        match self {
            ChannelInterceptor::Current(i) => i.call_member_added(store, member),
            ChannelInterceptor::V0_1(i) => i.call_member_added(store, &member.clone().into()),
        }
    }

    pub(crate) fn call_member_disappeared(
        &self,
        store: &mut Store<HostState>,
        member: &types::MemberInfo,
    ) -> wasmtime::Result<()> {
        match self {
            ChannelInterceptor::Current(i) => i.call_member_disappeared(store, member),
            ChannelInterceptor::V0_1(i) => i.call_member_disappeared(store, &member.clone().into()),
        }
    }

    pub(crate) fn call_heartbeat(&self, store: &mut Store<HostState>) -> wasmtime::Result<()> {
        match self {
            ChannelInterceptor::Current(i) => i.call_heartbeat(store),
            ChannelInterceptor::V0_1(i) => i.call_heartbeat(store),
        }
    }
}
