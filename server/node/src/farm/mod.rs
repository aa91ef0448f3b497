//! The farm deployer of a node: the sans-io core (`shoal_farm`) wired to the cluster
//! channel, the disk and the plugin registry. [`Farm`] is the handle the node and its admin
//! API hold.
//!
//! `[farm]` of the config ([`FarmSettings`], with `[farm.faults]`) lives in shoal-farm, so
//! that shoal-config reads it without this crate.
//!
//! - `frame.rs`: farm messages on the channel (magic prefix + `shoal_farm::encode`).
//! - `driver.rs`: the thread owning the `FarmCore` (inputs, timer, actions, published view).
//! - `content.rs`: the content-addressed directory (staging, verify, catalog file, links).
//! - `upload.rs`: a streamed upload into a staging file, with the size limit.
//! - `admit.rs`: the checks before staging (kind, test instantiation, deploy hooks' veto).
//! - `apply.rs`: making a slot live per kind (plugin, application, file) and the hooks after.
//! - `application.rs`: the `application` kind: a context installed with its component.
//! - `bundle.rs`: an application's static files (a tar with `component.wasm` and `static/`),
//!   unpacked with limits into `static/<sha256>/` and served under the context.
//! - `view.rs`: what the API reads ([`FarmView`]) and the notices for the event stream.
//! - `metrics.rs`: counters and their `/metrics` lines.
//! - `watch_dir.rs`: `[farm] watch_dir`, files dropped there deployed, removed ones undeployed.
mod admit;
mod application;
mod apply;
mod bundle;
mod content;
mod driver;
mod frame;
mod metrics;
mod upload;
mod view;
mod watch_dir;

pub use application::Applications;
pub use apply::kind_name;
pub use frame::is_farm;
pub use metrics::FarmMetrics;
pub use shoal_farm::{FarmFaults, FarmSettings, NODE_DIR};
pub use upload::UploadError;
pub use view::{FarmView, Notice};

use crate::plugins::Plugins;
use driver::{Driver, Input, Started};
use futures::Stream;
use shoal_cluster::roles::{META_ROLE, ROLE_NODE};
use shoal_cluster::Member;
use shoal_farm::{FarmCore, FarmError, Holder, Kind, Manifest, NodeId, Outcome, SignedManifest};
use shoal_net::{Channel, MembershipEvent};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot, watch};

/// What `PUT /api/v1/deployments/{name}` asks for, besides the body.
#[derive(Clone, Debug)]
pub struct DeployRequest {
    pub name: String,
    /// Defaults to the first 12 hex digits of the sha256.
    pub version: Option<String>,
    pub kind: Kind,
    pub metadata: BTreeMap<String, String>,
    /// ed25519 signature (64 bytes) over the manifest's canonical bytes.
    pub signature: Option<Vec<u8>>,
}

/// Why a deploy, undeploy or rollback did not go live everywhere.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error(transparent)]
    Farm(#[from] FarmError),
    /// Nobody activated; the text names each node and its reason. `conflict`: another
    /// rollout of the name held a member (two deploys at once).
    #[error("{name}: nothing was activated: {summary}")]
    Aborted {
        name: String,
        summary: String,
        conflict: Option<Holder>,
    },
    /// Another request on this node is changing the name (its rollout, once started).
    #[error("deployment {0:?} is being changed by another request on this node; retry when it has finished")]
    Busy(String, Option<Holder>),
    #[error("{0}")]
    Unavailable(String),
}

/// A node's farm deployer.
pub struct Farm {
    tx: Mutex<Sender<Input>>,
    view: Arc<Mutex<FarmView>>,
    ready: watch::Receiver<bool>,
    settings: FarmSettings,
    busy: Mutex<BTreeSet<String>>,
    pub metrics: Arc<FarmMetrics>,
    notices: broadcast::Sender<Notice>,
}

/// The farm thread's work (writing chunks, the sha256 of whole artifacts, compiling
/// components) and the upload writer's (sha256 and writes of an upload) yield the CPU to
/// serving requests: nice 10 for the calling thread (on Linux the nice value is per
/// thread). A deploy on a busy node takes longer; requests do not wait.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::debug!("farm thread: cannot lower its priority: {e}");
    }
}

/// Members that run a farm: nodes (balancers and bare channel members do not).
fn is_farm_peer(m: &Member) -> bool {
    m.meta.get(META_ROLE).map(String::as_str) == Some(ROLE_NODE)
}

/// Removes the name from the busy set when the request ends, however it ends.
struct BusyGuard<'a>(&'a Farm, String);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.busy.lock() {
            b.remove(&self.1);
        }
    }
}

impl Farm {
    /// Opens the farm dir, starts the driver (which first makes the persisted deployments
    /// live again) and the membership follower. Needs a Tokio runtime (the caller's).
    pub fn start(
        settings: FarmSettings,
        channel: Channel,
        plugins: Arc<Plugins>,
        apps: Arc<Applications>,
    ) -> Result<Arc<Farm>, String> {
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let cfg = settings.core_config(incarnation)?;
        // From here on `settings.dir` is this node's own directory (`{node}` expanded).
        let mut settings = settings;
        settings.dir = settings.node_dir(&channel.local().name);
        let store = content::ContentStore::open(&settings.dir)?;
        let bundles = bundle::Bundles::open(
            settings.dir.join("static"),
            bundle::Limits {
                max_files: settings.static_max_files,
                max_bytes: settings.static_max_bytes,
            },
        )?;
        let catalog = store
            .load_catalog()
            .map_err(|e| format!("[farm] dir: {e}"))?;
        let me = channel.local().name.clone();
        let mut view = FarmView {
            me: me.clone(),
            ..FarmView::default()
        };
        view.catalog = catalog.slots().cloned().collect();
        let tick = cfg.retry_after / 2;
        let core = FarmCore::new(
            NodeId::new(me),
            cfg,
            catalog,
            store.verified(),
            Instant::now(),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready) = watch::channel(false);
        let (notices, _) = broadcast::channel(256);
        let metrics = Arc::new(FarmMetrics::default());
        let view = Arc::new(Mutex::new(view));
        // Subscribed before the members are listed: a member that joins in between is
        // reported twice at worst (harmless).
        let events = channel.subscribe();
        for m in channel.members().into_iter().filter(is_farm_peer) {
            let _ = tx.send(Input::Up {
                name: NodeId::new(m.name),
                id: m.id,
            });
        }
        let _ = tx.send(Input::Joined);
        let driver = Driver {
            core,
            store,
            bundles,
            plugins,
            apps,
            channel,
            rx,
            view: view.clone(),
            metrics: metrics.clone(),
            ready: ready_tx,
            notices: notices.clone(),
            tick,
            ids: Default::default(),
            waiters: Default::default(),
            prepared: Default::default(),
            sent_high: Default::default(),
            coordinated: Default::default(),
            finished: Vec::new(),
            faults: settings.faults.clone(),
            held: Default::default(),
            admitted: Default::default(),
        };
        let rt = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("shoal-farm".into())
            .spawn(move || {
                lower_priority();
                // Plugin operations change the channel's stack through the runtime.
                let _guard = rt.enter();
                let mut driver = driver;
                driver.reapply();
                driver.run();
            })
            .map_err(|e| format!("cannot start the farm thread: {e}"))?;
        tokio::spawn(follow(events, tx.clone()));
        let farm = Arc::new(Farm {
            tx: Mutex::new(tx),
            view,
            ready,
            settings,
            busy: Mutex::new(BTreeSet::new()),
            metrics,
            notices,
        });
        if let Some(dir) = farm.settings.watch_dir.clone() {
            watch_dir::start(dir, Arc::downgrade(&farm))?;
        }
        Ok(farm)
    }

    pub fn settings(&self) -> &FarmSettings {
        &self.settings
    }

    fn send(&self, input: Input) -> Result<(), DeployError> {
        let tx = self
            .tx
            .lock()
            .map_err(|_| DeployError::Unavailable("the farm deployer stopped".into()))?;
        tx.send(input)
            .map_err(|_| DeployError::Unavailable("the farm deployer stopped".into()))
    }

    /// A farm frame from member `from` (see [`is_farm`]). It is decoded on the farm thread
    /// (a chunk is a 64 KiB copy: not on the thread that drains the channel for session
    /// replication); undecodable frames are dropped and counted there.
    pub fn deliver(&self, from: shoal_cluster::MemberId, payload: Vec<u8>) {
        let _ = self.send(Input::Frame { from, payload });
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the node holds the cluster's deployments, at most `within`.
    pub async fn wait_ready(&self, within: Duration) -> bool {
        let mut rx = self.ready.clone();
        tokio::time::timeout(within, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn view(&self) -> FarmView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    fn hold(&self, name: &str) -> Result<BusyGuard<'_>, DeployError> {
        let mut b = self
            .busy
            .lock()
            .map_err(|_| DeployError::Unavailable("the farm deployer stopped".into()))?;
        if !b.insert(name.to_string()) {
            let holder = self
                .view()
                .rollouts
                .get(name)
                .filter(|r| r.outcome.is_none())
                .map(|r| r.holder());
            return Err(DeployError::Busy(name.to_string(), holder));
        }
        Ok(BusyGuard(self, name.to_string()))
    }

    /// Receives the streamed body, then deploys it everywhere or nowhere; returns when the
    /// rollout has ended.
    pub async fn deploy<S, E>(&self, req: DeployRequest, body: S) -> Result<(), DeployError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let _guard = self.hold(&req.name)?;
        if let Some(r) = self.view().rollouts.get(&req.name) {
            if r.outcome.is_none() {
                return Err(FarmError::Conflict {
                    name: req.name.clone(),
                    holder: r.holder(),
                }
                .into());
            }
        }
        let dir = self.settings.dir.clone();
        let tmp: PathBuf = dir.join("staging").join(format!(
            "upload-{}-{}",
            std::process::id(),
            UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let (sha256, size) =
            upload::receive(&dir, tmp, body, self.settings.max_upload_bytes).await?;
        let manifest = Manifest {
            name: req.name.clone(),
            version: req
                .version
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| sha256.to_string()[..12].to_string()),
            kind: req.kind,
            sha256,
            size,
            metadata: req.metadata,
        };
        let sm = SignedManifest {
            manifest,
            signature: req.signature,
        };
        let name = req.name;
        self.run(&name, |reply| Input::Deploy { sm, reply }).await
    }

    /// Removes `name` everywhere (or nowhere).
    pub async fn undeploy(&self, name: &str) -> Result<(), DeployError> {
        let _guard = self.hold(name)?;
        let n = name.to_string();
        self.run(name, |reply| Input::Undeploy { name: n, reply })
            .await
    }

    /// Makes the previous version current again everywhere (or nowhere).
    pub async fn rollback(&self, name: &str) -> Result<(), DeployError> {
        let _guard = self.hold(name)?;
        let n = name.to_string();
        self.run(name, |reply| Input::Rollback { name: n, reply })
            .await
    }

    async fn run(
        &self,
        name: &str,
        input: impl FnOnce(oneshot::Sender<Started>) -> Input,
    ) -> Result<(), DeployError> {
        let (reply, started) = oneshot::channel();
        self.send(input(reply))?;
        let stopped = || DeployError::Unavailable("the farm deployer stopped".into());
        let outcome = started.await.map_err(|_| stopped())??;
        // The core ends every rollout by its stage deadline; this bound only guards a bug.
        let limit = Duration::from_secs(self.settings.stage_deadline_secs.max(1) * 3 + 30);
        let outcome = tokio::time::timeout(limit, outcome)
            .await
            .map_err(|_| {
                DeployError::Unavailable(format!(
                    "{name}: the rollout has not ended after {} s; see GET /api/v1/deployments/{name}",
                    limit.as_secs()
                ))
            })?
            .map_err(|_| stopped())?;
        match outcome {
            Outcome::Activated { .. } => Ok(()),
            Outcome::Aborted { ref conflict, .. } => Err(DeployError::Aborted {
                name: name.to_string(),
                summary: outcome.summary(),
                conflict: conflict.clone(),
            }),
        }
    }
}

static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Membership → the driver: farm peers up and down (a restart is a down then an up).
async fn follow(mut rx: broadcast::Receiver<MembershipEvent>, tx: Sender<Input>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let input = match rx.recv().await {
            Ok(MembershipEvent::Added(m)) if is_farm_peer(&m) => Input::Up {
                name: NodeId::new(m.name),
                id: m.id,
            },
            Ok(MembershipEvent::Disappeared { member, .. }) => {
                Input::Down(NodeId::new(member.name))
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    "farm: {n} membership events missed; the periodic catalog exchange catches up"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if tx.send(input).is_err() {
            return;
        }
    }
}
