//! Per-key write locks for the file store: a fixed set of async mutexes picked by a hash
//! of (app, id). Two ids may share a stripe (they then wait for each other), one id always
//! maps to the same stripe, so a compare and the rename that follows it are never
//! interleaved with another write of that id in this process.
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 64;

#[derive(Debug)]
pub(crate) struct KeyLocks {
    stripes: Vec<Mutex<()>>,
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub(crate) async fn lock(&self, app: &str, id: &str) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        (app, id).hash(&mut h);
        self.stripes[(h.finish() % STRIPES as u64) as usize]
            .lock()
            .await
    }
}
