//! Live state of each backend and the swappable list that holds them.
//!
//! Request handling reads the list on every request, and membership changes replace it
//! rarely, so the list is an `Arc<[..]>` behind an `RwLock` that readers clone and release
//! at once; per-backend counters are atomics so no lock is held while proxying.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use hyper::http::uri::Authority;
use hyper::Uri;

use crate::config::Target;
use crate::stats::{BackendStats, BackendStatus};

/// One node as the proxy sees it.
#[derive(Debug)]
pub(crate) struct BackendState {
    pub route: String,
    pub authority: Authority,
    pub health_uri: Uri,
    /// HTTPS to this backend.
    pub tls: bool,
    /// False after a failed connection or `fail_threshold` failed probes; a probe success
    /// sets it again.
    up: AtomicBool,
    /// Set by `mark_draining`: keeps serving its sticky sessions, gets no new ones.
    draining: AtomicBool,
    /// Set while health probes see the node's drain mark (`x-shoal-draining`): the same
    /// effect as `draining`, for balancers with a static backend list. Kept apart so a
    /// probe of a node that came back clears only what probes set.
    probe_draining: AtomicBool,
    /// Requests sent and not yet answered (response head), for least-outstanding picking.
    pub outstanding: AtomicUsize,
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    /// Consecutive failed health probes.
    pub probe_failures: AtomicU32,
    last_error: Mutex<Option<String>>,
}

impl BackendState {
    pub fn new(target: Target) -> Self {
        BackendState {
            route: target.route,
            authority: target.authority,
            health_uri: target.health_uri,
            tls: target.tls,
            // Optimistic start, like mod_jk and HAProxy: a dead node is found by the first
            // connection attempt or probe, and a live one serves at once.
            up: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            probe_draining: AtomicBool::new(false),
            outstanding: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            probe_failures: AtomicU32::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire) || self.probe_draining.load(Ordering::Acquire)
    }

    /// Records what the last successful probe said; returns true if that changed.
    pub fn set_probe_draining(&self, draining: bool) -> bool {
        self.probe_draining.swap(draining, Ordering::AcqRel) != draining
    }

    pub fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::Release);
    }

    /// Marks the backend down and records why; returns true if it was up before.
    pub fn mark_down(&self, why: String) -> bool {
        self.set_last_error(why);
        self.up.swap(false, Ordering::AcqRel)
    }

    /// Marks the backend up; returns true if it was down before.
    pub fn mark_up(&self) -> bool {
        self.probe_failures.store(0, Ordering::Release);
        !self.up.swap(true, Ordering::AcqRel)
    }

    pub fn set_last_error(&self, why: String) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(why);
        }
    }

    pub fn stats(&self) -> BackendStats {
        let up = self.is_up();
        let draining = self.is_draining();
        BackendStats {
            route: self.route.clone(),
            addr: self.authority.to_string(),
            status: match (up, draining) {
                (false, _) => BackendStatus::Down,
                (true, true) => BackendStatus::Draining,
                (true, false) => BackendStatus::Up,
            },
            draining,
            outstanding: self.outstanding.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// The current backend list; replaced as a whole, read as a cheap snapshot.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    list: RwLock<Arc<[Arc<BackendState>]>>,
}

impl Registry {
    pub fn snapshot(&self) -> Arc<[Arc<BackendState>]> {
        match self.list.read() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Installs `targets`, keeping the state (counters, draining, up/down) of every backend
    /// whose route and address did not change, so a membership refresh loses nothing.
    pub fn replace(&self, targets: Vec<Target>) {
        self.update(|old| {
            targets
                .into_iter()
                .map(|t| {
                    old.iter()
                        .find(|b| {
                            b.route == t.route
                                && b.authority == t.authority
                                && b.health_uri == t.health_uri
                        })
                        .cloned()
                        .unwrap_or_else(|| Arc::new(BackendState::new(t)))
                })
                .collect()
        });
    }

    /// Adds `target`, or replaces the backend with its route if its address changed.
    pub fn upsert(&self, target: Target) {
        self.update(|old| {
            let mut list: Vec<Arc<BackendState>> = old.to_vec();
            match list.iter().position(|b| b.route == target.route) {
                Some(i)
                    if list[i].authority == target.authority
                        && list[i].health_uri == target.health_uri => {}
                Some(i) => list[i] = Arc::new(BackendState::new(target)),
                None => list.push(Arc::new(BackendState::new(target))),
            }
            list
        });
    }

    /// Removes the backend with `route`; returns whether there was one.
    pub fn remove(&self, route: &str) -> bool {
        let mut found = false;
        self.update(|old| {
            found = old.iter().any(|b| b.route == route);
            old.iter().filter(|b| b.route != route).cloned().collect()
        });
        found
    }

    /// Read-modify-write under the write lock, so concurrent membership events do not undo
    /// each other.
    fn update(&self, change: impl FnOnce(&[Arc<BackendState>]) -> Vec<Arc<BackendState>>) {
        let mut slot = match self.list.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        let new = change(&slot);
        *slot = new.into();
    }

    pub fn find(&self, route: &str) -> Option<Arc<BackendState>> {
        self.snapshot().iter().find(|b| b.route == route).cloned()
    }
}
