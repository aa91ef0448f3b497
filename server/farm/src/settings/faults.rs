//! `[farm.faults]`: fault injection for the multi-process fault tests
//! (`tests/tests/farm_faults.rs`), off by default; never set it on a production node. Each
//! knob breaks one thing at one place, so a test reaches a failure through the real code
//! path (the receiver's size-and-sha256 check, the coordinator's commit window) instead of
//! by timing.
use crate::{DeployId, Message, NodeId, Slot};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FarmFaults {
    /// Member names: the first chunk (offset 0) of every artifact this node sends to one of
    /// them has one byte flipped on the way out, as a bad link or disk would. The receiver
    /// writes it, and its size-and-sha256 check must refuse the artifact.
    pub corrupt_chunks_to: Vec<String>,
    /// Holds each rollout coordinated here this long at `hold_at`, a point of its commit
    /// window, after publishing the view and logging `[farm.faults] holding rollout <id>
    /// at <point>`, so a test kills the coordinator there on a condition, not on timing.
    pub hold_activate_ms: u64,
    /// Where `hold_activate_ms` holds (default: before the first Activate).
    pub hold_at: HoldAt,
}

/// A named point of the coordinator's commit window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldAt {
    /// Every member staged; no Activate has left yet.
    #[default]
    BeforeFirstActivate,
    /// The first Activate left (to the first member by name), the others not yet.
    AfterFirstActivate,
    /// Every other member activated; this node's own copy is not live yet.
    BeforeOwnActivation,
}

impl HoldAt {
    pub fn name(self) -> &'static str {
        match self {
            HoldAt::BeforeFirstActivate => "before-first-activate",
            HoldAt::AfterFirstActivate => "after-first-activate",
            HoldAt::BeforeOwnActivation => "before-own-activation",
        }
    }
}

impl FarmFaults {
    pub fn is_off(&self) -> bool {
        *self == FarmFaults::default()
    }

    /// Mangles `msg` on its way to `to` if a knob says so.
    pub fn outgoing(&self, to: &NodeId, msg: &mut Message) {
        if let Message::Chunk { offset, bytes, .. } = msg {
            if *offset == 0 && self.corrupt_chunks_to.contains(&to.0) {
                if let Some(b) = bytes.first_mut() {
                    *b ^= 0xff;
                    tracing::warn!(%to, "farm: [farm.faults] corrupted the first chunk sent to {to}");
                }
            }
        }
    }

    /// How long to hold before sending `msg` to a member: at the first or the second
    /// Activate of a rollout (`sent` counts them per rollout).
    pub fn hold_send(
        &self,
        msg: &Message,
        sent: &mut HashMap<DeployId, u32>,
    ) -> Option<(DeployId, Duration)> {
        let Message::Activate { deploy, .. } = msg else {
            return None;
        };
        if self.hold_activate_ms == 0 {
            return None;
        }
        let n = sent.entry(deploy.clone()).or_insert(0);
        *n += 1;
        let at = match self.hold_at {
            HoldAt::BeforeFirstActivate => 1,
            HoldAt::AfterFirstActivate => 2,
            HoldAt::BeforeOwnActivation => return None,
        };
        (*n == at).then(|| (deploy.clone(), Duration::from_millis(self.hold_activate_ms)))
    }

    /// How long to hold before this node (`me`) applies `slot`: the first time it makes a
    /// rollout it coordinated live.
    pub fn hold_apply(
        &self,
        me: &NodeId,
        slot: &Slot,
        sent: &mut HashMap<DeployId, u32>,
    ) -> Option<(DeployId, Duration)> {
        let deploy = &slot.current.deploy;
        if self.hold_activate_ms == 0
            || self.hold_at != HoldAt::BeforeOwnActivation
            || deploy.origin != *me
            || sent
                .insert(deploy.clone(), u32::MAX)
                .is_some_and(|n| n == u32::MAX)
        {
            return None;
        }
        Some((deploy.clone(), Duration::from_millis(self.hold_activate_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Target};

    fn activate(seq: u64) -> Message {
        let deploy = DeployId {
            origin: NodeId::new("a"),
            incarnation: 1,
            seq,
        };
        Message::Activate {
            entry: Entry {
                name: "x".into(),
                generation: 1,
                deploy: deploy.clone(),
                target: Target::Removed,
            },
            deploy,
        }
    }

    #[test]
    fn hold_at_names_a_point_and_an_unknown_one_is_refused() {
        let f: FarmFaults =
            toml::from_str("hold_activate_ms = 5\nhold_at = \"after-first-activate\"\n")
                .expect("parses");
        assert_eq!(f.hold_at, HoldAt::AfterFirstActivate);
        let e = toml::from_str::<FarmFaults>("hold_at = \"later\"\n")
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("hold_at") && e.contains("before-own-activation"),
            "{e}"
        );
    }

    #[test]
    fn each_point_holds_once_per_rollout_where_it_says() {
        let mut sent = HashMap::new();
        let mut f = FarmFaults {
            hold_activate_ms: 5,
            ..FarmFaults::default()
        };
        assert!(f.hold_send(&activate(1), &mut sent).is_some(), "first");
        assert!(f.hold_send(&activate(1), &mut sent).is_none(), "once");
        f.hold_at = HoldAt::AfterFirstActivate;
        assert!(
            f.hold_send(&activate(2), &mut sent).is_none(),
            "first leaves"
        );
        assert!(
            f.hold_send(&activate(2), &mut sent).is_some(),
            "second held"
        );
        f.hold_at = HoldAt::BeforeOwnActivation;
        assert!(f.hold_send(&activate(3), &mut sent).is_none());
        let Message::Activate { entry, .. } = activate(3) else {
            unreachable!()
        };
        let slot = Slot {
            current: entry,
            previous: None,
        };
        let me = NodeId::new("a");
        assert!(
            f.hold_apply(&me, &slot, &mut sent).is_some(),
            "own apply held"
        );
        assert!(f.hold_apply(&me, &slot, &mut sent).is_none(), "once");
        assert!(f
            .hold_apply(&NodeId::new("b"), &slot, &mut HashMap::new())
            .is_none());
    }
}
