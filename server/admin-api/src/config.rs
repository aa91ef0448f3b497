//! The admin listener's configuration: where it binds and which tokens it accepts.
//!
//! Two bearer tokens, two roles: `read_token` may call every `GET`, `admin_token` may call
//! everything. The admin token may also come from the environment variable
//! `SHOAL_ADMIN_TOKEN`, which wins over the file so that secrets can stay out of config files.

use std::net::SocketAddr;

use serde::Deserialize;

/// Name of the environment variable that carries the admin token (server and `shoal ctl`).
pub const ADMIN_TOKEN_ENV: &str = "SHOAL_ADMIN_TOKEN";

/// Default admin listener: loopback only, on its own port (HTTP front + 11000-ish).
pub const DEFAULT_BIND: &str = "127.0.0.1:19081";

/// Shortest token accepted: shorter ones are guessable over a loopback socket in minutes.
pub const MIN_TOKEN_LEN: usize = 16;

/// `[admin]` section of a node's config file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener. Loopback by default: exposing it is a deliberate act.
    pub bind: SocketAddr,
    /// Token of the admin role (all operations). `SHOAL_ADMIN_TOKEN` overrides it.
    pub admin_token: Option<String>,
    /// Token of the read-only role (every `GET`, `/metrics`), e.g. for dashboards and scrapers.
    pub read_token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            bind: DEFAULT_BIND.parse().unwrap_or_else(|_| unreachable_bind()),
            admin_token: None,
            read_token: None,
        }
    }
}

fn unreachable_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 19081))
}

/// A config value that cannot be used, naming the key and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("[admin] {key}: the token is {len} characters long; use at least {MIN_TOKEN_LEN} random characters (e.g. `openssl rand -hex 16`)")]
    TokenTooShort { key: &'static str, len: usize },
    #[error("[admin] read_token equals admin_token: give the read-only role its own token")]
    SameTokens,
}

impl AdminConfig {
    /// Applies `SHOAL_ADMIN_TOKEN` (if set and non-empty) over the file's `admin_token`.
    pub fn with_env(mut self) -> Self {
        if let Ok(token) = std::env::var(ADMIN_TOKEN_ENV) {
            if !token.is_empty() {
                self.admin_token = Some(token);
            }
        }
        self
    }

    /// What a node does with its `[admin]` section: applies `SHOAL_ADMIN_TOKEN`, then validates.
    pub fn resolve(self) -> Result<Self, ConfigError> {
        let from_file = self.admin_token.clone();
        let config = self.with_env();
        match config.validate() {
            // Name the variable the short token came from, not only the key it replaced.
            Err(ConfigError::TokenTooShort {
                key: "admin_token",
                len,
            }) if config.admin_token != from_file => Err(ConfigError::TokenTooShort {
                key: "admin_token (from SHOAL_ADMIN_TOKEN)",
                len,
            }),
            other => other.map(|()| config),
        }
    }

    /// Checks the tokens. A config without any token is valid: every data endpoint then
    /// answers 401 explaining how to set one, and a warning is logged at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, token) in [
            ("admin_token", &self.admin_token),
            ("read_token", &self.read_token),
        ] {
            if let Some(t) = token {
                if t.len() < MIN_TOKEN_LEN {
                    return Err(ConfigError::TokenTooShort { key, len: t.len() });
                }
            }
        }
        if self.admin_token.is_some() && self.admin_token == self.read_token {
            return Err(ConfigError::SameTokens);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test of this binary that touches the environment variable.
    #[test]
    fn env_token_overrides_the_file_and_is_validated() {
        let file = AdminConfig {
            admin_token: Some("f".repeat(20)),
            ..AdminConfig::default()
        };
        std::env::set_var(ADMIN_TOKEN_ENV, "e".repeat(24));
        let resolved = file.clone().resolve();
        std::env::set_var(ADMIN_TOKEN_ENV, "short");
        let too_short = file.clone().resolve();
        std::env::remove_var(ADMIN_TOKEN_ENV);
        assert_eq!(resolved.map(|c| c.admin_token), Ok(Some("e".repeat(24))));
        assert_eq!(
            too_short,
            Err(ConfigError::TokenTooShort {
                key: "admin_token (from SHOAL_ADMIN_TOKEN)",
                len: 5
            })
        );
        assert_eq!(file.clone().resolve(), Ok(file));
    }
}
