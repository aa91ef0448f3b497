//! The per-name slots of one node's deployed set.
use super::entry::{Entry, Generation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one node runs for one name, and what it would roll back to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub current: Entry,
    pub previous: Option<Entry>,
}

/// The node's deployed set. The runtime persists it (after every `Action::Apply`) and hands
/// it back on restart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    slots: BTreeMap<String, Slot>,
}

impl Catalog {
    pub fn from_slots(slots: impl IntoIterator<Item = Slot>) -> Self {
        Catalog {
            slots: slots
                .into_iter()
                .map(|s| (s.current.name.clone(), s))
                .collect(),
        }
    }
    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }
    pub fn current(&self, name: &str) -> Option<&Entry> {
        self.slots.get(name).map(|s| &s.current)
    }
    /// Generation of the current entry (0 = never deployed here).
    pub fn generation(&self, name: &str) -> Generation {
        self.current(name).map_or(0, |e| e.generation)
    }
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.values()
    }
    /// Current entries, tombstones included (what gossip carries).
    pub fn currents(&self) -> Vec<Entry> {
        self.slots.values().map(|s| s.current.clone()).collect()
    }
    /// True if `e` is ahead of what this node runs for its name.
    pub fn is_newer(&self, e: &Entry) -> bool {
        self.current(&e.name)
            .is_none_or(|c| e.order(c) == std::cmp::Ordering::Greater)
    }
    /// Makes `e` current; the replaced entry becomes previous. Returns the new slot.
    pub(crate) fn install(&mut self, e: Entry) -> Slot {
        let previous = self.slots.remove(&e.name).map(|s| s.current);
        let slot = Slot {
            current: e,
            previous,
        };
        self.slots.insert(slot.current.name.clone(), slot.clone());
        slot
    }
}
