//! Wasm URL filter plugins as the ReplicationValve's [`UrlFilter`] of each context: a
//! request that an enabled filter (placed on the context) says may not touch the session
//! is committed without replication, exactly like a match of the context's regex filter.
//!
//! The registry is consulted on every request, so loading, enabling, disabling or
//! unloading a filter through the admin API takes effect on the next request.
use crate::plugins::Placement;
use shoal_http::{Request, UrlFilter};
use shoal_plugin_host::{HttpRequest, PluginRegistry, PluginWorld};
use std::sync::Arc;

pub struct WasmUrlFilters {
    pub registry: Arc<PluginRegistry>,
    /// Context path, for the plugins' placement.
    pub context: String,
    pub placement: Arc<Placement>,
}

impl UrlFilter for WasmUrlFilters {
    fn may_touch_session(&self, path: &str, req: &Request) -> bool {
        let names: Vec<String> = self
            .registry
            .enabled(PluginWorld::UrlFilter)
            .into_iter()
            .filter(|n| self.placement.applies(n, &self.context))
            .collect();
        if names.is_empty() {
            return true;
        }
        let request = HttpRequest {
            method: req.method().as_str().to_owned(),
            path: path.to_owned(),
            query: req.uri().query().unwrap_or("").to_owned(),
            headers: crate::wasm_valves::plugin_headers(req.headers()),
            body: None,
        };
        // A filter unloaded between listing and calling answers Err: replicate (safe).
        names
            .iter()
            .all(|n| self.registry.url_filter(n, &request).unwrap_or(true))
    }
}
