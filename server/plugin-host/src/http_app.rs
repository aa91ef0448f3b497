//! `wasi:http` applications: a component exporting `wasi:http/incoming-handler` (what
//! `wasmtime serve` and Spin run) serving a context, with shoal's session reachable
//! through the optional `shoal:http-app/session` import (`wit/http-app/world.wit`).
//!
//! [`HttpAppHost`] (one per node) owns the engine, its epoch ticker and the linker
//! (WASI 0.2 with nothing granted, `wasi:http` with outgoing requests denied, the session
//! interface). [`HttpAppHost::load`] compiles a component, checks its imports and export
//! and instantiates it once, so a deployer can report `failed: <reason>` before
//! activation. [`HttpApp::handle`] runs one request on a fresh instance (the `wasi:http`
//! model): within the limits' memory and time (an endless loop is interrupted by epoch,
//! a guest waiting forever by the wall-clock timeout), and with at most
//! `max_instances` requests at once. The response is buffered up to
//! `max_output_bytes` and returned once the guest has finished, so every session change
//! it made is in before the context's replication valve commits the session.
//! Failures become a response naming the application and the reason (500 for a trap or
//! a bad response, 503 when busy, 504 on the time limit), never a hung request.
use crate::engine::Ticker;
use crate::error::PluginError;
use crate::session::SessionAccess;
use crate::state::Limiter;
use crate::types::Limits;
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/http-app",
        world: "shoal:http-app/session-host",
    });
}

use bindings::shoal::http_app::session;

/// The export every application must have (any 0.2.x version: wasmtime matches
/// semver-compatible names).
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2";
/// Granularity of the time limit.
const TICK: Duration = Duration::from_millis(1);

/// One node's `wasi:http` application engine, created by the first application loaded: a
/// node without applications never maps or runs wasmtime's compiler.
pub struct HttpAppHost {
    engine: OnceLock<Arc<AppEngine>>,
    /// Serializes the engine's creation.
    init: Mutex<()>,
}

/// The engine, its epoch ticker and the linker.
struct AppEngine {
    engine: Engine,
    linker: Linker<AppState>,
    ticker: Ticker,
}

/// One compiled application, ready to serve.
pub struct HttpApp {
    name: String,
    digest: String,
    pre: ProxyPre<AppState>,
    limits: Limits,
    host: Arc<AppEngine>,
    busy: Arc<Semaphore>,
}

impl HttpAppHost {
    /// The host; its engine is built by the first [`HttpAppHost::load`].
    pub fn new() -> Result<Arc<HttpAppHost>, PluginError> {
        Ok(Arc::new(HttpAppHost {
            engine: OnceLock::new(),
            init: Mutex::new(()),
        }))
    }

    /// The engine, created on first use (an error is returned to every load until one
    /// succeeds).
    fn engine(&self) -> Result<&Arc<AppEngine>, PluginError> {
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        let _init = self.init.lock().map_err(|_| {
            PluginError::Engine("a lock was poisoned by a panic; restart the node".into())
        })?;
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let linker = linker(&engine)
            .map_err(|e| PluginError::Engine(format!("linking wasi:http imports: {e:#}")))?;
        let ticker = Ticker::start(&engine, TICK);
        Ok(self.engine.get_or_init(|| {
            Arc::new(AppEngine {
                engine,
                linker,
                ticker,
            })
        }))
    }

    /// Compiles `bytes` as application `name`, checks that every import is provided and
    /// the handler exported. Errors name `name` and the reason;
    /// [`PluginError::NotHttpApp`] for a component without the handler (e.g. a valve).
    pub fn load(
        self: &Arc<Self>,
        name: &str,
        bytes: &[u8],
        limits: Limits,
    ) -> Result<HttpApp, PluginError> {
        let compile = |reason: String| PluginError::Compile {
            name: name.to_string(),
            reason,
        };
        if bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
            return Err(PluginError::CoreModule {
                name: name.to_string(),
            });
        }
        let host = self.engine()?;
        let component =
            Component::new(&host.engine, bytes).map_err(|e| compile(format!("{e:#}")))?;
        if !exports_handler(&host.engine, &component) {
            return Err(PluginError::NotHttpApp {
                name: name.to_string(),
            });
        }
        let pre = host
            .linker
            .instantiate_pre(&component)
            .map_err(|e| compile(format!("imports shoal cannot provide: {e:#}")))?;
        let pre = ProxyPre::new(pre).map_err(|e| compile(format!("{e:#}")))?;
        let app = HttpApp {
            name: name.to_string(),
            digest: hex::encode(Sha256::digest(bytes)),
            pre,
            busy: Arc::new(Semaphore::new(limits.max_instances.max(1) as usize)),
            limits,
            host: host.clone(),
        };
        Ok(app)
    }
}

fn exports_handler(engine: &Engine, c: &Component) -> bool {
    c.component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with(INCOMING_HANDLER))
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<AppState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    session::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// What a failed request is answered with.
#[derive(Debug)]
pub struct AppFailure {
    pub status: u16,
    pub reason: String,
}

impl HttpApp {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the component's bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Instantiates the application once without calling it (the deployer's check that
    /// it starts within its memory limit).
    pub async fn check(&self) -> Result<(), PluginError> {
        let mut store = self.store(None);
        self.pre
            .instantiate_async(&mut store)
            .await
            .map(|_| ())
            .map_err(|e| PluginError::Compile {
                name: self.name.clone(),
                reason: format!("does not instantiate: {e:#}"),
            })
    }

    fn store(&self, session: Option<Box<dyn SessionAccess + Send>>) -> Store<AppState> {
        let mut store = Store::new(
            &self.host.engine,
            AppState {
                limiter: Limiter {
                    memory_bytes: self.limits.memory_bytes,
                    hit: false,
                },
                wasi: WasiCtx::builder()
                    .allow_tcp(false)
                    .allow_udp(false)
                    .allow_ip_name_lookup(false)
                    .socket_addr_check(|_, _| Box::pin(async { false }))
                    .build(),
                http: WasiHttpCtx::new(),
                hooks: NoOutgoing,
                table: ResourceTable::new(),
                session,
            },
        );
        store.limiter(|s| &mut s.limiter);
        let ticks = (self.limits.call_timeout.as_nanos() / TICK.as_nanos()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    /// Runs `req` (its path as the client sent it, context included) on a fresh instance,
    /// lending it `session`. The response body is complete; a failure is an
    /// [`AppFailure`] whose status and reason the caller sends.
    pub async fn handle<B>(
        &self,
        req: http::Request<B>,
        session: Box<dyn SessionAccess + Send>,
    ) -> Result<http::Response<Bytes>, AppFailure>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let fail = |status: u16, reason: String| AppFailure { status, reason };
        let Ok(permit) = self.busy.clone().try_acquire_owned() else {
            return Err(fail(
                503,
                format!(
                    "all {} instances of application {} are busy",
                    self.limits.max_instances, self.name
                ),
            ));
        };
        let ticking = self.host.ticker.guard();
        let req = req
            .map(|b| b.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string()))));
        let mut store = self.store(Some(session));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let setup = (|| -> wasmtime::Result<_> {
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            Ok((req, out))
        })();
        let (req, out) =
            setup.map_err(|e: wasmtime::Error| fail(400, format!("request refused: {e:#}")))?;
        let pre = self.pre.clone();
        let host = self.host.clone();
        let guest = async move {
            // Held while the guest runs, even past the caller's timeout: the engine and its
            // epoch ticker live and tick until the guest reaches its deadline (a guest
            // outliving its host would loop forever), and the instance counts as busy.
            let _running = (permit, ticking, host);
            let proxy = pre.instantiate_async(&mut store).await?;
            let r = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await;
            let memory_hit = store.data().limiter.hit;
            r.map_err(|e| {
                if memory_hit {
                    e.context("memory limit")
                } else {
                    e
                }
            })
        };
        let max = self.limits.max_output_bytes;
        // The guest runs in its own task: it may go on writing the body after it has set
        // the response, and the body is read here meanwhile. Aborted at the time limit.
        let mut task = tokio::spawn(guest);
        let abort = task.abort_handle();
        let run = async move {
            let response = match receiver.await {
                Ok(Ok(resp)) => Ok(resp),
                Ok(Err(code)) => Err(format!("the application answered an error: {code:?}")),
                Err(_) => Err(String::new()),
            };
            let response = match response {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = http_body_util::Limited::new(body, max).collect().await;
                    match body {
                        Ok(b) => Ok(http::Response::from_parts(parts, b.to_bytes())),
                        Err(e) => Err(format!("response body: {e} (limit {max} bytes)")),
                    }
                }
                Err(e) => Err(e),
            };
            let outcome = match (&mut task).await {
                Ok(r) => r.map_err(|e| describe(&e)),
                Err(e) => Err(format!("the application's task ended: {e}")),
            };
            match (response, outcome) {
                (Ok(resp), Ok(())) => Ok(resp),
                (_, Err(why)) => Err((500, why)),
                (Err(why), Ok(())) if why.is_empty() => {
                    Err((500, "the application never set a response".to_string()))
                }
                (Err(why), Ok(())) => Err((500, why)),
            }
        };
        match tokio::time::timeout(self.limits.call_timeout, run).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err((status, why))) => Err(fail(
                if why.contains("time limit") {
                    504
                } else {
                    status
                },
                format!("application {}: {why}", self.name),
            )),
            Err(_) => {
                abort.abort();
                Err(fail(
                    504,
                    format!(
                        "application {}: no complete response within its time limit of {:?}",
                        self.name, self.limits.call_timeout
                    ),
                ))
            }
        }
    }
}

fn describe(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "interrupted at its time limit".into(),
        _ => format!("failed: {e:#}"),
    }
}

/// Outgoing requests are refused: an application answers requests, it does not call out.
struct NoOutgoing;

impl WasiHttpHooks for NoOutgoing {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<
                            dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                                + Send,
                        >,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

struct AppState {
    limiter: Limiter,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoing,
    table: ResourceTable,
    session: Option<Box<dyn SessionAccess + Send>>,
}

impl WasiView for AppState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for AppState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl session::Host for AppState {
    fn id(&mut self) -> Option<String> {
        self.session.as_ref()?.id()
    }
    fn is_new(&mut self) -> bool {
        self.session.as_ref().is_some_and(|s| s.is_new())
    }
    fn get(&mut self, name: String) -> Option<Vec<u8>> {
        self.session.as_ref()?.get(&name)
    }
    fn set(&mut self, name: String, value: Vec<u8>) {
        if let Some(s) = self.session.as_mut() {
            s.set(&name, value);
        }
    }
    fn remove(&mut self, name: String) {
        if let Some(s) = self.session.as_mut() {
            s.remove(&name);
        }
    }
    fn attribute_names(&mut self) -> Vec<String> {
        self.session
            .as_ref()
            .map(|s| s.attribute_names())
            .unwrap_or_default()
    }
    fn invalidate(&mut self) {
        if let Some(s) = self.session.as_mut() {
            s.invalidate();
        }
    }
    fn create(&mut self) -> String {
        self.session
            .as_mut()
            .map(|s| s.create())
            .unwrap_or_default()
    }
}
