//! Applications as a context's [`App`]: the farm deployer's `application` artifacts.
//!
//! One entry point, [`app_from_component`]: it detects the component's world, compiles it
//! and instantiates it once, and returns the [`App`] to give
//! [`shoal_http::HttpNode::install_context`] — or the reason it cannot serve, so the farm
//! reports `staged` or `failed: <reason>` before anything is activated. Two kinds:
//! - a `wasi:http/incoming-handler` component (`wasi_http.rs`), what `wasmtime serve` and
//!   Spin run, with shoal's session through the optional `shoal:http-app/session` import;
//! - a valve-world component that answers requests (`valve.rs`), like the example
//!   `bench-app`.
//!
//! Both see the request path as the client sent it (context included) and the request's
//! session through `crate::session_access` (the session is looked up before the component runs, so
//! nothing inside the sandbox waits on the network).
#[cfg(test)]
mod tests;
mod valve;
mod wasi_http;

use shoal_http::App;
use shoal_plugin_host::{HttpAppHost, Limits, PluginError, PluginRegistry, PluginSpec};
use std::sync::Arc;
use thiserror::Error;

pub use valve::ValveWorldApp;
pub use wasi_http::WasiHttpApp;

/// What compiles and runs applications on a node: the plugin registry's engine for valve-
/// world applications and the `wasi:http` engine.
#[derive(Clone)]
pub struct AppHosts {
    pub plugins: Arc<PluginRegistry>,
    pub http: Arc<HttpAppHost>,
}

/// How an application runs.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Shown in errors and logs: the deployment's name (and version).
    pub name: String,
    /// Memory, time limit per request, concurrent requests, response size.
    pub limits: Limits,
    /// Given to a valve-world application through `host.config`.
    pub config: Vec<(String, String)>,
}

impl AppConfig {
    /// Limits fit for an application rather than a plugin on every request's path: 64 MiB
    /// of memory, 10 s per request, 64 requests at once, 16 MiB responses.
    pub fn new(name: impl Into<String>) -> AppConfig {
        AppConfig {
            name: name.into(),
            limits: Limits {
                memory_bytes: 64 << 20,
                call_timeout: std::time::Duration::from_secs(10),
                max_instances: 64,
                max_output_bytes: 16 << 20,
            },
            config: Vec::new(),
        }
    }
}

/// Which world an application component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    WasiHttp,
    Valve,
}

#[derive(Debug, Error)]
pub enum AppError {
    /// Not a component, does not compile, an import shoal does not provide, no handler, or
    /// the first instance failed: the reason names the application.
    #[error("application {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// Detects the world of `bytes` (a `wasi:http/incoming-handler` export, else the valve
/// world), compiles it and instantiates it once. The returned app is ready to install.
pub async fn app_from_component(
    hosts: &AppHosts,
    bytes: &[u8],
    config: AppConfig,
) -> Result<(Arc<dyn App>, AppKind), AppError> {
    let invalid = |reason: String| AppError::Invalid {
        name: config.name.clone(),
        reason,
    };
    match hosts.http.load(&config.name, bytes, config.limits.clone()) {
        Ok(app) => {
            app.check().await.map_err(|e| invalid(e.to_string()))?;
            return Ok((Arc::new(WasiHttpApp::new(app)), AppKind::WasiHttp));
        }
        // Compiled once more by the plugin engine (another engine configuration).
        Err(PluginError::NotHttpApp { .. }) => {}
        Err(e) => return Err(invalid(e.to_string())),
    }
    let spec = PluginSpec {
        config: config.config.clone(),
        limits: config.limits.clone(),
        world: Some(shoal_plugin_host::PluginWorld::Valve),
        ..PluginSpec::default()
    };
    let app = hosts
        .plugins
        .valve_app(&config.name, bytes, spec)
        .map_err(|e| {
            invalid(format!(
                "{e} (an application is a wasi:http/incoming-handler component or a valve-world component)"
            ))
        })?;
    Ok((Arc::new(ValveWorldApp::new(app)), AppKind::Valve))
}
