//! What `/api/v1/health` and `/api/v1/ready` answer, from a backend's own checks: a draining
//! node says `draining` in both, and is not ready.
use crate::dto::{Check, Health, Readiness};

/// Health from `checks`: `draining` while draining, else `ok` if every check passed, else
/// `degraded`.
pub fn health(draining: bool, checks: Vec<Check>) -> Health {
    let status = if draining {
        "draining"
    } else if checks.iter().all(|c| c.ok) {
        "ok"
    } else {
        "degraded"
    };
    Health {
        status: status.into(),
        checks,
    }
}

/// Readiness from `checks`, plus a failing `drain` check while draining (`drain` is what the
/// drain is doing now): ready only if every check passed; status `draining`, `ready` or
/// `not-ready`.
pub fn readiness(drain: Option<&str>, mut checks: Vec<Check>) -> Readiness {
    if let Some(doing) = drain {
        checks.push(Check {
            name: "drain".into(),
            ok: false,
            detail: format!("draining ({doing}): no new sessions here"),
        });
    }
    let ready = checks.iter().all(|c| c.ok);
    let status = match (drain.is_some(), ready) {
        (true, _) => "draining",
        (false, true) => "ready",
        (false, false) => "not-ready",
    };
    Readiness {
        ready,
        status: status.into(),
        checks,
    }
}
