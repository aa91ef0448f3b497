//! `SessionHandle`: a request's view of its session, put in the request extensions by the
//! SessionValve. The session is loaded lazily (a request that never asks never loads it);
//! changes are recorded as delta operations and applied to a working copy, then committed
//! once at the end of the request (ReplicationValve) through `SessionService::end_request`.
use shoal_session::{
    AttrValue, DeltaOp, RequestEnd, Session, SessionError, SessionId, SessionService,
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
    looked_up: bool,
    /// Working copy with this request's changes applied.
    session: Option<Session>,
    ops: Vec<DeltaOp>,
    created: bool,
    invalidated: bool,
    route_changed: bool,
    committed: bool,
}

impl SessionHandle {
    pub(crate) fn new(
        service: Arc<SessionService>,
        requested: Option<(SessionId, Option<String>)>,
    ) -> Self {
        let state = State {
            requested,
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
        let to_find = {
            let st = self.lock();
            if st.looked_up {
                None
            } else {
                st.requested.as_ref().map(|(id, _)| id.clone())
            }
        };
        let found = match to_find {
            Some(id) => self.service.find(&id).await,
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
        (!st.invalidated && (st.created || st.route_changed)).then(|| s.id.with_route(&s.route))
    }

    /// Commits the request's changes once; later calls do nothing. `replicate`: false for
    /// requests matched by the URL filter (see `RequestEnd::replicate`).
    pub async fn commit(&self, replicate: bool) -> Result<(), SessionError> {
        let end = {
            let mut st = self.lock();
            if st.committed {
                return Ok(());
            }
            st.committed = true;
            let Some(s) = st.session.as_ref() else {
                return Ok(());
            };
            RequestEnd {
                id: Some(s.id.clone()),
                ops: std::mem::take(&mut st.ops),
                invalidate: st.invalidated,
                accessed: true,
                replicate,
            }
        };
        self.service.end_request(end).await
    }
}
