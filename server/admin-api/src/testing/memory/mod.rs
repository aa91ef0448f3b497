//! [`MemoryBackend`]: the in-memory twin of a node, a fake 3-node cluster that answers every
//! [`AdminBackend`] call and can be changed. Used by the router tests, the dev server
//! (`cargo run -p shoal-admin --example dev-server`) and the UI test.

mod backend;
mod data;
mod drain;
mod ops;

use std::{
    sync::{Mutex, MutexGuard},
    time::Instant,
};

use crate::{
    backend::{BackendError, BackendResult},
    dto::*,
    rules::EventLog,
};
use data::FakeContext;

/// A fake cluster held in memory. All changes are immediate and "applied" on all 3 nodes.
pub struct MemoryBackend {
    state: Mutex<State>,
    events: EventLog,
    /// Peer traffic grows with real time so that the UI's chart moves.
    started: Instant,
}

struct State {
    started_ms: u64,
    members: Vec<Member>,
    ready: bool,
    drain: Option<drain::FakeDrain>,
    contexts: Vec<FakeContext>,
    interceptors: Vec<Interceptor>,
    send_options: SendOptions,
    plugins: Vec<Plugin>,
    deployments: Vec<Deployment>,
    /// The version a rollback returns to, per name.
    previous_deployments: Vec<Deployment>,
    /// The last rollout of each name (the twin's rollouts end within the request).
    rollouts: Vec<Rollout>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn done<T: Send + 'static>(r: Result<T, BackendError>) -> BackendResult<'static, T> {
    Box::pin(std::future::ready(r))
}

impl MemoryBackend {
    /// A healthy, ready 3-node cluster (`node1` is local) with contexts `app` (delta, sync)
    /// and `shop` (backup, async), 71 sessions, 3 plugins and an interceptor stack.
    pub fn new() -> Self {
        let now = now_ms();
        let (interceptors, send_options) = data::channel();
        let state = State {
            started_ms: now - 600_000,
            members: data::members(now),
            ready: true,
            drain: None,
            contexts: data::contexts(now),
            interceptors,
            send_options,
            plugins: data::plugins(now),
            deployments: Vec::new(),
            previous_deployments: Vec::new(),
            rollouts: Vec::new(),
        };
        Self {
            state: Mutex::new(state),
            events: EventLog::new(),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes a member's state (as the failure detector would) and emits the event.
    pub fn set_member_state(
        &self,
        name: &str,
        state: MemberState,
        reason: &str,
    ) -> Result<(), BackendError> {
        let mut s = self.lock();
        let now = now_ms();
        let member = s
            .members
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or_else(|| BackendError::not_found("member", name))?;
        member.state = state;
        member.since_ms = now;
        member.since = rfc3339(now);
        member.reason = Some(reason.to_owned());
        let kind = match state {
            MemberState::Alive => EventKind::MemberAdded,
            MemberState::Suspect => EventKind::MemberSuspect,
            MemberState::Gone => EventKind::MemberGone,
        };
        self.emit(&mut s, kind, name, format!("{name} is {state:?}: {reason}"));
        Ok(())
    }

    /// Makes `/api/v1/ready` answer 503 (e.g. "state transfer running").
    pub fn set_ready(&self, ready: bool) {
        self.lock().ready = ready;
    }

    /// Records and broadcasts an event. Takes the state so that events are emitted while the
    /// change they describe is held (their order is the order of the changes).
    fn emit(&self, _: &mut State, kind: EventKind, subject: &str, message: String) {
        self.events.emit(kind, subject, message);
    }

    fn context_mut<'s>(s: &'s mut State, name: &str) -> Result<&'s mut FakeContext, BackendError> {
        let known: Vec<_> = s.contexts.iter().map(|c| c.context.name.clone()).collect();
        s.contexts
            .iter_mut()
            .find(|c| c.context.name == name)
            .ok_or_else(|| BackendError::NotFound {
                what: "context",
                name: name.to_owned(),
                hint: format!(" (known: {})", known.join(", ")),
            })
    }

    fn context_view(c: &FakeContext) -> Context {
        let mut context = c.context.clone();
        context.active_sessions = c.sessions.len() as u64;
        context
    }
}

impl MemoryBackend {
    fn plugin_op(
        &self,
        name: &str,
        verb: &str,
        f: impl FnOnce(&mut State, &mut Plugin) -> Result<(), BackendError>,
    ) -> BackendResult<'_, Plugin> {
        let mut s = self.lock();
        let Some(i) = s.plugins.iter().position(|p| p.name == name) else {
            return done(Err(BackendError::not_found("plugin", name)));
        };
        let mut plugin = s.plugins[i].clone();
        let r = f(&mut s, &mut plugin);
        if r.is_ok() {
            s.plugins[i] = plugin.clone();
            self.emit(
                &mut s,
                EventKind::Plugin,
                name,
                format!("plugin {name} {verb} on every node"),
            );
        }
        done(r.map(|()| plugin))
    }
}
