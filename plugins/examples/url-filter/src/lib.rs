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

mod pool_alloc;

/// Small blocks from free lists: each call allocates and frees the request's strings.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();

struct Filter {
    regex: Option<Regex>,
    globs: Vec<Glob>,
}

/// A glob, sorted at load time into the shapes filters use most (`*.css`, `/static/*`,
/// an exact path) so that each request costs one `ends_with` / `starts_with` per glob;
/// anything else goes through the general matcher.
#[derive(Debug, PartialEq)]
enum Glob {
    Exact(String),
    Prefix(String),
    Suffix(String),
    General(String),
}

impl Glob {
    fn new(g: &str) -> Glob {
        let special = |s: &str| s.contains(['*', '?']);
        if !special(g) {
            Glob::Exact(g.to_string())
        } else if let Some(rest) = g.strip_prefix('*').filter(|r| !special(r)) {
            Glob::Suffix(rest.to_string())
        } else if let Some(rest) = g.strip_suffix('*').filter(|r| !special(r)) {
            Glob::Prefix(rest.to_string())
        } else {
            Glob::General(g.to_string())
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Glob::Exact(g) => path == g,
            Glob::Prefix(p) => path.starts_with(p.as_str()),
            Glob::Suffix(s) => path.ends_with(s.as_str()),
            Glob::General(g) => glob_match(g, path),
        }
    }
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
                    .map(Glob::new)
                    .collect()
            })
            .unwrap_or_default();
        Filter { regex, globs }
    }

    fn matches(&self, path: &str) -> bool {
        self.regex.as_ref().is_some_and(|re| re.is_match(path))
            || self.globs.iter().any(|g| g.matches(path))
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
            globs: vec![Glob::new("/static/*")],
        };
        assert!(f.matches("/app/logo.png"));
        assert!(f.matches("/static/app.js"));
        assert!(!f.matches("/app/counter"));
    }

    #[test]
    fn glob_shapes_match_like_the_general_matcher() {
        let globs = [
            "*.css",
            "/static/*",
            "/health",
            "/a*b",
            "*",
            "/x?",
            "**.js",
            "",
        ];
        let paths = [
            "/app/site.css",
            "/static/a/b",
            "/health",
            "/a/b",
            "/ab",
            "/xy",
            "",
            "/x.js",
        ];
        for g in globs {
            let glob = Glob::new(g);
            for p in paths {
                assert_eq!(
                    glob.matches(p),
                    glob_match(g, p),
                    "{g:?} on {p:?} ({glob:?})"
                );
            }
        }
        assert_eq!(Glob::new("*.css"), Glob::Suffix(".css".into()));
        assert_eq!(Glob::new("/static/*"), Glob::Prefix("/static/".into()));
        assert_eq!(Glob::new("/health"), Glob::Exact("/health".into()));
    }
}
