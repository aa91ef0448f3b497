//! Isolations under `partition = "majority"`: one node cut off from every other one, each
//! side's failure detector dropping the other at its own moment, then a heal that each node
//! sees at its own moment; and the runtime's majority rules (what `SessionService` does with
//! the quorum): partitioned when the majority is lost, serving again once every expected
//! member is back and the manager caught up.
use super::*;

/// How long after the cut each node's failure detector drops the other side, at most
/// (plus `DETECT_MS`).
const DETECT_JITTER_MS: Millis = 300;
/// Over how long the links of a cut are cut one after another: 0 (all at once) unless
/// `SHOAL_SIM_CUT_SPREAD_MS` says otherwise. The fault harness applies its nftables rules
/// one link after another over tens of milliseconds; with a spread of 60 ms BackupManager
/// still loses a session (`SHOAL_SIM_CUT_SPREAD_MS=60 SHOAL_SIM_SEEDS=2..3`): a take-over
/// on the node being cut off reaches one member (the old primary, which drops its copy)
/// and not the other (the new backup), then the new primary vanishes.
fn cut_spread_ms() -> Millis {
    std::env::var("SHOAL_SIM_CUT_SPREAD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
/// How long after the heal each node sees each member of the other side again, at most.
const MEET_JITTER_MS: Millis = 400;

impl Sim {
    /// Cuts a random node off from every other one; heals it once every node dropped the
    /// other side and some requests ran meanwhile.
    pub(super) fn isolate(&mut self, load: bool) {
        if !load {
            return;
        }
        let i = self.rng.gen_range(0..self.nodes.len());
        let x = self.nodes[i].id;
        self.report.partitions += 1;
        self.isolated = Some(x);
        self.note(&format!("node{} isolated", i + 1));
        for o in 0..self.nodes.len() {
            if o == i {
                continue;
            }
            let other = self.nodes[o].id;
            let spread = cut_spread_ms();
            for (from, to) in [(x, other), (other, x)] {
                let d = self.rng.gen_range(0..=spread);
                self.at(d, Ev::CutLink { from, to });
            }
            let d = DETECT_MS + self.rng.gen_range(0..DETECT_JITTER_MS);
            self.at(
                d,
                Ev::Lost {
                    observer: i,
                    gone: other,
                },
            );
            let d = DETECT_MS + self.rng.gen_range(0..DETECT_JITTER_MS);
            self.at(
                d,
                Ev::Lost {
                    observer: o,
                    gone: x,
                },
            );
        }
        let heal = DETECT_MS + DETECT_JITTER_MS + self.rng.gen_range(200..2500);
        self.at(heal, Ev::Heal);
    }

    pub(super) fn heal(&mut self) {
        self.cut = None;
        self.cut_links.clear();
        let Some(x) = self.isolated.take() else {
            return;
        };
        let Some(i) = self.nodes.iter().position(|n| n.id == x) else {
            return;
        };
        self.note(&format!("node{} healed", i + 1));
        for o in 0..self.nodes.len() {
            if o == i {
                continue;
            }
            let other = self.nodes[o].id;
            let d = self.rng.gen_range(1..MEET_JITTER_MS);
            self.at(d, Ev::Met { observer: i, other });
            let d = self.rng.gen_range(1..MEET_JITTER_MS);
            self.at(
                d,
                Ev::Met {
                    observer: o,
                    other: x,
                },
            );
        }
    }

    /// The runtime's order for a removal: quorum, then the manager, then the partition state.
    pub(super) fn lost(&mut self, observer: usize, gone: MemberId) {
        if !self.nodes[observer].alive || !self.nodes[observer].sees.remove(&gone) {
            return;
        }
        self.note(&format!("node{} drops {}", observer + 1, self.name(gone)));
        let out = self.nodes[observer].mgr.member_removed(gone, self.now);
        let id = self.nodes[observer].id;
        self.send(id, out, None);
        self.update_partition(observer);
    }

    /// The runtime's order for an addition: the manager, then the quorum, then the partition
    /// state (a partitioned manager greets the member before the majority is back).
    pub(super) fn met(&mut self, observer: usize, other: MemberId) {
        if !self.nodes[observer].alive || self.nodes[observer].sees.contains(&other) {
            return;
        }
        self.note(&format!("node{} meets {}", observer + 1, self.name(other)));
        let out = self.nodes[observer].mgr.member_added(other, self.now);
        let id = self.nodes[observer].id;
        self.send(id, out, None);
        self.nodes[observer].sees.insert(other);
        self.update_partition(observer);
    }

    /// This node sees a majority of the expected members (all nodes: nobody says goodbye).
    pub(super) fn has_majority(&self, i: usize) -> bool {
        (self.nodes[i].sees.len() + 1) * 2 > self.nodes.len()
    }

    /// Whether node `i` may serve a session now (always, without `majority`).
    pub(super) fn serves(&self, i: usize) -> bool {
        !self.cfg.majority || (self.has_majority(i) && !self.nodes[i].partitioned)
    }

    /// `SessionService::update_partition`: partitioned when the majority is lost; serving
    /// again once every expected member is seen and the manager caught up.
    pub(super) fn update_partition(&mut self, i: usize) {
        if !self.cfg.majority || !self.nodes[i].alive {
            return;
        }
        let (now, id) = (self.now, self.nodes[i].id);
        let majority = self.has_majority(i);
        let total = self.nodes.len();
        let node = &mut self.nodes[i];
        if !majority && !node.partitioned {
            node.partitioned = true;
            let out = node.mgr.set_partitioned(true, now);
            self.note(&format!("node{} partitioned", i + 1));
            self.send(id, out, None);
        } else if majority && node.partitioned {
            let everyone = node.sees.len() + 1 == total;
            if everyone && !node.mgr.reconciling() && node.mgr.is_ready() {
                node.partitioned = false;
                let out = node.mgr.set_partitioned(false, now);
                self.note(&format!("node{} caught up", i + 1));
                self.send(id, out, None);
            }
        }
    }
}
