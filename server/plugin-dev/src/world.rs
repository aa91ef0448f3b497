//! The kinds of plugin `shoal plugin new` writes, and the SDK world each one is built for.
use shoal_plugin_host::PluginWorld;

/// What `shoal plugin new <world>` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A valve: sees each request of its contexts, passes it on (adding headers) or answers.
    Valve,
    /// An application: a valve that answers every request of its context.
    App,
    /// A URL filter: says which requests must not replicate the session.
    UrlFilter,
    /// A channel interceptor: sees (and may rewrite or drop) messages between nodes.
    Interceptor,
    /// A deploy hook: allows or vetoes farm deployments.
    DeployHook,
}

impl Kind {
    /// The SDK feature (= the WIT world) the crate enables.
    pub fn sdk_feature(self) -> &'static str {
        match self {
            Kind::Valve | Kind::App => "valve",
            Kind::UrlFilter => "url-filter",
            Kind::Interceptor => "channel-interceptor",
            Kind::DeployHook => "deploy-hook",
        }
    }

    /// The world a node sees, and what `shoal ctl plugins load --world` takes.
    pub fn host_world(self) -> PluginWorld {
        world_of_feature(self.sdk_feature()).unwrap_or(PluginWorld::Valve)
    }

    /// The name written in the scaffold's `[package.metadata.shoal] kind`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Valve => "valve",
            Kind::App => "app",
            Kind::UrlFilter => "url-filter",
            Kind::Interceptor => "interceptor",
            Kind::DeployHook => "deploy-hook",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        [
            Kind::Valve,
            Kind::App,
            Kind::UrlFilter,
            Kind::Interceptor,
            Kind::DeployHook,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// The world of an SDK feature name.
pub(crate) fn world_of_feature(feature: &str) -> Option<PluginWorld> {
    Some(match feature {
        "valve" => PluginWorld::Valve,
        "url-filter" => PluginWorld::UrlFilter,
        "channel-interceptor" => PluginWorld::ChannelInterceptor,
        "deploy-hook" => PluginWorld::DeployHook,
        _ => return None,
    })
}
