//! `shoal ctl deploy`'s progress per node, from `GET /api/v1/rollouts` (the coordinating
//! node's view: each node's `bytes_received` of `size_bytes`, then staged / active / failed).
//! On a terminal one bar per node is redrawn in place; otherwise (a pipe, a CI log) a plain
//! line per node is printed when its state changes, and at most once a second while only its
//! byte count moves, so a log shows the transfer without a line per poll.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use shoal_admin::dto::{Rollout, RolloutNode, RolloutNodeState};

/// How often a plain line may repeat for a node whose bytes moved but state did not.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// The rollout of `name` carrying content `sha_hex` among `rollouts` (the newest one).
pub fn find<'a>(rollouts: &'a [Rollout], name: &str, sha_hex: &str) -> Option<&'a Rollout> {
    rollouts
        .iter()
        .filter(|r| r.name == name && r.digest.as_deref() == Some(sha_hex))
        .max_by_key(|r| r.started_ms)
}

/// One node's progress as drawn or printed last.
struct Shown {
    state: RolloutNodeState,
    bytes: u64,
    at: Instant,
}

pub struct NodeProgress {
    /// Bars redrawn in place (a terminal), or None for plain lines.
    bars: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
    shown: BTreeMap<String, Shown>,
    quiet: bool,
}

impl NodeProgress {
    pub fn new(tty: bool, quiet: bool) -> Self {
        let bars = (tty && !quiet).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                BTreeMap::new(),
            )
        });
        NodeProgress {
            bars,
            shown: BTreeMap::new(),
            quiet,
        }
    }

    /// Shows the rollout's nodes as they are now.
    pub fn update(&mut self, r: &Rollout) {
        if self.quiet {
            return;
        }
        let now = Instant::now();
        for n in &r.nodes {
            let last = self.shown.get(&n.node);
            let state_changed = last.is_none_or(|s| s.state != n.state);
            let bytes_moved = last.is_some_and(|s| s.bytes != n.bytes_received);
            match &mut self.bars {
                Some((multi, bars)) => {
                    let bar = bars.entry(n.node.clone()).or_insert_with(|| {
                        let b = multi.add(ProgressBar::new(r.size_bytes));
                        if let Ok(style) = ProgressStyle::with_template(
                            "  {prefix:<16} [{bar:30}] {bytes}/{total_bytes} {msg}",
                        ) {
                            b.set_style(style.progress_chars("=> "));
                        }
                        b.set_prefix(n.node.clone());
                        b
                    });
                    bar.set_position(bytes_shown(n, r.size_bytes));
                    bar.set_message(state_text(n));
                    if is_final(n.state) && !bar.is_finished() {
                        bar.finish();
                    }
                }
                None => {
                    let due = last.is_none_or(|s| now >= s.at + LINE_EVERY);
                    if !(state_changed || bytes_moved && due) {
                        continue;
                    }
                    eprintln!("{}", line(n, r.size_bytes));
                }
            }
            self.shown.insert(
                n.node.clone(),
                Shown {
                    state: n.state,
                    bytes: n.bytes_received,
                    at: now,
                },
            );
        }
    }

    /// Leaves the bars drawn as they are (the state lines follow below them).
    pub fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for b in bars.values().filter(|b| !b.is_finished()) {
                b.abandon();
            }
        }
    }
}

/// Staged and active nodes hold every byte (an undeploy or a reused content sends none).
fn bytes_shown(n: &RolloutNode, size: u64) -> u64 {
    match n.state {
        RolloutNodeState::Staged | RolloutNodeState::Active => size,
        _ => n.bytes_received.min(size),
    }
}

fn is_final(s: RolloutNodeState) -> bool {
    !matches!(s, RolloutNodeState::Receiving | RolloutNodeState::Staged)
}

/// `receiving`, `staged`, `active`, `failed: <reason>`, …
fn state_text(n: &RolloutNode) -> String {
    let state = serde_json::to_value(n.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match (&n.detail, n.state) {
        (Some(d), RolloutNodeState::Failed) => format!("{state}: {d}"),
        _ => state,
    }
}

/// `  node-b           [==========>         ]  52%  2097152/4194304 bytes  receiving`
pub fn line(n: &RolloutNode, size: u64) -> String {
    const WIDTH: u64 = 20;
    let got = bytes_shown(n, size);
    // An empty artifact is complete at once.
    let pct = (got * 100).checked_div(size).unwrap_or(100);
    let filled = (got * WIDTH).checked_div(size).unwrap_or(WIDTH);
    let mut bar: String = "=".repeat(filled as usize);
    if filled < WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat((WIDTH - filled - 1) as usize));
    }
    format!(
        "  {:<16} [{bar}] {pct:>3}%  {got}/{size} bytes  {}",
        n.node,
        state_text(n)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(state: RolloutNodeState, bytes: u64) -> RolloutNode {
        RolloutNode {
            node: "n2".into(),
            state,
            bytes_received: bytes,
            detail: None,
        }
    }

    #[test]
    fn a_line_names_the_node_its_bytes_and_state() {
        let l = line(&node(RolloutNodeState::Receiving, 512), 2048);
        assert_eq!(
            l,
            "  n2               [=====>              ]  25%  512/2048 bytes  receiving"
        );
        let l = line(&node(RolloutNodeState::Active, 0), 2048);
        assert!(
            l.contains("[====================] 100%  2048/2048 bytes  active"),
            "{l}"
        );
        let l = line(&node(RolloutNodeState::Staged, 0), 0);
        assert!(l.contains("100%  0/0 bytes  staged"), "{l}");
        let mut failed = node(RolloutNodeState::Failed, 10);
        failed.detail = Some("sha256 mismatch".into());
        assert!(line(&failed, 100).ends_with("10/100 bytes  failed: sha256 mismatch"));
    }
}
