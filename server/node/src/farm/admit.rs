//! Whether this node accepts an artifact before it is staged (run on `Verify`, once size and
//! sha256 matched, before the content moves under its digest): the kind must be one this
//! node can make live (a `plugin` or an `application` must compile and instantiate, an
//! application's context settings must be valid, its static-file bundle unpack), and no deploy hook may veto it. A refusal becomes this node's `Failed{reason}`, so nobody activates.
use super::application::Applications;
use super::apply::{artifact, placed_order, plugin_config, plugin_place};
use super::bundle::Bundles;
use crate::plugins::Plugins;
use shoal_farm::{Kind, SignedManifest};
use shoal_plugin_host::{DeployDecision, PluginSpec, PluginWorld};
use std::path::Path;

/// A name no context has: a test instance placed there never runs on a request.
const NOWHERE: &str = "\u{0}farm-check";

pub fn admit(
    plugins: &Plugins,
    apps: &Applications,
    bundles: &Bundles,
    sm: &SignedManifest,
    content: &Path,
) -> Result<(), String> {
    let m = &sm.manifest;
    match m.kind {
        Kind::Application => {
            // A bundle is unpacked (and its entries checked) here, before staged.
            let opened = bundles.open_app(content, &m.sha256)?;
            apps.check(sm, opened)?;
        }
        Kind::File => {}
        Kind::Plugin => {
            let bytes = std::fs::read(content)
                .map_err(|e| format!("cannot read {}: {e}", content.display()))?;
            let world = test_instantiate(plugins, &m.name, &bytes, plugin_config(sm))?;
            if let Some(place) = plugin_place(sm)? {
                if !matches!(world, PluginWorld::Valve | PluginWorld::UrlFilter) {
                    return Err(format!(
                        "metadata `before`/`after` place valves and URL filters in a pipeline; {} is a {} (interceptors join the bottom of the stack: reorder them with PUT /api/v1/channel/interceptors/order)",
                        m.name,
                        world.wit_name()
                    ));
                }
                placed_order(plugins, &m.name, place)?;
            }
        }
    }
    if let DeployDecision::Veto(reason) = plugins.registry.deploy_hooks_before(&artifact(sm)) {
        return Err(format!("vetoed by a deploy hook: {reason}"));
    }
    Ok(())
}

/// Compiles the component and creates one instance under a scratch name placed in no
/// context and disabled at once, then unloads it; the world it implements.
fn test_instantiate(
    plugins: &Plugins,
    name: &str,
    bytes: &[u8],
    config: Vec<(String, String)>,
) -> Result<PluginWorld, String> {
    let scratch = format!("farm-check:{name}");
    plugins.placement.set(&scratch, vec![NOWHERE.into()]);
    let spec = PluginSpec {
        config,
        ..PluginSpec::default()
    };
    let r = plugins.registry.load(&scratch, bytes, spec);
    if r.is_ok() {
        let _ = plugins.registry.disable(&scratch);
        let _ = plugins.registry.unload(&scratch);
    }
    plugins.placement.remove(&scratch);
    r.map(|info| info.world)
        .map_err(|e| format!("not a loadable plugin component: {e}"))
}
