//! Ports a test hands to a listener it does not bind itself (a channel receiver, a node
//! process). Listeners a test binds itself should bind port 0 instead.

/// A port that was free a moment ago (see [`free_run`]).
pub fn free_port() -> u16 {
    free_run(1)
}

/// The first of `n` consecutive ports that were free a moment ago. They are taken below the
/// kernel's ephemeral range: a port the kernel handed out (bind to port 0) can be taken again
/// by any outgoing connection's source port before the node under test binds it (a channel
/// receiver then auto-binds to the next port, or a listener fails). Ports are handed out in
/// turn from a per-process random start, so concurrent tests do not race for the same one.
pub fn free_run(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static RANGE: OnceLock<(u32, u32)> = OnceLock::new();
    let (low, high) = *RANGE.get_or_init(|| {
        // Linux's default ephemeral range starts at 32768; read the real one when possible.
        let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
            .unwrap_or(32768);
        let seed = std::process::id().wrapping_mul(7919)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        NEXT.store(seed, Ordering::SeqCst);
        (10_000, ephemeral_low.clamp(12_000, 65_535))
    });
    let span = high - low - u32::from(n);
    for _ in 0..span {
        let base = (low + NEXT.fetch_add(u32::from(n), Ordering::SeqCst) % span) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1 between {low} and {high}");
}

/// `n` ports that were free a moment ago (not necessarily consecutive; see [`free_run`]).
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_above_the_privileged_range() {
        let ports = free_ports(20);
        assert!(ports.iter().all(|p| *p >= 10_000), "{ports:?}");
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len(), "{ports:?}");
    }

    #[test]
    fn a_run_is_free_end_to_end() {
        let base = free_run(3);
        for p in base..base + 3 {
            assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok(), "{p}");
        }
    }
}
