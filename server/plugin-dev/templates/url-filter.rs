//! {{name}}: a shoal URL filter (world `url-filter`). A request whose path ends with one of
//! the configured suffixes does not replicate the session (static resources).
//! Configuration: `suffixes` (comma-separated, default `.css,.js,.png`).
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::url_filter::{Request, UrlFilter};

struct Plugin;

impl UrlFilter for Plugin {
    fn may_touch_session(req: Request) -> bool {
        let suffixes = host::config_get("suffixes").unwrap_or_else(|| ".css,.js,.png".into());
        let static_resource = suffixes
            .split(',')
            .map(str::trim)
            .any(|s| !s.is_empty() && req.path.ends_with(s));
        !static_resource
    }
}

shoal_plugin_sdk::export_url_filter!(Plugin);
