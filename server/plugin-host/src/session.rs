//! The session a valve sees. The HTTP crate implements [`SessionAccess`] over its session
//! manager; [`MemorySession`] is the in-memory twin for tests.
//!
//! A valve call lends `&mut dyn SessionAccess` to the plugin for the duration of the call
//! only: [`lend`] puts a pointer to it in the store and takes it out before returning.
use std::collections::BTreeMap;

/// Lazy access to the request's session: nothing is created until `create` is called.
pub trait SessionAccess {
    /// The id of the request's valid session, if any.
    fn id(&self) -> Option<String>;
    /// True when the session was created during this request.
    fn is_new(&self) -> bool;
    fn get(&self, name: &str) -> Option<Vec<u8>>;
    fn set(&mut self, name: &str, value: Vec<u8>);
    fn remove(&mut self, name: &str);
    fn attribute_names(&self) -> Vec<String>;
    fn invalidate(&mut self);
    /// The session's id, creating the session if there is none.
    fn create(&mut self) -> String;
}

/// An in-memory session for tests and benches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemorySession {
    pub id: Option<String>,
    pub is_new: bool,
    pub attributes: BTreeMap<String, Vec<u8>>,
    /// Ids handed out by `create`: `mem-1`, `mem-2`, ...
    pub created: u32,
}

impl MemorySession {
    /// A request that carries no session.
    pub fn none() -> MemorySession {
        MemorySession::default()
    }
    /// A request that carries the existing session `id`.
    pub fn existing(id: &str) -> MemorySession {
        MemorySession {
            id: Some(id.to_string()),
            ..MemorySession::default()
        }
    }
}

impl SessionAccess for MemorySession {
    fn id(&self) -> Option<String> {
        self.id.clone()
    }
    fn is_new(&self) -> bool {
        self.is_new
    }
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.id.as_ref()?;
        self.attributes.get(name).cloned()
    }
    fn set(&mut self, name: &str, value: Vec<u8>) {
        if self.id.is_some() {
            self.attributes.insert(name.to_string(), value);
        }
    }
    fn remove(&mut self, name: &str) {
        self.attributes.remove(name);
    }
    fn attribute_names(&self) -> Vec<String> {
        self.attributes.keys().cloned().collect()
    }
    fn invalidate(&mut self) {
        self.id = None;
        self.is_new = false;
        self.attributes.clear();
    }
    fn create(&mut self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        self.created += 1;
        let id = format!("mem-{}", self.created);
        self.id = Some(id.clone());
        self.is_new = true;
        id
    }
}

/// Marker type of the WIT `session` resource: there is one session per call, held in
/// the store's [`SessionSlot`], so the resource carries no data.
pub struct SessionResource;

pub(crate) use slot::{lend, SessionSlot};

#[allow(unsafe_code)]
mod slot {
    //! Why `unsafe`: wasmtime stores need `'static` data, but the caller's session is a
    //! borrow for one call. The slot holds a lifetime-erased pointer to it that is set just
    //! before the (synchronous) call into the guest and cleared right after, on the same
    //! thread; host functions only dereference it while it is set, i.e. while the caller's
    //! `&mut` borrow is alive and not otherwise used. If the call unwinds, the store (owned
    //! by the caller of `lend`, taken out of its pool) is dropped without the pointer being
    //! read again.
    use super::SessionAccess;
    use std::ptr::NonNull;

    #[derive(Default)]
    pub(crate) struct SessionSlot(Option<NonNull<dyn SessionAccess + 'static>>);

    // SAFETY: the pointer is only set for the duration of a synchronous call on the thread
    // that owns the borrow, and the store is not sent elsewhere while it is set.
    unsafe impl Send for SessionSlot {}

    impl SessionSlot {
        /// Runs `f` on the lent session; `None` outside a valve call.
        pub(crate) fn with<R>(&mut self, f: impl FnOnce(&mut dyn SessionAccess) -> R) -> Option<R> {
            let ptr = self.0?;
            // SAFETY: see the module comment: set only while the `&mut` borrow is lent.
            let session = unsafe { &mut *ptr.as_ptr() };
            Some(f(session))
        }
    }

    /// Lends `session` to host functions through `slot_of(state)` while `call` runs.
    pub(crate) fn lend<S, R>(
        state: &mut S,
        slot_of: fn(&mut S) -> &mut SessionSlot,
        session: &mut dyn SessionAccess,
        call: impl FnOnce(&mut S) -> R,
    ) -> R {
        let ptr: NonNull<dyn SessionAccess + '_> = NonNull::from(session);
        // SAFETY: only the lifetime is erased; the pointer is cleared below before the
        // borrow it came from ends.
        let ptr: NonNull<dyn SessionAccess + 'static> = unsafe { std::mem::transmute(ptr) };
        slot_of(state).0 = Some(ptr);
        let result = call(state);
        slot_of(state).0 = None;
        result
    }
}
