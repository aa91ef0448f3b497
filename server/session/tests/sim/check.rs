//! The checker: versions never go backwards on a replica; after quiescence live holders
//! agree and none is below the last acknowledged write.
use super::*;

impl Sim {
    /// `SHOAL_SIM_TRACE=<id prefix>` prints every message about that session.
    pub(super) fn trace(&self, from: MemberId, to: MemberId, payload: &[u8]) {
        let Ok(prefix) = std::env::var("SHOAL_SIM_TRACE") else {
            return;
        };
        let Ok(env) = shoal_session::decode(payload) else {
            return;
        };
        let text = format!("{:?}", env.msg);
        if text.contains(&prefix) {
            let name = |m: MemberId| self.name(m);
            let short: String = text.chars().take(300).collect();
            println!("t={} {} -> {} {}", self.now, name(from), name(to), short);
        }
    }

    /// With `SHOAL_SIM_TRACE` set, prints a cluster event.
    pub(super) fn note(&self, text: &str) {
        if std::env::var_os("SHOAL_SIM_TRACE").is_some() {
            println!("t={} {text}", self.now);
        }
    }

    pub(super) fn name(&self, m: MemberId) -> String {
        self.nodes
            .iter()
            .position(|n| n.id == m)
            .map(|i| format!("node{}", i + 1))
            .unwrap_or(format!("{m:?}"))
    }

    pub(super) fn check_versions(&mut self, i: usize) {
        if self.cfg.majority {
            // A node catching up after a partition gives up its unacknowledged versions for
            // the cluster's older ones, by design: the promise is on acknowledged writes.
            return;
        }
        let node = self.nodes[i].id;
        for id in self.nodes[i].mgr.session_ids() {
            let Some(s) = self.nodes[i].mgr.session(&id) else {
                continue;
            };
            let v = self.max_version.entry((node, id.clone())).or_insert(0);
            if s.version < *v {
                self.report.violations.push(format!(
                    "t={} node{} went back on {id:?}: {} after {}",
                    self.now,
                    i + 1,
                    s.version,
                    v
                ));
            }
            *v = (*v).max(s.version);
        }
    }

    /// After quiescence: live holders of a session agree, and none is below the last
    /// acknowledged write (DeltaManager: every live node holds it).
    pub(super) fn final_check(&mut self) {
        let alive = self.nodes.iter().filter(|n| n.alive).count();
        for (c, client) in self.clients.iter().enumerate() {
            let Some(id) = &client.session else { continue };
            let values: Vec<u64> = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| {
                    n.mgr
                        .session(id)
                        .map(|s| counter(&s.attributes.get("counter").cloned()))
                })
                .collect();
            let (min, max) = (
                values.iter().min().copied().unwrap_or(0),
                values.iter().max().copied().unwrap_or(0),
            );
            let missing =
                values.is_empty() || (self.cfg.kind == ManagerKind::Delta && values.len() != alive);
            if missing || min != max || min < client.acked {
                self.report.wrong_sessions += 1;
            }
            if self.cfg.mode == ReplicationMode::Sync && max < client.acked {
                self.report.violations.push(format!(
                    "client {c}: acknowledged {} lost, holders have {values:?}",
                    client.acked
                ));
            }
        }
    }
}

pub(super) fn counter(v: &Option<AttrValue>) -> u64 {
    match v {
        Some(AttrValue::Json(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}
