//! What the channel hands out: send outcomes and reports, membership events. Plain data,
//! made by the driver and read by the application; this file imports no other module of the
//! crate.
use shoal_cluster::{DisappearReason, Member, MemberId, MsgId};
use std::fmt;

/// Outcome of a send for one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Asynchronous send admitted to the MessageDispatch queue (no per-message outcome asked).
    Queued,
    /// Written to the connection (no ack asked).
    Delivered,
    /// The receiver acknowledged receipt (use_ack).
    Acked,
    /// The receiver acknowledged after processing (synchronized_ack).
    Processed,
    Failed(String),
}

/// Per-destination outcomes of one send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReport {
    pub id: Option<MsgId>,
    /// Per destination, in the order given. A failure's reason names the member and address.
    pub results: Vec<(MemberId, Outcome)>,
}

impl SendReport {
    /// True when no destination failed.
    pub fn ok(&self) -> bool {
        !self
            .results
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Failed(_)))
    }
    /// The members whose send failed, with the reason.
    pub fn failures(&self) -> Vec<(MemberId, &str)> {
        self.results
            .iter()
            .filter_map(|(m, o)| match o {
                Outcome::Failed(r) => Some((*m, r.as_str())),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures();
        if failed.is_empty() {
            return write!(f, "sent to {} member(s)", self.results.len());
        }
        write!(
            f,
            "{} of {} destination(s) failed:",
            failed.len(),
            self.results.len()
        )?;
        for (_, r) in failed {
            write!(f, " {r};")?;
        }
        Ok(())
    }
}

/// Membership changes, as broadcast to [`Channel::subscribe`]rs.
#[derive(Clone, Debug)]
pub enum MembershipEvent {
    Added(Member),
    Disappeared {
        member: Member,
        reason: DisappearReason,
    },
    Suspected {
        member: Member,
        reason: String,
    },
}
