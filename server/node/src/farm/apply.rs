//! Making a slot live on this node, per kind, when the core says `Apply` (and for the
//! persisted catalog at start):
//! - `plugin`: loaded (or hot-reloaded: requests in flight finish on the old version) in the
//!   local [`Plugins`] registry with its config and contexts from the metadata; unloaded on
//!   undeploy. Metadata: `contexts` (comma-separated paths, empty = every context),
//!   `config.<key>` (given to the plugin as `<key>`), and for a valve or URL filter its
//!   place: `before` or `after` a plugin (`before = app`: last, `after = ReplicationValve`:
//!   first), as `shoal ctl plugins load --before/--after`. Without one a new valve goes
//!   first (before the context's application), other new plugins last, and a redeployed
//!   one keeps its place.
//! - `file`: `files/<name>` under the farm dir points at the content (swapped atomically).
//! - `application`: its context created or its pipeline swapped, with its static files
//!   (see `application.rs`, `bundle.rs`);
//!   removed on undeploy, or when a redeploy moves it to another path.
//!
//! The deploy hooks' `after-deploy` / `after-undeploy` run afterwards.
use super::application::Applications;
use super::bundle::Bundles;
use super::content::ContentStore;
use crate::plugins::{ControlOp, Place, PlaceError, Plugins};
use shoal_farm::{Entry, Kind, SignedManifest, Slot, Target};
use shoal_plugin_host::{Artifact, PluginError, PluginWorld};

/// The plugin configuration of a `plugin` artifact (metadata `config.<key>`).
pub fn plugin_config(sm: &SignedManifest) -> Vec<(String, String)> {
    sm.manifest
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("config.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect()
}

/// The contexts of a `plugin` artifact (metadata `contexts`; empty = every context).
pub fn plugin_contexts(sm: &SignedManifest) -> Vec<String> {
    sm.manifest
        .metadata
        .get("contexts")
        .map(|c| {
            c.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The place of a `plugin` artifact among the node's plugins (metadata `before` or
/// `after`); `None`: not given.
pub fn plugin_place(sm: &SignedManifest) -> Result<Option<Place<'_>>, String> {
    let m = &sm.manifest.metadata;
    match (m.get("before"), m.get("after")) {
        (Some(_), Some(_)) => {
            Err("metadata `before` and `after` both given: give one (the plugin's place)".into())
        }
        (Some(b), None) => Ok(Some(Place::Before(b))),
        (None, Some(a)) => Ok(Some(Place::After(a))),
        (None, None) => Ok(None),
    }
}

/// The registry order with plugin `name` at `place`, or why this node cannot place it
/// there (a reason for the rollout, naming the metadata key).
pub fn placed_order(
    plugins: &Plugins,
    name: &str,
    place: Place<'_>,
) -> Result<Vec<String>, String> {
    let (key, stage) = match place {
        Place::Before(s) => ("before", s),
        Place::After(s) => ("after", s),
    };
    plugins.order_with(name, place).map_err(|e| match e {
        PlaceError::NativeStage => format!(
            "metadata `{key}` = {stage:?}: plugins run between ReplicationValve and app, and native stages keep their place; use after = ReplicationValve (first), before = app (last) or a plugin's name"
        ),
        PlaceError::Unknown => {
            let names = plugins.names_except(name);
            format!(
                "metadata `{key}` = {stage:?}: no plugin of that name on this node (its plugins: {})",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )
        }
    })
}

/// What the deploy hooks see of an artifact.
pub fn artifact(sm: &SignedManifest) -> Artifact {
    let m = &sm.manifest;
    let mut metadata: Vec<(String, String)> = m
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    metadata.push(("kind".into(), kind_name(m.kind).into()));
    metadata.push(("version".into(), m.version.clone()));
    Artifact {
        name: m.name.clone(),
        digest: m.sha256.to_string(),
        size: m.size,
        metadata,
    }
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Plugin => "plugin",
        Kind::Application => "application",
        Kind::File => "file",
    }
}

fn kind_of(e: Option<&Entry>) -> Option<Kind> {
    e.and_then(Entry::manifest).map(|sm| sm.manifest.kind)
}

/// Makes `slot.current` live here. `hooks`: run the deploy hooks' after-calls (not when
/// the persisted catalog is re-applied at start).
pub fn apply(
    plugins: &Plugins,
    apps: &Applications,
    store: &ContentStore,
    bundles: &Bundles,
    slot: &Slot,
    hooks: bool,
) -> Result<(), String> {
    let name = slot.current.name.as_str();
    let previous = slot.previous.as_ref().and_then(Entry::manifest);
    let before = kind_of(slot.previous.as_ref());
    match &slot.current.target {
        Target::Removed => {
            remove(plugins, apps, store, name, previous)?;
            if hooks {
                hooks_after(plugins, |h| {
                    plugins.registry.deploy_hook_after_undeploy(h, name)
                });
            }
        }
        Target::Deployed(sm) => {
            let moved = |p: &SignedManifest| {
                p.manifest.kind == Kind::Application
                    && p.manifest.metadata.get("path") != sm.manifest.metadata.get("path")
            };
            if before.is_some_and(|k| k != sm.manifest.kind) || previous.is_some_and(moved) {
                remove(plugins, apps, store, name, previous)?;
            }
            match sm.manifest.kind {
                Kind::Plugin => apply_plugin(plugins, store, name, sm)?,
                Kind::File => {
                    store.link_file(name, &sm.manifest.sha256)?;
                }
                Kind::Application => {
                    let path = store.content_path(&sm.manifest.sha256);
                    apps.install(sm, || {
                        bundles
                            .open_app(&path, &sm.manifest.sha256)
                            .map_err(|e| format!("{}: {e}", sm.manifest))
                    })?
                }
            }
            if hooks {
                let a = artifact(sm);
                hooks_after(plugins, |h| plugins.registry.deploy_hook_after(h, &a));
            }
        }
    }
    Ok(())
}

fn remove(
    plugins: &Plugins,
    apps: &Applications,
    store: &ContentStore,
    name: &str,
    previous: Option<&SignedManifest>,
) -> Result<(), String> {
    match previous.map(|p| p.manifest.kind) {
        Some(Kind::Plugin) if plugins.registry.info(name).is_ok() => plugins
            .apply_local(&ControlOp::Unload { name: name.into() })
            .map(|_| ())
            .map_err(|e| format!("cannot unload plugin {name}: {e}")),
        Some(Kind::File) => {
            store.unlink_file(name);
            Ok(())
        }
        Some(Kind::Application) => previous.map_or(Ok(()), |p| apps.remove(p)),
        _ => Ok(()),
    }
}

fn apply_plugin(
    plugins: &Plugins,
    store: &ContentStore,
    name: &str,
    sm: &SignedManifest,
) -> Result<(), String> {
    let path = store.content_path(&sm.manifest.sha256);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{}: cannot read {}: {e}", sm.manifest, path.display()))?;
    let config = plugin_config(sm);
    let contexts = plugin_contexts(sm);
    let fail = |e: PluginError| format!("{}: {e}", sm.manifest);
    // Checked before staging on every node (`admit`); a plugin named there and removed
    // since only costs the place, not the activation.
    let place = plugin_place(sm).ok().flatten();
    let reorder = |default: Option<Vec<String>>| {
        let order = match place.map(|p| placed_order(plugins, name, p)) {
            Some(Ok(order)) => Some(order),
            Some(Err(why)) => {
                tracing::warn!(plugin = %name, "{}: {why}; left where it is", sm.manifest);
                default
            }
            None => default,
        };
        match order {
            Some(order) => plugins
                .apply_local(&ControlOp::Reorder { order })
                .map(|_| ())
                .map_err(fail),
            None => Ok(()),
        }
    };
    if plugins.registry.info(name).is_ok() {
        plugins
            .apply_local(&ControlOp::Reload {
                name: name.into(),
                bytes: Some(bytes),
            })
            .map_err(fail)?;
        plugins
            .apply_local(&ControlOp::Configure {
                name: name.into(),
                config,
            })
            .map_err(fail)?;
        plugins.placement.set(name, contexts);
        reorder(None)?;
    } else {
        let loaded = plugins
            .apply_local(&ControlOp::Load {
                name: name.into(),
                bytes,
                config,
                limits: Default::default(),
                policy: Default::default(),
                world: None,
                contexts,
            })
            .map_err(fail)?;
        // As for `ctl plugins load`: a new valve goes first among the plugins, so it runs
        // before its context's application (a Wasm app would answer every request first).
        let valve = loaded.is_some_and(|i| i.world == PluginWorld::Valve);
        reorder(valve.then(|| vec![name.to_string()]))?;
    }
    Ok(())
}

fn hooks_after(plugins: &Plugins, f: impl Fn(&str) -> Result<(), PluginError>) {
    for hook in plugins.registry.enabled(PluginWorld::DeployHook) {
        if let Err(e) = f(&hook) {
            tracing::warn!(hook = %hook, "deploy hook failed after the operation: {e}");
        }
    }
}
