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

/// How often a node hands glibc's free memory back to the kernel.
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Hands the free pages inside glibc's heaps back to the kernel every [`TRIM_EVERY`].
///
/// glibc returns memory by itself only from the top of the main heap; chunks freed in the
/// middle of a heap, and in the other arena, stay resident until reused. A node that swaps
/// sessions out to its store (`max_active_sessions`) frees a session's attributes as it
/// creates the next one, in no particular order: with 100,000 sessions streamed through a
/// node holding 10,000, `malloc_trim(0)` returned ~1.5 MiB. It takes each arena's lock for
/// the time of a walk over its free chunks (well under a millisecond at that size).
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
pub fn trim_periodically() {
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // SAFETY: malloc_trim only returns free pages of the allocator's own heaps.
            #[allow(unsafe_code)]
            let _ = unsafe { libc::malloc_trim(0) };
        }
    });
}

/// Other allocators and C libraries: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
pub fn trim_periodically() {}
