//! Coordinator: one agreed member for cluster-wide decisions (what Tomcat's
//! NonBlockingCoordinator elects). No messages: every node computes the same answer from the
//! same view — the live member with the lowest (incarnation, id), i.e. the oldest, which
//! stays coordinator until it leaves, so restarts of others never move the role.
use super::opts::Opts;
use crate::interceptor::Interceptor;
use crate::member::{Member, MemberId};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CoordinatorConfig {}

impl CoordinatorConfig {
    pub const KEYS: &'static [&'static str] = &[];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        Opts::new("Coordinator", o).finish(Self::KEYS)?;
        Ok(CoordinatorConfig {})
    }
}

#[derive(Default)]
pub struct Coordinator {
    pub config: CoordinatorConfig,
    local: Option<Member>,
    /// (incarnation, id) → member, so the first entry is the coordinator.
    view: BTreeMap<(u64, MemberId), Member>,
    /// How often the coordinator changed.
    pub changes: u64,
}

impl Coordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        Coordinator {
            config,
            ..Default::default()
        }
    }
    /// The agreed member, None until the node attached its local member.
    pub fn coordinator(&self) -> Option<&Member> {
        self.view.values().next()
    }
    pub fn is_coordinator(&self) -> bool {
        match (self.coordinator(), &self.local) {
            (Some(c), Some(l)) => c.id == l.id,
            _ => false,
        }
    }
    /// Current view, coordinator first.
    pub fn view(&self) -> Vec<&Member> {
        self.view.values().collect()
    }
    fn update(&mut self, f: impl FnOnce(&mut BTreeMap<(u64, MemberId), Member>)) {
        let before = self.coordinator().map(|m| m.id);
        f(&mut self.view);
        let after = self.coordinator().map(|m| m.id);
        if before != after {
            self.changes += 1;
            if let Some(m) = self.coordinator() {
                tracing::info!(coordinator = %m, "coordinator changed");
            }
        }
    }
}

impl Interceptor for Coordinator {
    fn name(&self) -> &str {
        "Coordinator"
    }
    fn attach(&mut self, local: &Member) {
        self.local = Some(local.clone());
        let m = local.clone();
        self.update(|v| {
            v.insert((m.incarnation, m.id), m);
        });
    }
    fn member_added(&mut self, _now: Instant, member: &Member) {
        let m = member.clone();
        self.update(|v| {
            v.insert((m.incarnation, m.id), m);
        });
    }
    fn member_disappeared(&mut self, _now: Instant, member: &Member) {
        let key = (member.incarnation, member.id);
        self.update(|v| {
            v.remove(&key);
        });
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("changes", self.changes),
            ("view_size", self.view.len() as u64),
        ]
    }
    fn describe(&self) -> Vec<(String, String)> {
        let c = self
            .coordinator()
            .map(|m| m.to_string())
            .unwrap_or_else(|| "(none yet)".into());
        vec![
            ("rule".into(), "lowest (incarnation, id)".into()),
            ("coordinator".into(), c),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
