//! One generation of a plugin: what a load, reload, reconfiguration or new limits produce
//! (numbered 1, 2, ... per plugin; [`crate::PluginInfo::generation`] shows the number). A
//! generation holds the compiled component, its pre-instantiated template and the pool of
//! instances serving calls. A new generation replaces it; calls already holding the old one
//! finish on it, and its instances go away with its last call.
//!
//! Not to be confused with the WIT package version a component was built against
//! ([`WitVersion`], in `wit/`).
use crate::engine::{PluginEngine, TickGuard};
use crate::error::PluginError;
use crate::state::{HostState, PluginContext};
use crate::types::{Limits, PluginWorld};
use crate::wit::{Exports, Pre, WitVersion};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};

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

pub(crate) struct Generation {
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
    /// Epoch time runs while this generation exists (see `engine::Ticker`).
    _ticking: TickGuard,
    pre: Pre,
    pool: Mutex<Pool>,
    freed: Condvar,
}

impl Generation {
    /// Links, type-checks against `world` as of WIT version `wit`, and creates the first
    /// instance (which also answers `wants-body` / `option-flag`).
    pub(crate) fn new(
        engine: &PluginEngine,
        number: u64,
        digest: String,
        (world, wit): (PluginWorld, WitVersion),
        component: Component,
        context: Arc<PluginContext>,
        limits: Limits,
    ) -> Result<Generation, PluginError> {
        let name = context.name.clone();
        let link = |e: wasmtime::Error| PluginError::Link {
            name: name.clone(),
            world,
            reason: format!("{e:#}"),
        };
        let pre = engine.linker.instantiate_pre(&component).map_err(link)?;
        let pre = Pre::new(world, wit, pre).map_err(link)?;
        let mut generation = Generation {
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
        let mut live = generation.instantiate().map_err(first)?;
        live.store.set_epoch_deadline(generation.ticks);
        match &live.exports {
            Exports::Valve(v) => {
                generation.wants_body = v.call_wants_body(&mut live.store).map_err(first)?
            }
            Exports::Interceptor(i) => {
                generation.option_flag = i.call_option_flag(&mut live.store).map_err(first)?
            }
            Exports::UrlFilter(_) | Exports::Deploy(_) => {}
        }
        if let Ok(mut pool) = generation.pool.lock() {
            pool.alive = 1;
            pool.idle.push(live);
        }
        Ok(generation)
    }

    fn instantiate(&self) -> wasmtime::Result<Live> {
        let state = HostState::new(self.context.clone(), self.limits.memory_bytes);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Constructors and start functions get the same time limit as a call.
        store.set_epoch_deadline(self.ticks);
        let exports = self.pre.instantiate(&mut store)?;
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
