//! Reading an interceptor's key/value options (from the node's TOML config) strictly:
//! every key must be known, every value must parse, and errors name the key.
use std::collections::BTreeMap;
use std::time::Duration;

/// Tomcat spells attributes in camelCase (`maxSize`), TOML in snake_case (`max_size`):
/// both are accepted.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) struct Opts<'a> {
    layer: &'a str,
    map: BTreeMap<String, (&'a str, &'a str)>,
}

impl<'a> Opts<'a> {
    pub(super) fn new(layer: &'a str, raw: &'a BTreeMap<String, String>) -> Self {
        let map = raw
            .iter()
            .map(|(k, v)| (snake(k), (k.as_str(), v.as_str())))
            .collect();
        Opts { layer, map }
    }

    fn err(&self, key: &str, raw: &str, want: &str) -> String {
        format!(
            "interceptor {}: option '{key}' = '{raw}' is not {want}",
            self.layer
        )
    }

    pub(super) fn str(&mut self, key: &str) -> Option<String> {
        self.map.remove(key).map(|(_, v)| v.to_string())
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &mut self,
        key: &str,
        want: &str,
    ) -> Result<Option<T>, String> {
        match self.map.remove(key) {
            None => Ok(None),
            Some((k, v)) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| self.err(k, v, want)),
        }
    }

    pub(super) fn usize(&mut self, key: &str, default: usize) -> Result<usize, String> {
        Ok(self
            .parse(key, "a non-negative integer")?
            .unwrap_or(default))
    }

    pub(super) fn u32(&mut self, key: &str, default: u32) -> Result<u32, String> {
        Ok(self
            .parse(key, "a non-negative integer")?
            .unwrap_or(default))
    }

    /// A duration in milliseconds (Tomcat's unit for every timeout).
    pub(super) fn millis(&mut self, key: &str, default: Duration) -> Result<Duration, String> {
        let ms: Option<u64> = self.parse(key, "a duration in milliseconds")?;
        Ok(ms.map(Duration::from_millis).unwrap_or(default))
    }

    /// `option_flag` (Tomcat: optionFlag): decimal or 0x hex.
    pub(super) fn option_flag(&mut self, default: u32) -> Result<u32, String> {
        let Some((k, v)) = self.map.remove("option_flag") else {
            return Ok(default);
        };
        let t = v.trim();
        let r = match t.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16),
            None => t.parse(),
        };
        r.map_err(|_| self.err(k, v, "a flag value (e.g. 8 or 0x08)"))
    }

    /// Fails on any key nobody asked for.
    pub(super) fn finish(self, known: &[&str]) -> Result<(), String> {
        if self.map.is_empty() {
            return Ok(());
        }
        let unknown: Vec<&str> = self.map.values().map(|(k, _)| *k).collect();
        Err(format!(
            "interceptor {}: unknown option(s) {} (known: {})",
            self.layer,
            unknown.join(", "),
            known.join(", ")
        ))
    }
}
