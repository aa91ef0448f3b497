//! Counters and gauges that plugins publish (`host.counter-add`, `host.gauge-set`), shown in
//! the node's metrics as `plugin.<plugin>.<name>`.
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Distinct names one plugin may create; more are ignored (and logged once), so a plugin
/// cannot grow the node's memory through its metric names.
const MAX_NAMES: usize = 256;
const MAX_NAME_LEN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// One published value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MetricSample {
    /// `plugin.<plugin>.<name>`
    pub name: String,
    pub kind: MetricKind,
    pub value: i64,
}

/// Values by metric name, and whether the "too many names" warning was logged.
type Values = (BTreeMap<String, (MetricKind, i64)>, bool);

/// The metrics of one plugin (shared by all its versions and instances).
#[derive(Default)]
pub(crate) struct PluginMetrics {
    values: Mutex<Values>,
}

impl PluginMetrics {
    pub(crate) fn counter_add(&self, plugin: &str, name: &str, delta: u64) {
        self.update(plugin, name, MetricKind::Counter, |v| {
            v.saturating_add(delta.min(i64::MAX as u64) as i64)
        });
    }

    pub(crate) fn gauge_set(&self, plugin: &str, name: &str, value: i64) {
        self.update(plugin, name, MetricKind::Gauge, |_| value);
    }

    fn update(&self, plugin: &str, name: &str, kind: MetricKind, f: impl FnOnce(i64) -> i64) {
        let Ok(mut guard) = self.values.lock() else {
            return;
        };
        let (map, warned) = &mut *guard;
        if let Some(entry) = map.get_mut(name) {
            entry.0 = kind;
            entry.1 = f(entry.1);
            return;
        }
        if map.len() >= MAX_NAMES || name.len() > MAX_NAME_LEN || name.is_empty() {
            if !*warned {
                *warned = true;
                tracing::warn!(plugin, metric = name, "plugin metric ignored: names must be 1..={MAX_NAME_LEN} bytes, at most {MAX_NAMES} per plugin");
            }
            return;
        }
        map.insert(name.to_string(), (kind, f(0)));
    }

    /// The value of counter `name` (0 when never added to, or when `name` is a gauge).
    pub(crate) fn counter(&self, name: &str) -> u64 {
        let Ok(guard) = self.values.lock() else {
            return 0;
        };
        match guard.0.get(name) {
            Some((MetricKind::Counter, v)) => (*v).max(0) as u64,
            _ => 0,
        }
    }

    pub(crate) fn samples(&self, plugin: &str) -> Vec<MetricSample> {
        let Ok(guard) = self.values.lock() else {
            return Vec::new();
        };
        guard
            .0
            .iter()
            .map(|(name, (kind, value))| MetricSample {
                name: format!("plugin.{plugin}.{name}"),
                kind: *kind,
                value: *value,
            })
            .collect()
    }
}
