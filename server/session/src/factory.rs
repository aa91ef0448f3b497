//! The factory: builds the manager a context's [`ManagerConfig`] names. The one place that
//! knows every manager, so `manager.rs` (the trait) imports none of them; a new manager
//! adds its arm here.
use crate::backup::BackupManager;
use crate::core::Core;
use crate::delta::DeltaManager;
use crate::manager::{ManagerConfig, ManagerKind, SessionManager};
use rand::rngs::StdRng;
use shoal_cluster::MemberId;

/// Builds the manager `config.manager` names.
pub fn build_manager(
    context: &str,
    local: MemberId,
    route: &str,
    config: ManagerConfig,
    rng: StdRng,
) -> Box<dyn SessionManager> {
    let core = Core::new(context, local, route, config, rng);
    match core.cfg.manager {
        // A persistent context's sessions go through `runtime::persistent` (the store is
        // where they live); its manager here stays empty and only answers the cluster's
        // state transfers and views of the context, so readiness and admin views work the
        // same for every context.
        ManagerKind::Delta | ManagerKind::Persistent => Box::new(DeltaManager::new(core)),
        ManagerKind::Backup => Box::new(BackupManager::new(core)),
    }
}
