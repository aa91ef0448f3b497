//! The `url-filter` world: Tomcat's ReplicationValve filter. Answer whether a request may
//! touch the session; `false` means the session is not replicated after the request.
wit_bindgen::generate!({
    world: "url-filter",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "__export_url_filter_world",
    default_bindings_module: "shoal_plugin_sdk::url_filter",
    runtime_path: "shoal_plugin_sdk::wit_bindgen::rt",
});

pub use self::shoal::plugin::host as raw_host;

pub use self::shoal::plugin::types::{Header, LogLevel, MemberInfo};
/// The trait a URL filter implements.
pub use self::Guest as UrlFilter;

impl Request {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::util::find_header(&self.headers, name)
    }
}

/// Exports a type implementing [`UrlFilter`].
#[macro_export]
macro_rules! export_url_filter {
    ($t:ident) => {
        $crate::url_filter::__export_url_filter_world!($t with_types_in $crate::url_filter);
    };
}
