//! Settings of a persistent context (`manager = "persistent"`): Tomcat's PersistentManager
//! attributes under their names in snake case, plus the two shoal adds (`mode`,
//! `verify_on_access`) and the bound of the write queue.
use serde::{Deserialize, Serialize};

/// Where the working copy of a session lives between requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersistMode {
    /// PersistentManager: memory holds the working copy, the store is behind it. Needs a
    /// balancer with sticky sessions to be cheap (a takeover costs three store round trips).
    #[default]
    Sticky,
    /// PersistentValve: load at request start, compare-and-set at request end, nothing kept
    /// in memory between requests. For balancers without stickiness.
    PerRequest,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistentConfig {
    pub mode: PersistMode,
    /// Seconds: 0 = write-through (every changed session saved with compare-and-set before
    /// the response; the default, since Tomcat's -1 loses changes on a crash); > 0 =
    /// write-behind, saved once idle this long; -1 = saved only on swap-out and stop.
    pub max_idle_backup: i64,
    /// Seconds idle after which a session is saved and dropped from memory; -1 = never.
    pub max_idle_swap: i64,
    /// Seconds a session must be idle before it may be swapped out to stay under
    /// `max_active_sessions`; -1 = any idle session may be.
    pub min_idle_swap: i64,
    /// Sessions in memory; -1 = no limit. Over it, idle sessions are swapped out first, then
    /// a new session is refused (Tomcat throws; shoal answers 503 with a reason).
    pub max_active_sessions: i64,
    /// On stop, save every session with unsaved changes (with compare-and-set: a stale copy
    /// never overwrites a newer row). False: unsaved changes are discarded, rows untouched.
    pub save_on_restart: bool,
    /// The background pass (expiry, swaps, backups, store sweep) runs every N ticks (>= 1).
    pub process_expires_frequency: u32,
    /// Sticky mode: check the row's version (one cheap read) before serving a session from
    /// memory. False saves that read but then a stale copy can be served when the runtime
    /// loses a `Moved` notice (writes stay compare-and-set, so it is never saved over a
    /// newer row).
    pub verify_on_access: bool,
    /// Sticky mode: most sessions with changes waiting to be saved (write-behind, or queued
    /// while the store is unavailable). A change that would exceed it is refused (503).
    pub write_queue_max: usize,
    /// Longest wait between retries of queued writes while the store is unavailable
    /// (the wait starts at 100 ms and doubles).
    pub retry_max_ms: u64,
    /// Rows the store expiry sweep removes per background pass.
    pub sweep_limit: usize,
}

impl Default for PersistentConfig {
    fn default() -> Self {
        PersistentConfig {
            mode: PersistMode::Sticky,
            max_idle_backup: 0,
            max_idle_swap: -1,
            min_idle_swap: -1,
            max_active_sessions: -1,
            save_on_restart: true,
            process_expires_frequency: 6,
            verify_on_access: true,
            write_queue_max: 10_000,
            retry_max_ms: 5_000,
            sweep_limit: 1_000,
        }
    }
}

impl PersistentConfig {
    /// Checks the values against each other and against the context's default max inactive
    /// interval. The error names the key and what to do.
    pub fn validate(&self, max_inactive_secs: u32) -> Result<(), String> {
        for (key, v) in [
            ("max_idle_backup", self.max_idle_backup),
            ("max_idle_swap", self.max_idle_swap),
            ("min_idle_swap", self.min_idle_swap),
            ("max_active_sessions", self.max_active_sessions),
        ] {
            if v < -1 {
                return Err(format!("`{key}` = {v}: use -1 (off) or a value >= 0"));
            }
        }
        if self.process_expires_frequency == 0 {
            return Err("`process_expires_frequency` = 0: use 1 or more (ticks)".into());
        }
        if self.write_queue_max == 0 {
            return Err("`write_queue_max` = 0: use 1 or more".into());
        }
        if self.max_idle_swap >= 0 && self.min_idle_swap > self.max_idle_swap {
            return Err(format!(
                "`min_idle_swap` = {} is above `max_idle_swap` = {}: lower it or set it to -1",
                self.min_idle_swap, self.max_idle_swap
            ));
        }
        // A write-behind session must reach the store before the store sweep could take
        // the row for expired (the sweep allows a quarter interval of lag).
        if self.max_idle_backup > 0
            && max_inactive_secs > 0
            && self.max_idle_backup.saturating_mul(4) >= i64::from(max_inactive_secs)
        {
            return Err(format!(
                "`max_idle_backup` = {} s must stay below a quarter of `max_inactive_secs` = {} s, or the store sweep may expire a session whose changes are still in memory",
                self.max_idle_backup, max_inactive_secs
            ));
        }
        Ok(())
    }

    pub(crate) fn write_through(&self) -> bool {
        self.max_idle_backup == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tomcat_names_parse_and_unknown_keys_are_refused() {
        let c: PersistentConfig = serde_json::from_str(
            r#"{"mode":"per-request","max_idle_swap":600,"min_idle_swap":60,"save_on_restart":false}"#,
        )
        .expect("parse");
        assert_eq!(c.mode, PersistMode::PerRequest);
        assert_eq!(c.max_idle_swap, 600);
        assert_eq!(c.max_idle_backup, 0);
        assert!(c.validate(1800).is_ok());
        let err = serde_json::from_str::<PersistentConfig>(r#"{"maxIdleSwap":600}"#)
            .expect_err("unknown key");
        assert!(err.to_string().contains("maxIdleSwap"), "{err}");
        assert!(serde_json::from_str::<PersistentConfig>(r#"{"mode":"valve"}"#).is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let c = PersistentConfig {
            process_expires_frequency: 0,
            ..Default::default()
        };
        assert!(c
            .validate(1800)
            .expect_err("invalid")
            .contains("process_expires_frequency"));
        let c = PersistentConfig {
            max_idle_backup: 900,
            ..Default::default()
        };
        assert!(c
            .validate(1800)
            .expect_err("invalid")
            .contains("max_idle_backup"));
        let c = PersistentConfig {
            max_idle_swap: 10,
            min_idle_swap: 20,
            ..Default::default()
        };
        assert!(c
            .validate(1800)
            .expect_err("invalid")
            .contains("min_idle_swap"));
    }
}
