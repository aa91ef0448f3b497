//! The farm's counters and their lines in `/metrics` ([`FarmMetrics::render`], called from
//! the admin backend's metrics with one line).
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct FarmMetrics {
    pub deploys_activated: AtomicU64,
    pub deploys_aborted: AtomicU64,
    pub chunks_sent: AtomicU64,
    pub chunks_resent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub decode_failures: AtomicU64,
    pub verify_failures: AtomicU64,
    pub apply_failures: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl FarmMetrics {
    pub fn inc(c: &AtomicU64) {
        add(c, 1);
    }
    pub fn add(c: &AtomicU64, n: u64) {
        add(c, n);
    }

    /// Prometheus text (0.0.4) of the counters, plus `shoal_farm_ready`.
    pub fn render(&self, out: &mut String, ready: bool) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut family = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        family(
            "shoal_farm_deploys_total",
            "Rollouts coordinated by this node, by outcome.",
            &[
                ("{outcome=\"activated\"}", get(&self.deploys_activated)),
                ("{outcome=\"aborted\"}", get(&self.deploys_aborted)),
            ],
        );
        family(
            "shoal_farm_chunks_sent_total",
            "Artifact chunks this node sent.",
            &[("", get(&self.chunks_sent))],
        );
        family(
            "shoal_farm_chunks_resent_total",
            "Artifact chunks sent again (loss, reordering, a resumed transfer).",
            &[("", get(&self.chunks_resent))],
        );
        family(
            "shoal_farm_bytes_total",
            "Artifact bytes transferred over the channel, by direction.",
            &[
                ("{direction=\"sent\"}", get(&self.bytes_sent)),
                ("{direction=\"received\"}", get(&self.bytes_received)),
            ],
        );
        family(
            "shoal_farm_failures_total",
            "Farm failures on this node, by kind.",
            &[
                ("{kind=\"decode\"}", get(&self.decode_failures)),
                ("{kind=\"verify\"}", get(&self.verify_failures)),
                ("{kind=\"apply\"}", get(&self.apply_failures)),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP shoal_farm_ready 1 once this node holds the cluster's deployments.\n# TYPE shoal_farm_ready gauge\nshoal_farm_ready {}",
            u8::from(ready)
        );
    }
}
