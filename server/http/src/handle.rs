//! `SessionHandle`: a request's view of its session, put in the request extensions by the
//! SessionValve. The session is loaded lazily (a request that never asks never loads it);
//! changes are recorded as delta operations and applied to a working copy, then committed
//! once at the end of the request (ReplicationValve) through `SessionService::end_request`.
//!
//! A persistent context (`manager = "persistent"`) takes the same path through its
//! [`PersistentService`]: the first `get` begins the request on the core (which loads,
//! verifies or takes over the session, or answers `Missing`), `commit` ends it (the
//! compare-and-set save), and a request dropped in between is aborted ([`PersistReq`]'s
//! `Drop`), so its session's lock is released. A failure is kept ([`SessionHandle::take_failure`])
//! and answered by the SessionValve with its status and `Retry-After`.
use crate::error::HttpError;
use shoal_session::persistent::{PersistError, ReqId, Step};
use shoal_session::{
    AttrValue, DeltaOp, PersistentService, RequestEnd, Seen, Session, SessionError, SessionId,
    SessionService,
};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone)]
pub struct SessionHandle {
    service: Arc<SessionService>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Id and route the client sent (cookie or header), if well-formed.
    requested: Option<(SessionId, Option<String>)>,
    /// What the client's version token says it saw of that session (read-your-writes).
    seen: Option<Seen>,
    looked_up: bool,
    /// Working copy with this request's changes applied.
    session: Option<Session>,
    ops: Vec<DeltaOp>,
    created: bool,
    invalidated: bool,
    route_changed: bool,
    committed: bool,
    /// Persistent context: the request on the core, once begun.
    persist: Option<PersistReq>,
    /// Persistent context: the core served another id than the one asked for (takeover,
    /// or a moved id followed): the cookie is reissued.
    id_changed: bool,
    /// Persistent context: why the request cannot be served (answered by the SessionValve).
    failure: Option<PersistError>,
}

/// A request begun on a persistent core; aborted on drop unless it was ended.
struct PersistReq {
    svc: Arc<PersistentService>,
    req: ReqId,
    open: bool,
}

impl Drop for PersistReq {
    fn drop(&mut self) {
        if self.open {
            self.svc.abort(self.req);
        }
    }
}

impl SessionHandle {
    pub(crate) fn new(
        service: Arc<SessionService>,
        requested: Option<(SessionId, Option<String>)>,
        seen: Option<Seen>,
    ) -> Self {
        let state = State {
            requested,
            seen,
            ..State::default()
        };
        SessionHandle {
            service,
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn service(&self) -> &Arc<SessionService> {
        &self.service
    }

    /// The route the client asked for, if any (`<id>.<route>`).
    pub fn requested_route(&self) -> Option<String> {
        self.lock().requested.as_ref().and_then(|(_, r)| r.clone())
    }

    /// Servlet `getSession(create)`: true when the request now has a session. After
    /// `invalidate` the request has none (and does not get a new one).
    pub async fn get(&self, create: bool) -> bool {
        if let Some(p) = self.service.persistent().cloned() {
            return self.get_persistent(p, create).await;
        }
        let to_find = {
            let st = self.lock();
            if st.looked_up {
                None
            } else {
                st.requested.as_ref().map(|(id, _)| (id.clone(), st.seen))
            }
        };
        let found = match to_find {
            Some((id, seen)) => self.service.find_seen(&id, seen).await,
            None => None,
        };
        let mut st = self.lock();
        if !st.looked_up {
            st.looked_up = true;
            st.session = found;
        }
        if st.invalidated {
            return false;
        }
        if st.session.is_none() && create {
            st.session = Some(self.service.create());
            st.created = true;
        }
        st.session.is_some()
    }

    async fn get_persistent(&self, p: Arc<PersistentService>, create: bool) -> bool {
        let begin = {
            let mut st = self.lock();
            if st.looked_up {
                None
            } else {
                st.looked_up = true;
                let req = p.next_req();
                st.persist = Some(PersistReq {
                    svc: p.clone(),
                    req,
                    open: true,
                });
                let full = st
                    .requested
                    .as_ref()
                    .map(|(id, route)| id.with_route(route.as_deref().unwrap_or("")));
                Some((req, full))
            }
        };
        if let Some((req, full)) = begin {
            let step = p.begin(req, full.as_deref()).await;
            let mut st = self.lock();
            match step {
                Step::Serve(mut s) => {
                    st.id_changed = st.requested.as_ref().is_some_and(|(id, _)| *id != s.id);
                    // Served here: the cookie names this node (a takeover already did).
                    s.route = p.route().to_owned();
                    st.session = Some(s);
                }
                Step::Fail(e) => st.failure = Some(e),
                Step::Missing | Step::Done { .. } => {}
            }
        }
        let mut st = self.lock();
        if st.invalidated || st.failure.is_some() {
            return false;
        }
        if st.session.is_none() && create {
            let Some(req) = st.persist.as_ref().map(|r| r.req) else {
                return false;
            };
            match p.create(req) {
                Ok(mut s) => {
                    s.route = p.route().to_owned();
                    st.session = Some(s);
                    st.created = true;
                }
                Err(e) => {
                    st.failure = Some(e);
                    return false;
                }
            }
        }
        st.session.is_some()
    }

    /// Persistent context: why the request could not be served, once.
    pub(crate) fn take_failure(&self) -> Option<PersistError> {
        self.lock().failure.take()
    }

    /// The full id `<id>.<route>` of the loaded session.
    pub fn id(&self) -> Option<String> {
        self.lock()
            .session
            .as_ref()
            .map(|s| s.id.with_route(&s.route))
    }

    pub fn attribute(&self, name: &str) -> Option<AttrValue> {
        self.lock()
            .session
            .as_ref()
            .and_then(|s| s.attributes.get(name).cloned())
    }

    /// Names of the loaded session's attributes (empty without a session).
    pub fn attribute_names(&self) -> Vec<String> {
        self.lock()
            .session
            .as_ref()
            .map(|s| s.attributes.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// True when this request created the session.
    pub fn is_new(&self) -> bool {
        let st = self.lock();
        st.created && !st.invalidated
    }

    /// Records an attribute write; limits are checked now so the handler can answer 4xx.
    pub fn set_attribute(&self, name: &str, value: AttrValue) -> Result<(), SessionError> {
        let limits = self.service.config().limits.clone();
        let mut st = self.lock();
        let Some(s) = st.session.as_mut() else {
            return Err(SessionError::NotFound(
                "no session: call get(true) first".into(),
            ));
        };
        let op = DeltaOp::Set(name.to_owned(), value);
        s.check_ops(std::slice::from_ref(&op), &limits)?;
        s.apply_ops(std::slice::from_ref(&op));
        st.ops.push(op);
        Ok(())
    }

    pub fn remove_attribute(&self, name: &str) {
        self.record(DeltaOp::Remove(name.to_owned()));
    }

    pub fn set_max_inactive(&self, secs: u32) {
        self.record(DeltaOp::MaxInactive(secs));
    }

    pub fn set_principal(&self, principal: Option<String>) {
        self.record(DeltaOp::Principal(principal));
    }

    /// Moves the session to `route` (JvmRouteBinderValve) and has the cookie reissued; no
    /// change is recorded when the session already routes there (stale client cookie).
    pub fn change_route(&self, route: &str) {
        let current = self.lock().session.as_ref().map(|s| s.route.clone());
        let Some(current) = current else { return };
        if current != route {
            self.record(DeltaOp::Route(route.to_owned()));
        }
        self.lock().route_changed = true;
    }

    fn record(&self, op: DeltaOp) -> bool {
        let mut st = self.lock();
        let Some(s) = st.session.as_mut() else {
            return false;
        };
        s.apply_ops(std::slice::from_ref(&op));
        st.ops.push(op);
        true
    }

    pub fn invalidate(&self) {
        let mut st = self.lock();
        if st.session.is_some() {
            st.invalidated = true;
        }
    }

    /// `Some(full id)` when the response must (re)issue the cookie: new or re-routed session.
    pub fn cookie_to_set(&self) -> Option<String> {
        let st = self.lock();
        let s = st.session.as_ref()?;
        (!st.invalidated && (st.created || st.route_changed || st.id_changed))
            .then(|| s.id.with_route(&s.route))
    }

    /// Read-your-writes: the version token for the response, when the request read or
    /// changed a session that still exists (it names the version now held here, which
    /// includes this request's change once committed).
    pub fn version_token(&self) -> Option<String> {
        let id = {
            let st = self.lock();
            if st.invalidated || !st.committed {
                return None;
            }
            st.session.as_ref()?.id.clone()
        };
        let seen = self.service.seen(&id)?;
        self.service.issue_token(&id, &seen)
    }

    /// Commits the request's changes once; later calls do nothing. `replicate`: false for
    /// requests matched by the URL filter (see `RequestEnd::replicate`).
    pub async fn commit(&self, replicate: bool) -> Result<(), HttpError> {
        if self.service.persistent().is_some() {
            return self.commit_persistent(replicate).await;
        }
        let end = {
            let mut st = self.lock();
            if st.committed {
                return Ok(());
            }
            st.committed = true;
            let Some(s) = st.session.as_ref() else {
                return Ok(());
            };
            // A session made on a node cut off from the majority would be known only here.
            if st.created {
                self.service.partition_gate()?;
            }
            RequestEnd {
                id: Some(s.id.clone()),
                ops: std::mem::take(&mut st.ops),
                invalidate: st.invalidated,
                accessed: true,
                replicate,
            }
        };
        Ok(self.service.end_request(end).await?)
    }

    /// Ends the request on the persistent core: the compare-and-set save (or removal).
    async fn commit_persistent(&self, replicate: bool) -> Result<(), HttpError> {
        let (svc, req, end) = {
            let mut st = self.lock();
            if st.committed {
                return Ok(());
            }
            st.committed = true;
            if let Some(e) = st.failure.take() {
                return Err(HttpError::Persist(e));
            }
            let end = RequestEnd {
                id: st.session.as_ref().map(|s| s.id.clone()),
                ops: std::mem::take(&mut st.ops),
                invalidate: st.invalidated,
                accessed: st.session.is_some(),
                replicate,
            };
            let Some(pr) = st.persist.as_mut() else {
                return Ok(());
            };
            pr.open = false;
            (pr.svc.clone(), pr.req, end)
        };
        match svc.end(req, end).await {
            Step::Fail(e) => Err(HttpError::Persist(e)),
            _ => Ok(()),
        }
    }
}
