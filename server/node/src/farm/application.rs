//! The `application` kind: a context of this node whose application is the artifact's
//! component (a `wasi:http/incoming-handler` component or a valve-world component, see
//! [`crate::apps`]). Metadata:
//! - `path` (required): the context path, e.g. `/hello`; it must not be a context of the
//!   config file;
//! - `context` (optional): the context's settings as TOML, the keys of a
//!   `[[http.contexts]]` table except `path` and `app`, e.g.
//!   `session = { manager = "delta" }` or `url_filter = ""` (defaults: those of a context
//!   in the config file);
//! - `config.<key>`: given to a valve-world application as `<key>`.
//!
//! The artifact may be a bundle (see `bundle.rs`): `component.wasm` and `static/…`, the
//! files served under the context path before the application (ETag = their sha256).
//!
//! Before staging ([`Applications::check`]): the context settings are validated and the
//! component is compiled and instantiated once; the instance is kept for the apply, so a
//! node compiles an application once. Apply ([`Applications::install`]): the context is
//! created or its pipeline swapped atomically (same session settings: the manager and its
//! sessions are kept), with this node's drain valve, wasm valves and url filters as the
//! contexts of the config file get them. Undeploy ([`Applications::remove`]): the context
//! goes (404 afterwards) once its store is flushed.
use super::bundle::Opened;
use crate::apps::{app_from_component, AppConfig, AppHosts};
use crate::drain::Drain;
use crate::plugins::Plugins;
use crate::url_filters::WasmUrlFilters;
use crate::wasm_valves::WasmValves;
use shoal_farm::{Digest, SignedManifest};
use shoal_http::{
    App, ContextConfig, ContextParts, HttpNode, Installed, StaticFiles, UrlFilter, Valve,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an undeploy waits for the context's store to be flushed.
const STORE_DEADLINE: Duration = Duration::from_secs(10);
/// Checked applications kept for their apply (an aborted rollout leaves one behind).
const CHECKED_MAX: usize = 16;

type CheckedKey = (Digest, BTreeMap<String, String>);

/// A compiled application and its static files, ready to be installed.
#[derive(Clone)]
struct Checked {
    app: Arc<dyn App>,
    static_files: Option<StaticFiles>,
}

/// What the farm needs to run applications on this node.
pub struct Applications {
    hosts: AppHosts,
    http: Arc<HttpNode>,
    plugins: Arc<Plugins>,
    drain: Drain,
    checked: Mutex<HashMap<CheckedKey, Checked>>,
}

impl Applications {
    pub fn new(
        hosts: AppHosts,
        http: Arc<HttpNode>,
        plugins: Arc<Plugins>,
        drain: Drain,
    ) -> Arc<Applications> {
        Arc::new(Applications {
            hosts,
            http,
            plugins,
            drain,
            checked: Mutex::new(HashMap::new()),
        })
    }

    /// The context an `application` artifact creates, from its metadata, validated; not one
    /// of the config file's contexts.
    pub fn context_config(&self, sm: &SignedManifest) -> Result<ContextConfig, String> {
        let ctx = context_of(sm)?;
        let m = &sm.manifest;
        if self
            .http
            .config()
            .contexts
            .iter()
            .any(|c| c.path == ctx.path)
        {
            return Err(format!(
                "application {}: context {} is defined in this node's config file ([[http.contexts]]); choose another path",
                m.name, ctx.path
            ));
        }
        Ok(ctx)
    }

    fn app_config(sm: &SignedManifest) -> AppConfig {
        let mut c = AppConfig::new(format!("{}", sm.manifest));
        c.config = super::apply::plugin_config(sm);
        c
    }

    fn key(sm: &SignedManifest) -> CheckedKey {
        (sm.manifest.sha256, sm.manifest.metadata.clone())
    }

    /// Compiles and instantiates the component (blocking the farm thread).
    fn compile(&self, sm: &SignedManifest, bytes: &[u8]) -> Result<Arc<dyn App>, String> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| "no Tokio runtime to run the application check on".to_string())?;
        let (app, kind) = rt
            .block_on(app_from_component(&self.hosts, bytes, Self::app_config(sm)))
            .map_err(|e| e.to_string())?;
        tracing::info!("farm: application {} compiled ({kind:?})", sm.manifest);
        Ok(app)
    }

    /// The checks before staging: the context settings, then compile and instantiate.
    pub fn check(&self, sm: &SignedManifest, opened: Opened) -> Result<(), String> {
        self.context_config(sm)?;
        let app = self.compile(sm, &opened.component)?;
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.len() >= CHECKED_MAX {
            checked.clear();
        }
        let static_files = opened.static_files;
        checked.insert(Self::key(sm), Checked { app, static_files });
        Ok(())
    }

    /// Creates the context or swaps its pipeline (application and static files together)
    /// atomically. `open` reads the artifact when it was not checked since this start.
    pub fn install(
        &self,
        sm: &SignedManifest,
        open: impl FnOnce() -> Result<Opened, String>,
    ) -> Result<(), String> {
        let ctx = self.context_config(sm)?;
        let cached = self
            .checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&Self::key(sm));
        let Checked { app, static_files } = match cached {
            Some(c) => c,
            None => {
                let opened = open()?;
                Checked {
                    app: self.compile(sm, &opened.component)?,
                    static_files: opened.static_files,
                }
            }
        };
        let files = static_files.as_ref().map_or(0, StaticFiles::len);
        let path = ctx.path.clone();
        let wasm: Arc<dyn Valve> = Arc::new(WasmValves {
            registry: self.plugins.registry.clone(),
            context: path.clone(),
            placement: self.plugins.placement.clone(),
        });
        let filter: Arc<dyn UrlFilter> = Arc::new(WasmUrlFilters {
            registry: self.plugins.registry.clone(),
            context: path.clone(),
            placement: self.plugins.placement.clone(),
        });
        let parts = ContextParts {
            app: Some(app),
            // The drain mark goes on every response, as on the config file's contexts.
            valves: vec![self.drain.valve(), wasm],
            url_filter: Some(filter),
            static_files,
            store: None,
        };
        let how = self
            .http
            .install_context(ctx, parts)
            .map_err(|e| format!("application {}: {e}", sm.manifest))?;
        let what = match how {
            Installed::Created => "created",
            Installed::Replaced => "replaced (sessions kept)",
            Installed::ReplacedManager => {
                "replaced with a new session manager (its sessions come back from the other nodes)"
            }
        };
        tracing::info!(
            "farm: context {path} of application {} {what}, {files} static files",
            sm.manifest
        );
        Ok(())
    }

    /// Removes the context of a removed application (nothing when it is not there).
    pub fn remove(&self, sm: &SignedManifest) -> Result<(), String> {
        let Some(path) = sm
            .manifest
            .metadata
            .get("path")
            .map(|p| p.trim().to_string())
        else {
            return Ok(());
        };
        if self.http.config().contexts.iter().any(|c| c.path == path) {
            return Ok(());
        }
        let rt = tokio::runtime::Handle::try_current().map_err(|_| {
            format!(
                "application {}: no Tokio runtime to remove context {path} on",
                sm.manifest
            )
        })?;
        if rt.block_on(self.http.remove_context(&path, STORE_DEADLINE)) {
            tracing::info!(
                "farm: context {path} of application {} removed",
                sm.manifest
            );
        }
        Ok(())
    }
}

/// The context an `application` artifact creates, from its metadata (`path`, `context`),
/// validated.
pub fn context_of(sm: &SignedManifest) -> Result<ContextConfig, String> {
    let m = &sm.manifest;
    let path = m
            .metadata
            .get("path")
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                format!(
                    "application {}: metadata `path` is required (the context path, e.g. meta.path=/hello)",
                    m.name
                )
            })?;
    let mut ctx = match m.metadata.get("context") {
        None => ContextConfig::default(),
        Some(text) if text.trim_start().starts_with('/') => {
            return Err(format!(
                "application {}: metadata `context` is {text:?}: the context path goes in metadata `path`; `context` holds TOML settings such as session = {{ manager = \"delta\" }}",
                m.name
            ))
        }
        Some(text) => {
            let table: toml::Table = toml::from_str(text).map_err(|e| {
                format!(
                    "application {}: metadata `context` is not valid TOML: {e}",
                    m.name
                )
            })?;
            if let Some(k) = ["path", "app"].iter().find(|k| table.contains_key(**k)) {
                return Err(format!(
                        "application {}: metadata `context` must not set `{k}` (the path is metadata `path`, the application is the artifact)",
                        m.name
                    ));
            }
            table.try_into::<ContextConfig>().map_err(|e| {
                    format!(
                        "application {}: metadata `context`: {e} (the keys of a [[http.contexts]] table: url_filter, jvm_route_binder, session)",
                        m.name
                    )
                })?
        }
    };
    ctx.path = path.to_string();
    ctx.app = format!("application {}", m.name);
    ctx.validate()
        .map_err(|e| format!("application {}: {e}", m.name))?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::context_of;
    use shoal_farm::{Digest, Kind, Manifest, SignedManifest};

    fn app(meta: &[(&str, &str)]) -> SignedManifest {
        SignedManifest {
            manifest: Manifest {
                name: "shop".into(),
                version: "1".into(),
                kind: Kind::Application,
                sha256: Digest::of(b"x"),
                size: 1,
                metadata: meta
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            signature: None,
        }
    }

    fn refused(meta: &[(&str, &str)]) -> String {
        match context_of(&app(meta)) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_context_comes_from_path_and_a_toml_context() {
        let c = context_of(&app(&[("path", "/shop")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.path, "/shop");
        assert_eq!(c.session, shoal_http::ContextConfig::default().session);
        let c = context_of(&app(&[
            ("path", " /shop "),
            (
                "context",
                "url_filter = \"\"\nsession = { manager = \"backup\" }",
            ),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.path, "/shop");
        assert_eq!(c.url_filter, "");
        assert_eq!(c.session.manager, shoal_session::ManagerKind::Backup);
    }

    #[test]
    fn bad_metadata_is_refused_with_the_key() {
        assert!(refused(&[]).contains("metadata `path` is required"));
        assert!(refused(&[("path", "shop")]).contains("shop"));
        let e = refused(&[("path", "/shop"), ("context", "path = \"/x\"")]);
        assert!(e.contains("must not set `path`"), "{e}");
        let e = refused(&[("path", "/shop"), ("context", "sesion = 1")]);
        assert!(
            e.contains("metadata `context`") && e.contains("sesion"),
            "{e}"
        );
        let e = refused(&[("path", "/shop"), ("context", "/shop")]);
        assert!(e.contains("goes in metadata `path`"), "{e}");
        let e = refused(&[("path", "/shop"), ("context", "session = {")]);
        assert!(e.contains("not valid TOML"), "{e}");
    }
}
