//! The `[http]` configuration section (plugged into the binary's config file by its owner).
//! Unknown keys are errors; every field has a default.
//!
//! ```toml
//! [http]
//! bind = "127.0.0.1"
//! port = 18081
//! cookie_name = "JSESSIONID"
//!
//! [http.tls]                    # optional: HTTPS (certificate reloaded on change)
//! cert = "tls/fullchain.pem"
//! key = "tls/key.pem"
//!
//! [[http.contexts]]
//! path = "/app"
//! app = "bench"
//! url_filter = '.*\.(gif|js|jpe?g|png|css|ico|svg|woff2?)$'
//!
//! [http.contexts.session]
//! manager = "delta"        # or "backup", or "persistent" (with [..session.persistent]
//!                          # and [..session.store] tables, see the README)
//! replication = "sync"     # or "async"
//! backups = 1
//! max_inactive_secs = 1800
//! ```
use regex::Regex;
use serde::{Deserialize, Serialize};
use shoal_session::ManagerConfig;
use thiserror::Error;

/// Tomcat's ReplicationValve filter, widened to today's static file types.
pub const DEFAULT_URL_FILTER: &str = r".*\.(gif|js|jpe?g|png|css|ico|svg|woff2?)$";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the HTTP listener binds.
    pub bind: String,
    pub port: u16,
    /// Session cookie name (Tomcat: JSESSIONID).
    pub cookie_name: String,
    /// Header carrying `<id>.<route>` for clients without cookies; echoed on responses.
    pub session_header: String,
    /// How long a request waits for a joining node's state transfer before a 503.
    pub ready_wait_ms: u64,
    pub contexts: Vec<ContextConfig>,
    /// `[http.tls]`: serve HTTPS with this certificate and key (reloaded when they change
    /// on disk). Absent: plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<shoal_tls::TlsFiles>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: "127.0.0.1".into(),
            port: 8080,
            cookie_name: "JSESSIONID".into(),
            session_header: "X-Shoal-Session".into(),
            ready_wait_ms: 5000,
            contexts: vec![ContextConfig::default()],
            tls: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// Path prefix, e.g. `/app`.
    pub path: String,
    /// Native application served at the end of the pipeline: `bench` (the benchmark app).
    pub app: String,
    /// Regex of request paths that never touch the session (ReplicationValve filter); an
    /// empty string disables the filter.
    pub url_filter: String,
    /// Rewrite session ids routed to another node (JvmRouteBinderValve).
    pub jvm_route_binder: bool,
    pub session: ManagerConfig,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            path: "/app".into(),
            app: "bench".into(),
            url_filter: DEFAULT_URL_FILTER.into(),
            jvm_route_binder: true,
            session: ManagerConfig::default(),
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("[[http.contexts]] path `{0}`: must start with `/`, not end with `/`, and not be `/`")]
    BadPath(String),
    #[error("[[http.contexts]] path `{0}` appears twice")]
    DuplicatePath(String),
    #[error("[[http.contexts]] path `{path}`: url_filter is not a valid regex: {err}")]
    BadFilter { path: String, err: String },
    #[error("[[http.contexts]] path `{path}`: unknown app `{app}` (known: bench)")]
    UnknownApp { path: String, app: String },
    #[error("[http] {0}")]
    Invalid(String),
}

impl HttpConfig {
    /// Checks everything that can be checked before starting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        };
        if !token_ok(&self.cookie_name) {
            return Err(ConfigError::Invalid(format!(
                "cookie_name `{}`: use letters, digits, - and _",
                self.cookie_name
            )));
        }
        if !token_ok(&self.session_header) {
            return Err(ConfigError::Invalid(format!(
                "session_header `{}`: use letters, digits, - and _",
                self.session_header
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.contexts {
            if !seen.insert(c.path.clone()) {
                return Err(ConfigError::DuplicatePath(c.path.clone()));
            }
            c.validate()?;
            if c.app != "bench" {
                return Err(ConfigError::UnknownApp {
                    path: c.path.clone(),
                    app: c.app.clone(),
                });
            }
        }
        Ok(())
    }
}

impl ContextConfig {
    /// Checks one context's path, filter and session settings (its `app` name is the
    /// caller's: a context installed at run time brings its own application).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = self;
        if !c.path.starts_with('/') || c.path.ends_with('/') || c.path.len() < 2 {
            return Err(ConfigError::BadPath(c.path.clone()));
        }
        c.filter()?;
        if c.session.manager == shoal_session::ManagerKind::Persistent {
            c.session
                .persistent
                .validate(c.session.max_inactive_secs)
                .map_err(|e| {
                    ConfigError::Invalid(format!("context `{}` [session.persistent]: {e}", c.path))
                })?;
        }
        Ok(())
    }
}

impl ContextConfig {
    pub fn filter(&self) -> Result<Option<Regex>, ConfigError> {
        if self.url_filter.is_empty() {
            return Ok(None);
        }
        Regex::new(&self.url_filter)
            .map(Some)
            .map_err(|e| ConfigError::BadFilter {
                path: self.path.clone(),
                err: e.to_string(),
            })
    }
}
