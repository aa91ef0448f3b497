//! Balancer configuration: plain serde structs, parsed and validated here only.
//!
//! Durations are written in milliseconds in config files (`health_interval_ms = 500`) so a
//! TOML/JSON file needs no duration syntax; in Rust they are [`Duration`]s.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::http::uri::{Authority, PathAndQuery, Uri};
use serde::{Deserialize, Serialize};

use crate::error::BalancerError;

/// Everything `shoal balancer` needs. `Default` gives a balancer on 127.0.0.1:18080 with no
/// backends (add them with [`crate::Balancer::set_backends`] or in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BalancerConfig {
    /// Address the binary binds; [`crate::serve`] takes an already-bound listener instead.
    pub listen: SocketAddr,
    /// The nodes behind the balancer; a route may appear once.
    pub backends: Vec<Backend>,
    /// Path probed by active health checks when a backend sets none; 2xx/3xx means alive.
    pub health_path: String,
    /// Pause between two rounds of active health checks.
    #[serde(rename = "health_interval_ms", with = "millis")]
    pub health_interval: Duration,
    /// A health probe slower than this counts as a failure.
    #[serde(rename = "health_timeout_ms", with = "millis")]
    pub health_timeout: Duration,
    /// Consecutive failed probes before a backend is marked down (one success brings it back).
    /// Connection errors on real traffic mark it down at once, without waiting for probes.
    pub fail_threshold: u32,
    /// Connecting to a backend longer than this is a connect failure.
    #[serde(rename = "connect_timeout_ms", with = "millis")]
    pub connect_timeout: Duration,
    /// Longest wait for a backend's response head; 0 waits forever. Answered by 504.
    #[serde(rename = "response_timeout_ms", with = "millis")]
    pub response_timeout: Duration,
    /// Resend GET/HEAD/OPTIONS/PUT/DELETE/TRACE to another backend when the chosen one closed
    /// or reset the connection before any response byte.
    pub retry_idempotent: bool,
    /// Send a request of any method to another backend when the connection to the chosen one
    /// could not be made (nothing was sent, so nothing can be applied twice); HAProxy's
    /// `option redispatch`.
    pub redispatch: bool,
    /// Request bodies up to this size are buffered so they can be resent; larger or
    /// unsized (chunked) bodies are streamed and never resent.
    pub max_replay_body: usize,
    /// Session cookie whose value is `<id>.<route>` (Tomcat's jvmRoute suffix).
    pub cookie_name: String,
    /// Request header carrying `<id>.<route>` for clients without cookies.
    pub session_header: String,
    /// Path of the JSON status endpoint on the balancer's own listener; "" disables it.
    pub status_path: String,
    /// Threads proxying connections, each with its own single-threaded event loop; 0 = one
    /// per CPU core. One thread carries tens of thousands of requests per second, and the
    /// fewer threads, the more events each wake-up handles: on a machine whose cores are
    /// busy with the nodes, 1 costs the least CPU per request.
    pub threads: usize,
    /// PEM file of the CA the backends' certificates chain to. Set: the balancer speaks
    /// HTTPS to every backend (nodes with `[http.tls]`), checking each certificate against
    /// this CA and the backend's host; absent: plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ca: Option<std::path::PathBuf>,
}

/// One node behind the balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// The node's jvmRoute, i.e. the suffix after the first '.' of its session ids (`node1`).
    pub route: String,
    /// `host:port` or `http://host:port` of the node's HTTP connector.
    pub addr: String,
    /// Overrides [`BalancerConfig::health_path`] for this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
}

impl Backend {
    /// A backend probed on the config's default health path.
    pub fn new(route: impl Into<String>, addr: impl Into<String>) -> Self {
        Backend {
            route: route.into(),
            addr: addr.into(),
            health_path: None,
        }
    }
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 18080)),
            backends: Vec::new(),
            health_path: "/app/stats".into(),
            health_interval: Duration::from_millis(500),
            health_timeout: Duration::from_millis(1000),
            fail_threshold: 2,
            connect_timeout: Duration::from_millis(1000),
            response_timeout: Duration::from_secs(60),
            retry_idempotent: true,
            redispatch: true,
            max_replay_body: 64 * 1024,
            cookie_name: "JSESSIONID".into(),
            session_header: "X-Shoal-Session".into(),
            status_path: "/balancer/status".into(),
            threads: 1,
            backend_ca: None,
        }
    }
}

/// A backend entry after validation: what the proxy actually dials and probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub route: String,
    pub authority: Authority,
    pub health_uri: Uri,
    /// HTTPS to this backend (`backend_ca` is set).
    pub tls: bool,
}

impl BalancerConfig {
    /// Reads and validates a TOML config file (see `balancer.example.toml`).
    pub fn load(path: &std::path::Path) -> Result<Self, BalancerError> {
        let file_error = |reason: String| BalancerError::ConfigFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let config: BalancerConfig =
            toml::from_str(&text).map_err(|e| file_error(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting and backend; the error names the key or entry to fix.
    pub fn validate(&self) -> Result<(), BalancerError> {
        let setting = |key, reason: &str| BalancerError::InvalidSetting {
            key,
            reason: reason.into(),
        };
        if self.health_interval.is_zero() {
            return Err(setting("health_interval_ms", "must be > 0"));
        }
        if self.health_timeout.is_zero() {
            return Err(setting("health_timeout_ms", "must be > 0"));
        }
        if self.connect_timeout.is_zero() {
            return Err(setting("connect_timeout_ms", "must be > 0"));
        }
        if self.fail_threshold == 0 {
            return Err(setting("fail_threshold", "must be >= 1"));
        }
        check_path(&self.health_path).map_err(|r| setting("health_path", &r))?;
        if !self.status_path.is_empty() {
            check_path(&self.status_path).map_err(|r| setting("status_path", &r))?;
        }
        if !is_token(&self.cookie_name) {
            return Err(setting("cookie_name", "must be a non-empty cookie name"));
        }
        if hyper::header::HeaderName::from_bytes(self.session_header.as_bytes()).is_err() {
            return Err(setting(
                "session_header",
                "must be a valid HTTP header name",
            ));
        }
        self.targets(&self.backends).map(|_| ())
    }

    /// Validates `backends` against this config and resolves their dial/probe addresses.
    pub(crate) fn targets(&self, backends: &[Backend]) -> Result<Vec<Target>, BalancerError> {
        let mut out: Vec<Target> = Vec::with_capacity(backends.len());
        for (index, b) in backends.iter().enumerate() {
            let target = self
                .target(b)
                .map_err(|reason| BalancerError::InvalidBackend {
                    index,
                    route: b.route.clone(),
                    addr: b.addr.clone(),
                    reason,
                })?;
            if let Some(first) = out.iter().position(|t| t.route == target.route) {
                return Err(BalancerError::DuplicateRoute {
                    route: target.route,
                    first,
                    second: index,
                });
            }
            out.push(target);
        }
        Ok(out)
    }

    fn target(&self, b: &Backend) -> Result<Target, String> {
        // A '.' would make `<id>.<route>` ambiguous; ';' and ',' would break cookie parsing.
        if b.route.is_empty()
            || !b
                .route
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err("route must be non-empty and use only letters, digits, '-' and '_'".into());
        }
        let tls = self.backend_ca.is_some();
        let raw = match (b.addr.split_once("://"), tls) {
            (None, _) => b.addr.as_str(),
            (Some(("http", rest)), false) | (Some(("https", rest)), true) => rest,
            (Some(("https", _)), false) => {
                return Err("an https:// backend needs `backend_ca`, the PEM file of the CA its certificate chains to".into())
            }
            (Some(("http", _)), true) => {
                return Err("`backend_ca` is set, so every backend speaks HTTPS: write host:port or https://host:port".into())
            }
            (Some((scheme, _)), _) => return Err(format!("unknown scheme {scheme:?}; write host:port")),
        };
        let raw = raw.strip_suffix('/').unwrap_or(raw);
        let authority: Authority = raw
            .parse()
            .map_err(|e| format!("addr must be host:port or http://host:port ({e})"))?;
        if authority.port_u16().is_none() {
            return Err("addr needs an explicit port, e.g. 127.0.0.1:18081".into());
        }
        if authority.as_str().contains('@') {
            return Err("addr must not contain user info".into());
        }
        let path = b.health_path.as_deref().unwrap_or(&self.health_path);
        check_path(path).map_err(|r| format!("health_path: {r}"))?;
        let health_uri = Uri::builder()
            .scheme(if tls { "https" } else { "http" })
            .authority(authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| format!("health_path {path:?} does not form a URL: {e}"))?;
        Ok(Target {
            route: b.route.clone(),
            authority,
            health_uri,
            tls,
        })
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must start with '/'"));
    }
    path.parse::<PathAndQuery>()
        .map(|_| ())
        .map_err(|e| format!("{path:?} is not a valid URL path: {e}"))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&c))
}

/// Serde adapter: a [`Duration`] written as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
