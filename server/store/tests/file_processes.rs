//! Two *processes* sharing one file-store directory (two nodes in per-request mode on one
//! directory): each increments one counter by load + compare-and-set, retrying on conflict,
//! and no acknowledged write is lost. The processes are this test binary run again as
//! workers (`SHOAL_FILE_WORKER_DIR` set), so the cross-process `flock` is what keeps them
//! apart: they share no memory and no in-process lock.
use shoal_store::testing::suite;
use shoal_store::{FileStore, Store};
use std::process::{Command, Stdio};

const WORKER_DIR: &str = "SHOAL_FILE_WORKER_DIR";
const APP: &str = "/procs";
const ID: &str = "COUNTER";
const PROCESSES: usize = 3;
const TASKS: usize = 3;
const ROUNDS: usize = 30;

/// The worker's half: `TASKS` tasks of `ROUNDS` increments; prints `ACK <version>` lines.
async fn worker(dir: &str) {
    let store = std::sync::Arc::new(FileStore::new(dir));
    store.check().await.expect("worker check");
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { suite::increment(s.as_ref(), APP, ID, ROUNDS).await })
        })
        .collect();
    for t in tasks {
        for v in t.await.expect("worker task") {
            println!("ACK {v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn processes_sharing_a_directory_lose_no_write() {
    if let Ok(dir) = std::env::var(WORKER_DIR) {
        worker(&dir).await;
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("shared");
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "processes_sharing_a_directory_lose_no_write",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_DIR, &dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    let mut acked = Vec::new();
    for child in children {
        // Bounded: each increment gives up after 10,000 conflicts (suite::increment).
        let out = child.wait_with_output().expect("worker output");
        assert!(
            out.status.success(),
            "worker failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // libtest may print its own text on the same line: take every token after `ACK`.
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let mine: Vec<u64> = tokens
            .windows(2)
            .filter(|w| w[0] == "ACK")
            .map(|w| w[1].parse().expect("a version"))
            .collect();
        assert_eq!(mine.len(), TASKS * ROUNDS, "worker output:\n{text}");
        acked.extend(mine);
    }
    let store = FileStore::new(&dir);
    let total = (PROCESSES * TASKS * ROUNDS) as u64;
    suite::check_increments(&store, APP, ID, &acked, total).await;
}
