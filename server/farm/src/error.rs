//! The one error enum of the crate: why a deploy, undeploy or rollback cannot start here.
//! Protocol failures after the start are reported per node in `Outcome::Aborted`.
use crate::catalog::Holder;
use crate::wire::WireError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FarmError {
    /// Another rollout of the same name holds it (HTTP 409).
    #[error(
        "deployment {name:?} is being changed by rollout {} (version {}, coordinated by node {}); retry when it has finished",
        .holder.deploy, .holder.version.as_deref().unwrap_or("none: an undeploy"), .holder.deploy.origin
    )]
    Conflict { name: String, holder: Holder },
    /// The manifest is refused by this node's signature policy.
    #[error("{0}")]
    Refused(String),
    #[error("deployment {name:?} is not deployed")]
    NotDeployed { name: String },
    #[error("deployment {name:?} has no previous version to roll back to")]
    NoPrevious { name: String },
    /// This node has not converged with the cluster yet (it joined or restarted recently).
    #[error("this node is still catching up with the cluster's deployments; retry in a moment or use another node")]
    NotReady,
    /// This node sees too few members to coordinate (a partitioned minority).
    #[error("this node sees {sees} members (itself included) and a rollout needs {needs}; use a node in the majority")]
    NoQuorum { sees: usize, needs: usize },
    #[error("invalid manifest: {0}")]
    Invalid(String),
    #[error(transparent)]
    Wire(#[from] WireError),
}
