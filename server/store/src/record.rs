//! The stored record, the compare-and-set vocabulary, and the one key rule every store
//! applies (so the twin and the real stores cannot disagree on what an id may be).
use crate::error::StoreError;

/// One session as a store holds it. The store never looks inside `data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    /// The session id without its route suffix (see [`check_id`] for the charset).
    pub id: String,
    /// The context the session belongs to; stores keep apps apart.
    pub app: String,
    /// Bumped by every write; every write and delete is a compare-and-set on it.
    pub version: u64,
    /// Tomcat's `valid_session` flag, kept so a seed-000 table reads the same.
    pub valid: bool,
    /// Seconds of inactivity before expiry; `<= 0` means the session never expires.
    pub max_inactive_s: i64,
    /// Epoch milliseconds of the last request that used the session.
    pub last_access_ms: i64,
    /// The node that wrote this version (diagnostics, and takeover decisions in the manager).
    pub owner: Option<String>,
    /// The encoded session; the manager owns the format.
    pub data: Vec<u8>,
}

impl StoredSession {
    /// When the session expires, in epoch milliseconds; `None` when it never does.
    pub fn expires_at_ms(&self) -> Option<i64> {
        expires_at_ms(self.last_access_ms, self.max_inactive_s)
    }

    /// Expired at `now_ms` (strictly past its expiry, as Tomcat's `expiredKeys`).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms().is_some_and(|at| at < now_ms)
    }
}

/// `last_access_ms + max_inactive_s * 1000`, saturating; `None` when `max_inactive_s <= 0`.
pub fn expires_at_ms(last_access_ms: i64, max_inactive_s: i64) -> Option<i64> {
    (max_inactive_s > 0).then(|| last_access_ms.saturating_add(max_inactive_s.saturating_mul(1000)))
}

/// What a write expects to find in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No record with this (app, id): an insert.
    Absent,
    /// The record's stored version is exactly this one.
    Version(u64),
}

impl Expect {
    /// The version a new record must exceed (`Absent` counts as 0).
    pub fn floor(self) -> u64 {
        match self {
            Expect::Absent => 0,
            Expect::Version(v) => v,
        }
    }
}

/// The outcome of a compare-and-set. Losing one is a result, not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a lost compare-and-set must be handled (it is a detected conflict)"]
pub enum Cas {
    /// The write (or delete) happened.
    Done,
    /// Nothing was written: the store holds `current` (`None`: no record).
    Conflict { current: Option<u64> },
}

impl Cas {
    pub fn is_done(self) -> bool {
        matches!(self, Cas::Done)
    }
}

/// The longest session id any store accepts.
pub const MAX_ID_LEN: usize = 128;
/// The longest app (context) name any store accepts (fits a SQL `VARCHAR(255)`).
pub const MAX_APP_LEN: usize = 255;

/// A session id is `[A-Za-z0-9_-]{1,128}`: it can never name a path, a SQL fragment or a
/// Redis key separator. shoal's own ids are upper-case hex.
pub fn check_id(store: &str, id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey {
            store: store.to_owned(),
            what: "session id",
            value: id.escape_debug().to_string(),
            rule: "a session id is 1 to 128 characters of A-Z, a-z, 0-9, '_' and '-'",
        })
    }
}

/// An app (context) name is at most 255 bytes without control characters (`""` is the
/// root context).
pub fn check_app(store: &str, app: &str) -> Result<(), StoreError> {
    if app.len() <= MAX_APP_LEN && !app.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(StoreError::InvalidKey {
            store: store.to_owned(),
            what: "app name",
            value: app.escape_debug().to_string(),
            rule: "an app name is at most 255 bytes with no control characters",
        })
    }
}

/// The checks every store runs before a write: the keys, and a version that moves forward.
/// SQL stores keep versions in a signed 64-bit column, so versions stop at `i64::MAX`.
pub(crate) fn check_write(
    store: &str,
    s: &StoredSession,
    expect: Expect,
) -> Result<(), StoreError> {
    check_app(store, &s.app)?;
    check_id(store, &s.id)?;
    if s.version <= expect.floor() {
        return Err(StoreError::InvalidRecord {
            store: store.to_owned(),
            app: s.app.clone(),
            id: s.id.clone(),
            detail: format!(
                "version {} does not move past the expected {:?}; a write must bump the version",
                s.version, expect
            ),
        });
    }
    if s.version > i64::MAX as u64 {
        return Err(StoreError::InvalidRecord {
            store: store.to_owned(),
            app: s.app.clone(),
            id: s.id.clone(),
            detail: format!(
                "version {} is above {} (the stores' limit)",
                s.version,
                i64::MAX
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_are_refused() {
        for bad in [
            "",
            "../x",
            "a/b",
            "a\0b",
            "..",
            "a.b",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(check_id("t", bad).is_err(), "{bad:?}");
        }
        for good in ["A1B2", "x", "a_b-c", &"x".repeat(128)] {
            assert!(check_id("t", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn expiry() {
        assert_eq!(expires_at_ms(1000, 0), None);
        assert_eq!(expires_at_ms(1000, -1), None);
        assert_eq!(expires_at_ms(1000, 2), Some(3000));
        assert_eq!(expires_at_ms(i64::MAX, 2), Some(i64::MAX));
    }
}
