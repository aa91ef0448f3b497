//! The `channel-interceptor` world: a layer of the group channel's interceptor stack.
//! `on-send` runs for outgoing messages whose option bits contain `option-flag` (0 = all),
//! `on-receive` for incoming ones.
wit_bindgen::generate!({
    world: "channel-interceptor",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "__export_interceptor_world",
    default_bindings_module: "shoal_plugin_sdk::interceptor",
    runtime_path: "shoal_plugin_sdk::wit_bindgen::rt",
});

pub use self::shoal::plugin::host as raw_host;
pub use self::shoal::plugin::types::LogLevel;
/// The trait an interceptor implements.
pub use self::Guest as Interceptor;

/// Exports a type implementing [`Interceptor`].
#[macro_export]
macro_rules! export_interceptor {
    ($t:ident) => {
        $crate::interceptor::__export_interceptor_world!($t with_types_in $crate::interceptor);
    };
}
