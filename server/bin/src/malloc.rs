//! glibc malloc tuned for a node's resident memory.
//!
//! glibc gives each thread that allocates while another holds the main arena an arena of its
//! own, up to 8 per core; a node's threads (tokio workers, one thread per SQLite connection,
//! the blocking pool) each end up with one. Memory freed into an arena stays there for that
//! arena's next allocations, so every arena keeps its own high-water mark of free chunks:
//! with 100,000 sessions streaming through the SQLite store, two arenas instead of the
//! default kept 2.2 MiB less resident (README, "Benchmarks"). Two arenas keep contention
//! low on the request path and the free memory in two places. `MALLOC_ARENA_MAX` (or
//! `GLIBC_TUNABLES`) in the environment wins.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
pub fn limit_arenas() {
    const ARENAS: libc::c_int = 2;
    let set_by_user = ["MALLOC_ARENA_MAX", "GLIBC_TUNABLES"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if !set_by_user {
        // SAFETY: mallopt only changes a tunable of the allocator; it is called at the top
        // of main, before the runtime starts any thread.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    }
}

/// Other allocators and C libraries: nothing to tune.
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
pub fn limit_arenas() {}
