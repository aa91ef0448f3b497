//! The farm's counters, the activation-skew histogram, and their lines in `/metrics` ([`FarmMetrics::render`], called from
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
    /// Activation skew of the rollouts coordinated here: a count per bucket of
    /// [`SKEW_BUCKETS_MS`] (not cumulative; `render` sums them), then sum and count.
    skew_buckets: [AtomicU64; SKEW_BUCKETS_MS.len()],
    skew_sum_ms: AtomicU64,
    skew_count: AtomicU64,
}

/// Upper bounds (ms) of the activation-skew histogram buckets; `+Inf` follows.
const SKEW_BUCKETS_MS: [u64; 10] = [1, 5, 10, 25, 50, 100, 250, 1_000, 5_000, 30_000];

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

    /// One activated rollout's spread between its first and last node's activation.
    pub fn observe_skew(&self, ms: u64) {
        if let Some(i) = SKEW_BUCKETS_MS.iter().position(|b| ms <= *b) {
            add(&self.skew_buckets[i], 1);
        }
        add(&self.skew_sum_ms, ms);
        add(&self.skew_count, 1);
    }

    fn render_skew(&self, out: &mut String) {
        let name = "shoal_farm_activation_skew_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Spread between the first and the last node's activation instant, per rollout coordinated by this node (each node's own clock).\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (b, c) in SKEW_BUCKETS_MS.iter().zip(&self.skew_buckets) {
            cumulative += c.load(Ordering::Relaxed);
            let le = *b as f64 / 1000.0;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.skew_count.load(Ordering::Relaxed);
        let sum = self.skew_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
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
        self.render_skew(out);
        let _ = writeln!(
            out,
            "# HELP shoal_farm_ready 1 once this node holds the cluster's deployments.\n# TYPE shoal_farm_ready gauge\nshoal_farm_ready {}",
            u8::from(ready)
        );
    }
}
