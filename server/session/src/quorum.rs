//! Split-brain protection: does this node see a majority of the cluster's expected members?
//! Sans-io: the runtime feeds it membership changes and asks [`Quorum::status`]; it knows no
//! clock, no socket and no session.
//!
//! Expected members:
//! - the static members list (`[cluster.membership] members`), when there is one, this node
//!   counted once whether it is listed or not; a member seen that is not on the list joins
//!   the expected set (a scale-up);
//! - else `expected_members = N` (`[cluster.membership]`): N slots, filled by the members
//!   seen (by address) as they appear;
//! - else the cluster's size is unknown and nothing is enforced: [`QuorumStatus::enforced`]
//!   is false and every node serves (as before split-brain protection existed).
//!
//! Membership changes that are not partitions adjust it: a member that left gracefully (it
//! said goodbye: a drain, a scale-down, a stop) is no longer expected, until it comes back;
//! a member that vanished (failure detector: crash, timeout, partition) stays expected. So
//! a node cut off from the others by a partition, and a node whose peers crashed, both lose
//! the majority; a cluster scaled down one goodbye at a time keeps it.
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// What an expected member is, as far as this node knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// In the view now.
    Live,
    /// Expected but not in the view: never seen yet, crashed, or on the other side of a
    /// partition.
    Missing,
    /// Left gracefully: not expected until it is seen again.
    Left,
}

/// This node's view of the expected members.
#[derive(Clone, Debug)]
pub struct Quorum {
    /// This node's receiver address (always live, always expected).
    local: SocketAddr,
    /// Every other member known by address.
    members: BTreeMap<SocketAddr, Seen>,
    /// `expected_members` slots not yet filled by a member seen (no static list).
    unnamed: usize,
    /// Neither a static list nor `expected_members`: nothing to enforce.
    unknown: bool,
}

/// The answer of [`Quorum::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    /// Members in the view, this node included.
    pub seen: usize,
    /// Members expected, this node included.
    pub expected: usize,
    /// Members needed for a majority: `expected / 2 + 1`.
    pub needed: usize,
    /// The expected count is known (a static list or `expected_members`); when false,
    /// [`Self::has_majority`] is always true.
    pub enforced: bool,
}

impl QuorumStatus {
    /// This node sees a majority of the expected members (or nothing is enforced).
    pub fn has_majority(&self) -> bool {
        !self.enforced || self.seen >= self.needed
    }
}

impl fmt::Display for QuorumStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sees {} of {} expected members, needs {} for a majority",
            self.seen, self.expected, self.needed
        )
    }
}

impl Quorum {
    /// `static_members`: the static list (may include `local`); `expected_members`: the
    /// setting used when there is no static list (`None`: only members seen count).
    pub fn new(
        local: SocketAddr,
        static_members: &[SocketAddr],
        expected_members: Option<usize>,
    ) -> Quorum {
        let members: BTreeMap<SocketAddr, Seen> = static_members
            .iter()
            .filter(|a| **a != local)
            .map(|a| (*a, Seen::Missing))
            .collect();
        let unnamed = if static_members.is_empty() {
            expected_members.unwrap_or(1).saturating_sub(1)
        } else {
            0
        };
        Quorum {
            local,
            members,
            unnamed,
            unknown: static_members.is_empty() && expected_members.is_none(),
        }
    }

    /// A member appeared in the view (joined, rejoined after a partition or a goodbye).
    pub fn added(&mut self, addr: SocketAddr) {
        if addr == self.local {
            return;
        }
        if !self.members.contains_key(&addr) && self.unnamed > 0 {
            // It fills one of the `expected_members` slots.
            self.unnamed -= 1;
        }
        self.members.insert(addr, Seen::Live);
    }

    /// A member left the view: `graceful` when it said goodbye (it is then no longer
    /// expected), else it vanished (still expected).
    pub fn removed(&mut self, addr: SocketAddr, graceful: bool) {
        if addr == self.local {
            return;
        }
        let now = if graceful { Seen::Left } else { Seen::Missing };
        self.members.insert(addr, now);
    }

    /// [`Self::status`] with `live` (the members in the channel's view right now) as the
    /// members seen: the view changes before the events that feed this reach it, and a
    /// request must not be acknowledged by a node that already lost the others.
    pub fn status_with_live(&self, live: impl Iterator<Item = SocketAddr>) -> QuorumStatus {
        let mut s = self.status();
        let seen = 1 + live
            .filter(|a| *a != self.local && self.members.get(a) != Some(&Seen::Left))
            .count();
        s.seen = seen;
        s.expected = s.expected.max(seen);
        s.needed = s.expected / 2 + 1;
        s
    }

    pub fn status(&self) -> QuorumStatus {
        let count = |s: Seen| self.members.values().filter(|v| **v == s).count();
        let seen = 1 + count(Seen::Live);
        let expected = seen + count(Seen::Missing) + self.unnamed;
        QuorumStatus {
            seen,
            expected,
            needed: expected / 2 + 1,
            enforced: !self.unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 4000))
    }

    fn three() -> Quorum {
        let mut q = Quorum::new(addr(1), &[addr(1), addr(2), addr(3)], None);
        q.added(addr(2));
        q.added(addr(3));
        q
    }

    #[test]
    fn a_full_static_cluster_has_a_majority_and_a_fresh_node_alone_has_not() {
        assert!(three().status().has_majority());
        let alone = Quorum::new(addr(1), &[addr(1), addr(2), addr(3)], None);
        let s = alone.status();
        assert_eq!((s.seen, s.expected, s.needed), (1, 3, 2));
        assert!(!s.has_majority());
        assert_eq!(
            s.to_string(),
            "sees 1 of 3 expected members, needs 2 for a majority"
        );
    }

    #[test]
    fn a_crash_keeps_the_member_expected_a_goodbye_does_not() {
        let mut q = three();
        q.removed(addr(3), false);
        assert_eq!(q.status().expected, 3);
        assert!(q.status().has_majority(), "2 of 3");
        q.removed(addr(2), false);
        assert!(
            !q.status().has_majority(),
            "1 of 3: both crashed or cut off"
        );

        // A scale-down: both others drain and say goodbye; the last node keeps serving.
        let mut q = three();
        q.removed(addr(3), true);
        q.removed(addr(2), true);
        let s = q.status();
        assert_eq!((s.seen, s.expected), (1, 1));
        assert!(s.has_majority());
    }

    #[test]
    fn a_partition_loses_the_majority_on_the_minority_side_only_and_a_heal_restores_it() {
        // 5 nodes split 2 | 3, seen from each side.
        let all: Vec<SocketAddr> = (1..=5).map(addr).collect();
        let mut minority = Quorum::new(addr(1), &all, None);
        let mut majority = Quorum::new(addr(3), &all, None);
        for a in &all {
            minority.added(*a);
            majority.added(*a);
        }
        for a in [3, 4, 5] {
            minority.removed(addr(a), false);
        }
        for a in [1, 2] {
            majority.removed(addr(a), false);
        }
        assert!(!minority.status().has_majority(), "{}", minority.status());
        assert!(majority.status().has_majority(), "{}", majority.status());
        for a in [3, 4, 5] {
            minority.added(addr(a));
        }
        assert!(minority.status().has_majority());
    }

    #[test]
    fn a_member_that_left_is_expected_again_once_it_rejoins() {
        let mut q = three();
        q.removed(addr(2), true);
        q.added(addr(2));
        q.removed(addr(2), false);
        assert_eq!(q.status().expected, 3);
        assert!(q.status().has_majority());
        q.removed(addr(3), false);
        assert!(!q.status().has_majority());
    }

    #[test]
    fn the_live_view_overrides_what_was_seen() {
        let q = three();
        // The channel dropped both others; the events have not arrived yet.
        let s = q.status_with_live(std::iter::empty());
        assert_eq!((s.seen, s.expected), (1, 3));
        assert!(!s.has_majority());
        let s = q.status_with_live([addr(2)].into_iter());
        assert!(s.has_majority());
        // A member in the view the events have not announced yet counts too.
        let q = Quorum::new(addr(1), &[addr(1), addr(2), addr(3)], None);
        assert!(q.status_with_live([addr(2)].into_iter()).has_majority());
    }

    #[test]
    fn expected_members_without_a_static_list_fills_its_slots_by_address() {
        let mut q = Quorum::new(addr(1), &[], Some(3));
        assert!(!q.status().has_majority(), "alone of 3");
        q.added(addr(7));
        let s = q.status();
        assert_eq!((s.seen, s.expected), (2, 3));
        assert!(s.has_majority());
        // The same member again does not fill another slot.
        q.removed(addr(7), false);
        q.added(addr(7));
        assert_eq!(q.status().expected, 3);
        // A scale-up beyond the setting raises what is expected.
        q.added(addr(8));
        q.added(addr(9));
        assert_eq!(q.status().expected, 4);
    }

    #[test]
    fn without_a_list_or_a_setting_nothing_is_enforced() {
        let mut q = Quorum::new(addr(1), &[], None);
        q.added(addr(2));
        q.added(addr(3));
        q.removed(addr(2), false);
        q.removed(addr(3), false);
        let s = q.status();
        assert_eq!((s.seen, s.expected, s.enforced), (1, 3, false));
        assert!(
            s.has_majority(),
            "the cluster's size is unknown: never partitioned"
        );
    }

    #[test]
    fn random_histories_of_a_static_cluster_match_a_plain_count() {
        // Seeded: the same sequences every run. The model: expected = n minus those whose
        // last event was a goodbye; seen = 1 + those whose last event was a join.
        let mut rng = StdRng::seed_from_u64(12);
        for _ in 0..200 {
            let n: u8 = rng.gen_range(1..8);
            let all: Vec<SocketAddr> = (1..=n).map(addr).collect();
            let mut q = Quorum::new(addr(1), &all, None);
            let mut last = vec![Seen::Missing; n as usize];
            last[0] = Seen::Live;
            for _ in 0..50 {
                let i = rng.gen_range(0..n) as usize;
                match rng.gen_range(0..3) {
                    0 => {
                        q.added(all[i]);
                        last[i] = Seen::Live;
                    }
                    1 => {
                        q.removed(all[i], false);
                        if i != 0 {
                            last[i] = Seen::Missing;
                        }
                    }
                    _ => {
                        q.removed(all[i], true);
                        if i != 0 {
                            last[i] = Seen::Left;
                        }
                    }
                }
                let seen = last.iter().filter(|s| **s == Seen::Live).count();
                let expected = last.iter().filter(|s| **s != Seen::Left).count();
                let s = q.status();
                assert_eq!((s.seen, s.expected), (seen, expected), "{last:?}");
                assert_eq!(s.has_majority(), seen * 2 > expected);
            }
        }
    }
}
