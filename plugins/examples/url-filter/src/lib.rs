//! Tomcat's ReplicationValve `filter`, as a plugin: requests whose path matches the filter
//! do not touch the session, so it is not replicated after them (static resources, health
//! checks).
//!
//! Config: `filter`: a regex matched against the path (Tomcat's attribute name), and/or
//! `globs`: a comma-separated list like `*.css,*.js,/static/*`. Either matching is enough.
use regex_lite::Regex;
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::url_filter::{Request, UrlFilter};
use shoal_plugin_sdk::util::glob_match;
use std::sync::OnceLock;

struct Filter {
    regex: Option<Regex>,
    globs: Vec<String>,
}

impl Filter {
    fn from_config() -> Filter {
        let regex = host::config_get("filter").and_then(|src| match Regex::new(&src) {
            Ok(re) => Some(re),
            Err(e) => {
                // Without a usable filter every request replicates, which is always safe.
                host::log_error(&format!(
                    "config key `filter` is not a valid regex ({e}); ignoring it"
                ));
                None
            }
        });
        let globs = host::config_get("globs")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Filter { regex, globs }
    }

    fn matches(&self, path: &str) -> bool {
        self.regex.as_ref().is_some_and(|re| re.is_match(path))
            || self.globs.iter().any(|g| glob_match(g, path))
    }
}

/// Compiled once per instance: the configuration cannot change without a reload.
static FILTER: OnceLock<Filter> = OnceLock::new();

struct UrlFilterPlugin;

impl UrlFilter for UrlFilterPlugin {
    fn may_touch_session(req: Request) -> bool {
        !FILTER.get_or_init(Filter::from_config).matches(&req.path)
    }
}

shoal_plugin_sdk::export_url_filter!(UrlFilterPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_or_globs() {
        let f = Filter {
            regex: Regex::new(r"\.(png|ico)$").ok(),
            globs: vec!["/static/*".into()],
        };
        assert!(f.matches("/app/logo.png"));
        assert!(f.matches("/static/app.js"));
        assert!(!f.matches("/app/counter"));
    }
}
