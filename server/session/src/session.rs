//! The session model: attributes, times, principal, and the version/stamp pair that orders
//! every change cluster-wide.
use crate::attrs::{AttrMap, AttrValue};
use crate::error::SessionError;
use crate::id::SessionId;
use serde::{Deserialize, Serialize};
use shoal_cluster::MemberId;

/// Milliseconds since the Unix epoch (virtual in simulations). Every sans-io method takes it.
pub type Millis = u64;

/// Who wrote a version and when. Orders concurrent writes of the same version: higher `ts`
/// wins, then higher `node` (see the conflict rule in the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub ts: Millis,
    pub node: MemberId,
}

/// One change made by a request; a delta is a list of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DeltaOp {
    Set(String, AttrValue),
    Remove(String),
    MaxInactive(u32),
    Principal(Option<String>),
    /// The session now routes to another node (JvmRouteBinderValve).
    Route(String),
}

/// Limits on what a session may hold; a request exceeding them gets a 4xx.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionLimits {
    pub max_attributes: usize,
    pub max_attribute_bytes: usize,
    pub max_session_bytes: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_attributes: 1024,
            max_attribute_bytes: 1 << 20,
            max_session_bytes: 8 << 20,
        }
    }
}

impl SessionLimits {
    /// Checks one attribute write on its own (early, in the request handler).
    pub fn check_attribute(&self, name: &str, value: &AttrValue) -> Result<(), SessionError> {
        if name.is_empty() || name.len() > 256 {
            return Err(SessionError::BadAttributeName);
        }
        if value.size() > self.max_attribute_bytes {
            return Err(SessionError::AttributeTooLarge {
                name: name.to_owned(),
                size: value.size(),
                limit: self.max_attribute_bytes,
            });
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    /// Route (node name) clients currently stick to.
    pub route: String,
    pub attributes: AttrMap,
    pub created: Millis,
    pub last_access: Millis,
    /// Seconds of inactivity after which the session expires; 0 = never.
    pub max_inactive_secs: u32,
    /// True only during the request that created it.
    pub is_new: bool,
    pub principal: Option<String>,
    /// +1 on every change; replicas never go back to a lower version.
    pub version: u64,
    /// Writer of `version` (see [`Stamp`]).
    pub stamp: Stamp,
}

impl Session {
    pub fn new(
        id: SessionId,
        route: String,
        now: Millis,
        max_inactive_secs: u32,
        node: MemberId,
    ) -> Self {
        Session {
            id,
            route,
            attributes: AttrMap::new(),
            created: now,
            last_access: now,
            max_inactive_secs,
            is_new: true,
            principal: None,
            version: 0,
            stamp: Stamp { ts: now, node },
        }
    }

    pub fn attribute_bytes(&self) -> usize {
        self.attributes
            .iter()
            .map(|(k, v)| k.len() + v.size())
            .sum()
    }

    /// True when idle for longer than `factor` × max inactive interval.
    pub fn idle_beyond(&self, now: Millis, factor: u64) -> bool {
        self.max_inactive_secs > 0
            && now.saturating_sub(self.last_access)
                > u64::from(self.max_inactive_secs) * 1000 * factor
    }

    /// Checks `ops` against `limits` without changing anything.
    pub fn check_ops(&self, ops: &[DeltaOp], limits: &SessionLimits) -> Result<(), SessionError> {
        let mut count = self.attributes.len() as i64;
        let mut bytes = self.attribute_bytes() as i64;
        for op in ops {
            match op {
                DeltaOp::Set(k, v) => {
                    limits.check_attribute(k, v)?;
                    match self.attributes.get(k) {
                        Some(old) => bytes -= old.size() as i64,
                        None => {
                            count += 1;
                            bytes += k.len() as i64;
                        }
                    }
                    bytes += v.size() as i64;
                }
                DeltaOp::Remove(k) => {
                    if let Some(old) = self.attributes.get(k) {
                        count -= 1;
                        bytes -= (k.len() + old.size()) as i64;
                    }
                }
                _ => {}
            }
        }
        if count as usize > limits.max_attributes {
            return Err(SessionError::TooManyAttributes {
                count: count as usize,
                limit: limits.max_attributes,
            });
        }
        if bytes as usize > limits.max_session_bytes {
            return Err(SessionError::SessionTooLarge {
                size: bytes as usize,
                limit: limits.max_session_bytes,
            });
        }
        Ok(())
    }

    pub fn apply_ops(&mut self, ops: &[DeltaOp]) {
        for op in ops {
            match op {
                DeltaOp::Set(k, v) => {
                    self.attributes.insert(k.clone(), v.clone());
                }
                DeltaOp::Remove(k) => {
                    self.attributes.remove(k);
                }
                DeltaOp::MaxInactive(s) => self.max_inactive_secs = *s,
                DeltaOp::Principal(p) => self.principal = p.clone(),
                DeltaOp::Route(r) => self.route = r.clone(),
            }
        }
    }

    /// Makes the next version, written by `node` at `now`. The stamp's time never goes
    /// below the previous one + 1, so a write derived from a state always outranks it.
    pub fn bump(&mut self, now: Millis, node: MemberId) {
        self.version += 1;
        self.stamp = Stamp {
            ts: now.max(self.stamp.ts + 1),
            node,
        };
    }

    /// `(version, stamp)`: the total order used to pick a winner.
    pub fn rank(&self) -> (u64, Stamp) {
        (self.version, self.stamp)
    }
}

/// The version of a session a client saw last: what its next request must see at least.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub version: u64,
    /// Writer and time of that version (the writer is where to fetch it from).
    pub stamp: Stamp,
}

impl Seen {
    /// What a client sees of `s`.
    pub fn of(s: &Session) -> Seen {
        Seen {
            version: s.version,
            stamp: s.stamp,
        }
    }

    /// True when `s` holds everything the client saw: that very version (same writer and
    /// time), or a later one. Another write of the same version (a concurrent one, or a
    /// backup promoted after a crash, which bumps the version it had) does not, even when
    /// it ranks higher.
    pub fn satisfied_by(&self, s: &Session) -> bool {
        s.version > self.version || (s.version == self.version && s.stamp == self.stamp)
    }
}
