//! `ValveApp`: a valve-world component serving a context as its application (like the
//! example `bench-app`), outside the registry's list: it is called by its context only,
//! never by the other contexts' pipelines, and has its own instances, limits and failure
//! policy. Built by [`PluginRegistry::valve_app`], which compiles and instantiates it once
//! (so a deployer knows the component is good before it activates it).
use crate::calls::valve_call_on;
use crate::error::PluginError;
use crate::metrics::PluginMetrics;
use crate::plugin::Plugin;
use crate::registry::{PluginRegistry, PluginSpec};
use crate::session::SessionAccess;
use crate::types::{HttpRequest, PluginWorld, ValveOutcome};
use std::sync::Arc;

pub struct ValveApp {
    plugin: Arc<Plugin>,
    wants_body: bool,
    digest: String,
}

impl PluginRegistry {
    /// Compiles `bytes` as a valve-world application named `name` (shown in errors and
    /// logs), with `spec`'s configuration, limits and failure policy; the first instance
    /// is created now. Fails naming `name` when the component is not a valve, does not
    /// compile or does not instantiate.
    pub fn valve_app(
        &self,
        name: &str,
        bytes: &[u8],
        spec: PluginSpec,
    ) -> Result<ValveApp, PluginError> {
        let metrics = Arc::new(PluginMetrics::default());
        let version = self.build(
            name,
            bytes,
            1,
            Some(PluginWorld::Valve),
            spec.config,
            spec.limits,
            metrics.clone(),
        )?;
        let wants_body = version.wants_body;
        let digest = version.digest.clone();
        Ok(ValveApp {
            plugin: Arc::new(Plugin::new(name, metrics, version, spec.policy)),
            wants_body,
            digest,
        })
    }
}

impl ValveApp {
    pub fn name(&self) -> &str {
        &self.plugin.name
    }

    /// SHA-256 of the component's bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether `call` needs the request body.
    pub fn wants_body(&self) -> bool {
        self.wants_body
    }

    /// Runs the application on `request`, lending it `session`. A call that fails (trap,
    /// time or memory limit, bad output) is answered by the failure policy: fail-closed
    /// answers 503 naming the application.
    pub fn call(
        &self,
        request: &HttpRequest,
        session: &mut dyn SessionAccess,
    ) -> Result<ValveOutcome, PluginError> {
        valve_call_on(&self.plugin, request, session)
    }

    /// Calls and failures since load: (calls, failures by kind).
    pub fn counts(&self) -> (u64, crate::types::FailureCounts) {
        self.plugin.counts()
    }
}
