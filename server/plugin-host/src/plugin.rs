//! A loaded plugin: its current version, operator state, health and failure counts, and
//! how its failure policy turns a failed call into an answer.
use crate::failure_log::{self, FailureLog, Verdict};
use crate::generation::Generation;
use crate::metrics::PluginMetrics;
use crate::types::{FailureCounts, FailurePolicy, PluginState};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    Trap,
    Timeout,
    Memory,
    BadOutput,
    Instantiation,
    Busy,
}

impl FailureKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "time limit",
            FailureKind::Memory => "memory limit",
            FailureKind::BadOutput => "bad output",
            FailureKind::Instantiation => "instantiation",
            FailureKind::Busy => "all instances busy",
        }
    }
}

/// How a call that did not run to a good result is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// As if the plugin were not there.
    Skip,
    /// The safe refusal of the extension point (503, drop with error, veto).
    Closed,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    memory: AtomicU64,
    bad_output: AtomicU64,
    instantiation: AtomicU64,
    busy: AtomicU64,
    skipped: AtomicU64,
    /// Valve calls the plugin itself answered (`respond`): a valve answering every call is
    /// an application, and valves placed after it never run.
    responded: AtomicU64,
}

struct Control {
    enabled: bool,
    crash_loop: Option<String>,
    policy: FailurePolicy,
    consecutive: u32,
    backoff_until: Option<Instant>,
    last_error: Option<String>,
    /// Identical failures are logged once per window, with a count (`failure_log.rs`).
    log: FailureLog,
}

pub(crate) struct Plugin {
    pub name: String,
    pub metrics: Arc<PluginMetrics>,
    pub current: RwLock<Arc<Generation>>,
    control: Mutex<Control>,
    /// Fast path: false while enabled and not backing off, so a call checks one atomic.
    gated: AtomicBool,
    /// Consecutive failures, read without the lock on every successful call.
    failing: AtomicU32,
    counters: Counters,
}

impl Plugin {
    pub(crate) fn new(
        name: &str,
        metrics: Arc<PluginMetrics>,
        version: Generation,
        policy: FailurePolicy,
    ) -> Plugin {
        Plugin {
            name: name.to_string(),
            metrics,
            current: RwLock::new(Arc::new(version)),
            control: Mutex::new(Control {
                enabled: true,
                crash_loop: None,
                policy,
                consecutive: 0,
                backoff_until: None,
                last_error: None,
                log: FailureLog::default(),
            }),
            gated: AtomicBool::new(false),
            failing: AtomicU32::new(0),
            counters: Counters::default(),
        }
    }

    pub(crate) fn generation(&self) -> Option<Arc<Generation>> {
        self.current.read().ok().map(|v| v.clone())
    }

    /// `Some(answer)` when the call must not run now (disabled, crash loop, backoff).
    pub(crate) fn gate(&self) -> Option<Answer> {
        if !self.gated.load(Ordering::Acquire) {
            return None;
        }
        let mut c = self.control.lock().ok()?;
        let answer = if !c.enabled || c.crash_loop.is_some() {
            Some(Answer::Skip)
        } else if c.backoff_until.is_some_and(|t| Instant::now() < t) {
            Some(Answer::Closed)
        } else {
            c.backoff_until = None;
            self.gated.store(false, Ordering::Release);
            None
        };
        if answer.is_some() {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    pub(crate) fn succeeded(&self) {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) != 0 {
            self.failing.store(0, Ordering::Relaxed);
            if let Ok(mut c) = self.control.lock() {
                c.consecutive = 0;
            }
        }
    }

    /// Counts and logs a failure, applies the policy, and says how to answer the call.
    pub(crate) fn failed(&self, generation: u64, kind: FailureKind, reason: &str) -> Answer {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let counter = match kind {
            FailureKind::Trap => &self.counters.traps,
            FailureKind::Timeout => &self.counters.timeouts,
            FailureKind::Memory => &self.counters.memory,
            FailureKind::BadOutput => &self.counters.bad_output,
            FailureKind::Instantiation => &self.counters.instantiation,
            FailureKind::Busy => &self.counters.busy,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let Ok(mut c) = self.control.lock() else {
            return Answer::Closed;
        };
        c.last_error = Some(format!("{}: {reason}", kind.as_str()));
        let key = failure_log::key(generation, kind.as_str(), reason);
        if let Verdict::Log { repeated } = c.log.admit(&key, Instant::now()) {
            let window = failure_log::WINDOW.as_secs();
            let more = match repeated {
                0 => String::new(),
                n => format!(" ({n} more failures were not logged: identical ones are logged once per {window} s)"),
            };
            tracing::warn!(plugin = %self.name, generation, failure = kind.as_str(), policy = ?c.policy, repeated, "plugin call failed: {reason}{more}");
        }
        if kind == FailureKind::Busy {
            // Overload is not the plugin's fault: no backoff, no crash-loop accounting.
            return match c.policy {
                FailurePolicy::FailOpen => Answer::Skip,
                _ => Answer::Closed,
            };
        }
        c.consecutive += 1;
        self.failing.store(c.consecutive, Ordering::Relaxed);
        match c.policy.clone() {
            FailurePolicy::FailOpen => Answer::Skip,
            FailurePolicy::FailClosed => Answer::Closed,
            FailurePolicy::Reload {
                backoff,
                max_restarts,
            } => {
                if c.consecutive > max_restarts {
                    let why = format!(
                        "{} consecutive failures, last: {} ({reason})",
                        c.consecutive,
                        kind.as_str()
                    );
                    tracing::error!(plugin = %self.name, generation, "plugin disabled after a crash loop: {why}");
                    c.crash_loop = Some(why);
                } else {
                    let factor = 1u32 << (c.consecutive - 1).min(16);
                    c.backoff_until =
                        Some(Instant::now() + backoff.saturating_mul(factor).min(MAX_BACKOFF));
                }
                self.gated.store(true, Ordering::Release);
                Answer::Closed
            }
        }
    }

    pub(crate) fn set_enabled(&self, enabled: bool) {
        if let Ok(mut c) = self.control.lock() {
            c.enabled = enabled;
            if enabled {
                c.crash_loop = None;
                c.backoff_until = None;
                c.consecutive = 0;
                self.failing.store(0, Ordering::Relaxed);
            }
            self.gated.store(!enabled, Ordering::Release);
        }
    }

    pub(crate) fn set_policy(&self, policy: FailurePolicy) {
        if let Ok(mut c) = self.control.lock() {
            c.policy = policy;
        }
    }

    /// Operator state, policy and last error, for listings.
    pub(crate) fn status(&self) -> (PluginState, FailurePolicy, Option<String>) {
        let Ok(c) = self.control.lock() else {
            return (PluginState::Disabled, FailurePolicy::default(), None);
        };
        let state = match (&c.crash_loop, c.enabled) {
            (Some(why), _) => PluginState::CrashLoop(why.clone()),
            (None, true) => PluginState::Enabled,
            (None, false) => PluginState::Disabled,
        };
        (state, c.policy.clone(), c.last_error.clone())
    }

    /// Asked on every request (`PluginRegistry::enabled`): reads the two flags without
    /// cloning the status (policy, last error) that `status` returns.
    pub(crate) fn is_enabled(&self) -> bool {
        self.control
            .lock()
            .is_ok_and(|c| c.enabled && c.crash_loop.is_none())
    }

    /// A valve call answered by the plugin itself (not by its failure policy).
    pub(crate) fn count_response(&self) {
        self.counters.responded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn responded(&self) -> u64 {
        self.counters.responded.load(Ordering::Relaxed)
    }

    pub(crate) fn counts(&self) -> (u64, FailureCounts) {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let c = &self.counters;
        let failures = FailureCounts {
            traps: n(&c.traps),
            timeouts: n(&c.timeouts),
            memory: n(&c.memory),
            bad_output: n(&c.bad_output),
            instantiation: n(&c.instantiation),
            busy: n(&c.busy),
            skipped: n(&c.skipped),
        };
        (n(&c.calls), failures)
    }
}
