//! Helpers shared by the integration tests: a registry with known cluster facts, the
//! example components, request builders.
#![allow(dead_code)]
use shoal_plugin_host::{
    EngineOptions, FailurePolicy, HttpRequest, Limits, MemberFact, PluginRegistry, PluginSpec,
    SharedFacts, ValveOutcome,
};
use std::sync::Arc;

pub fn facts() -> Arc<SharedFacts> {
    let facts = SharedFacts::new(MemberFact {
        id: "00".repeat(16),
        name: "node1".into(),
        address: "127.0.0.1:4000".into(),
        domain: "test".into(),
    });
    facts.set_members(vec![MemberFact {
        name: "node2".into(),
        ..MemberFact::default()
    }]);
    facts.set_active_sessions(3);
    facts
}

pub fn registry() -> Arc<PluginRegistry> {
    Arc::new(PluginRegistry::new(EngineOptions::default(), facts()).expect("plugin engine"))
}

/// An example component built by build.rs; a missing one fails the test with the reason.
pub fn component(name: &str) -> Vec<u8> {
    shoal_plugin_host::examples::component(name).unwrap_or_else(|e| panic!("{e}"))
}

pub fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn spec(pairs: &[(&str, &str)], policy: FailurePolicy) -> PluginSpec {
    PluginSpec {
        config: config(pairs),
        policy,
        ..PluginSpec::default()
    }
}

pub fn spec_limits(pairs: &[(&str, &str)], policy: FailurePolicy, limits: Limits) -> PluginSpec {
    PluginSpec {
        config: config(pairs),
        policy,
        limits,
        world: None,
    }
}

pub fn get(path: &str, query: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        ..HttpRequest::default()
    }
}

/// Status and body text of a response; panics on `Next`.
pub fn answered(outcome: ValveOutcome) -> (u16, String) {
    match outcome {
        ValveOutcome::Respond(r) => (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        ValveOutcome::Next { .. } => panic!("expected a response, the valve passed"),
    }
}
