//! Read-only cluster facts offered to plugins (`host.local-member`, `host.members`,
//! `host.active-sessions`). The node keeps a [`SharedFacts`] up to date; tests use it too.
use shoal_cluster::Member;
use std::sync::{Arc, RwLock};

/// A member as plugins see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberFact {
    /// 32 hex digits.
    pub id: String,
    pub name: String,
    pub address: String,
    pub domain: String,
}

impl From<&Member> for MemberFact {
    fn from(m: &Member) -> Self {
        MemberFact {
            id: m.id.to_hex(),
            name: m.name.clone(),
            address: m.addr.to_string(),
            domain: m.domain.clone(),
        }
    }
}

pub trait ClusterFacts: Send + Sync {
    fn local_member(&self) -> MemberFact;
    /// The other members of the current view.
    fn members(&self) -> Vec<MemberFact>;
    fn active_sessions(&self) -> u64;
}

/// Facts held in memory and updated by the node as the view changes.
#[derive(Default)]
pub struct SharedFacts {
    inner: RwLock<(MemberFact, Vec<MemberFact>, u64)>,
}

impl SharedFacts {
    pub fn new(local: MemberFact) -> Arc<SharedFacts> {
        Arc::new(SharedFacts {
            inner: RwLock::new((local, Vec::new(), 0)),
        })
    }
    /// The local member, once the channel has started (plugins may load before).
    pub fn set_local(&self, local: MemberFact) {
        if let Ok(mut g) = self.inner.write() {
            g.0 = local;
        }
    }
    pub fn set_members(&self, members: Vec<MemberFact>) {
        if let Ok(mut g) = self.inner.write() {
            g.1 = members;
        }
    }
    pub fn set_active_sessions(&self, n: u64) {
        if let Ok(mut g) = self.inner.write() {
            g.2 = n;
        }
    }
}

impl ClusterFacts for SharedFacts {
    fn local_member(&self) -> MemberFact {
        self.inner.read().map(|g| g.0.clone()).unwrap_or_default()
    }
    fn members(&self) -> Vec<MemberFact> {
        self.inner.read().map(|g| g.1.clone()).unwrap_or_default()
    }
    fn active_sessions(&self) -> u64 {
        self.inner.read().map(|g| g.2).unwrap_or_default()
    }
}
