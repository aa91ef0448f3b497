//! [`SessionAccess`] over a request's [`SessionHandle`], the one way plugins (valves) and
//! applications (valve-world and `wasi:http`) reach a session. The session is looked up
//! (which may fetch it from a backup node) *before* the component runs, so no call blocks
//! inside the sandbox on the network; owned, so it can go with a `wasi:http` request into
//! its store.
use futures::FutureExt;
use shoal_http::SessionHandle;
use shoal_plugin_host::SessionAccess;
use shoal_session::AttrValue;

pub(crate) struct HandleAccess {
    pub(crate) handle: Option<SessionHandle>,
}

impl HandleAccess {
    /// Looks the request's session up (it may come from a backup node), then lends it.
    pub(crate) async fn looked_up(handle: Option<SessionHandle>) -> HandleAccess {
        if let Some(h) = &handle {
            h.get(false).await;
        }
        HandleAccess { handle }
    }
}

impl SessionAccess for HandleAccess {
    fn id(&self) -> Option<String> {
        self.handle.as_ref()?.id()
    }
    fn is_new(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| h.is_new())
    }
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        match self.handle.as_ref()?.attribute(name)? {
            AttrValue::Bytes(b) => Some(b),
            AttrValue::Json(s) => Some(s.into_bytes()),
        }
    }
    fn set(&mut self, name: &str, value: Vec<u8>) {
        if let Some(h) = &self.handle {
            if let Err(e) = h.set_attribute(name, AttrValue::Bytes(value)) {
                tracing::debug!("attribute {name} set by a component refused: {e}");
            }
        }
    }
    fn remove(&mut self, name: &str) {
        if let Some(h) = &self.handle {
            h.remove_attribute(name);
        }
    }
    fn attribute_names(&self) -> Vec<String> {
        self.handle
            .as_ref()
            .map(|h| h.attribute_names())
            .unwrap_or_default()
    }
    fn invalidate(&mut self) {
        if let Some(h) = &self.handle {
            h.invalidate();
        }
    }
    fn create(&mut self) -> String {
        let Some(h) = &self.handle else {
            return String::new();
        };
        // The lookup already happened, so `get(true)` completes without waiting.
        match h.get(true).now_or_never() {
            Some(true) => h.id().unwrap_or_default(),
            _ => String::new(),
        }
    }
}
