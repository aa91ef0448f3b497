//! Membership as the operator sees it: every member this node knows or knew recently, with
//! its state (alive / suspect / gone), since when and why; plus health and readiness.
//!
//! The channel only keeps current members, so the book keeps the history it needs: it is
//! fed by `Channel::subscribe()` and keeps gone members for [`super::GONE_KEPT`].
use super::{upgrade, NodeBackend, GONE_KEPT};
use shoal_admin::dto::{now_ms, rfc3339, Check, EventKind, Health, Member, MemberState, Readiness};
use shoal_admin::rules;
use shoal_net::MembershipEvent;
use std::collections::BTreeMap;
use std::sync::Weak;
use tokio::sync::broadcast;

struct Seen {
    member: shoal_cluster::Member,
    state: MemberState,
    since_ms: u64,
    reason: Option<String>,
}

/// Members by id (hex), alive, suspect and recently gone.
#[derive(Default)]
pub(super) struct MemberBook {
    seen: BTreeMap<String, Seen>,
}

impl MemberBook {
    /// Records `m` as alive unless it already is (repeated Added events keep `since`).
    pub(super) fn added(&mut self, m: &shoal_cluster::Member, now: u64, why: &str) -> bool {
        let key = m.id.to_hex();
        if self
            .seen
            .get(&key)
            .is_some_and(|s| s.state == MemberState::Alive)
        {
            return false;
        }
        self.set(m, MemberState::Alive, now, why.to_owned());
        true
    }

    pub(super) fn set(
        &mut self,
        m: &shoal_cluster::Member,
        state: MemberState,
        now: u64,
        why: String,
    ) {
        self.seen.insert(
            m.id.to_hex(),
            Seen {
                member: m.clone(),
                state,
                since_ms: now,
                reason: Some(why),
            },
        );
    }

    /// Drops gone members older than [`GONE_KEPT`].
    pub(super) fn prune(&mut self, now: u64) {
        let keep = GONE_KEPT.as_millis() as u64;
        self.seen
            .retain(|_, s| s.state != MemberState::Gone || now.saturating_sub(s.since_ms) < keep);
    }

    /// Member name for an id, including recently gone members.
    pub(super) fn name_of(&self, id: &shoal_cluster::MemberId) -> Option<String> {
        self.seen.get(&id.to_hex()).map(|s| s.member.name.clone())
    }

    /// Reconciles with the channel's current view: members it lists are at least alive
    /// (a suspect that answered again is alive), members it no longer lists are gone.
    fn reconcile(&mut self, current: &[shoal_cluster::Member], suspected: &[String], now: u64) {
        for m in current {
            let key = m.id.to_hex();
            let is_suspect = suspected.contains(&key);
            match self.seen.get(&key).map(|s| s.state) {
                None | Some(MemberState::Gone) => self.set(
                    m,
                    MemberState::Alive,
                    now,
                    "member of the current view".into(),
                ),
                Some(MemberState::Suspect) if !is_suspect => self.set(
                    m,
                    MemberState::Alive,
                    now,
                    "answered again after a suspicion".into(),
                ),
                _ => {}
            }
        }
        for (key, s) in &mut self.seen {
            if s.state != MemberState::Gone && !current.iter().any(|m| m.id.to_hex() == *key) {
                s.state = MemberState::Gone;
                s.since_ms = now;
                s.reason = Some("no longer in this node's view".into());
            }
        }
    }
}

fn dto(
    m: &shoal_cluster::Member,
    state: MemberState,
    since_ms: u64,
    reason: Option<String>,
    local: bool,
) -> Member {
    Member {
        name: m.name.clone(),
        id: m.id.to_hex(),
        address: m.addr.to_string(),
        domain: m.domain.clone(),
        state,
        since_ms,
        since: rfc3339(since_ms),
        reason,
        local,
    }
}

/// Feeds the book from the channel's membership events and emits admin events.
pub(super) async fn follow(
    backend: Weak<NodeBackend>,
    mut rx: broadcast::Receiver<MembershipEvent>,
) {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("admin API missed {n} membership events; the member list is reconciled on the next read");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(b) = upgrade(&backend) else { return };
        b.on_membership(&ev);
    }
}

impl NodeBackend {
    fn on_membership(&self, ev: &MembershipEvent) {
        let now = now_ms();
        let (kind, m, state, why) = match ev {
            MembershipEvent::Added(m) => (
                EventKind::MemberAdded,
                m,
                MemberState::Alive,
                "joined".to_string(),
            ),
            MembershipEvent::Suspected { member, reason } => (
                EventKind::MemberSuspect,
                member,
                MemberState::Suspect,
                reason.clone(),
            ),
            MembershipEvent::Disappeared { member, reason } => (
                EventKind::MemberGone,
                member,
                MemberState::Gone,
                reason.to_string(),
            ),
        };
        {
            let mut s = self.lock();
            if state == MemberState::Alive {
                if !s.book.added(m, now, &why) {
                    return;
                }
            } else {
                s.book.set(m, state, now, why.clone());
            }
        }
        let verb = match state {
            MemberState::Alive => "is alive",
            MemberState::Suspect => "is suspected",
            MemberState::Gone => "is gone",
        };
        self.emit(
            kind,
            &m.name,
            format!("{} ({}) {verb}: {why}", m.name, m.addr),
        );
    }

    pub(super) fn local_member(&self) -> Member {
        let local = self.node.channel.local();
        dto(
            local,
            MemberState::Alive,
            self.started_ms,
            Some("this node".into()),
            true,
        )
    }

    pub(super) async fn member_list(&self) -> Vec<Member> {
        let stats = self.node.channel.stats().await;
        let suspected: Vec<String> = stats
            .peers
            .iter()
            .filter(|p| p.suspected)
            .map(|p| p.member.clone())
            .collect();
        let current = self.node.channel.members();
        let now = now_ms();
        let mut s = self.lock();
        s.book.reconcile(&current, &suspected, now);
        s.book.prune(now);
        let mut out = vec![self.local_member()];
        out.extend(
            s.book
                .seen
                .values()
                .map(|x| dto(&x.member, x.state, x.since_ms, x.reason.clone(), false)),
        );
        out
    }

    pub(super) async fn health_report(&self) -> Health {
        let stats = self.node.channel.stats().await;
        let members = self.member_list().await;
        let suspect: Vec<&str> = members
            .iter()
            .filter(|m| m.state == MemberState::Suspect)
            .map(|m| m.name.as_str())
            .collect();
        let alive = MemberState::Alive.count_in(&members);
        let checks = vec![
            Check {
                name: "channel".into(),
                ok: true,
                detail: format!(
                    "receiver on {}, {} connections open",
                    self.node.channel.local().addr,
                    stats.connections_open
                ),
            },
            Check {
                name: "membership".into(),
                ok: suspect.is_empty(),
                detail: if suspect.is_empty() {
                    format!(
                        "{alive} of {} members alive (this node included)",
                        members.len()
                    )
                } else {
                    format!(
                        "suspected: {} (a TCP check is under way)",
                        suspect.join(", ")
                    )
                },
            },
        ];
        let mut checks = checks;
        // Split-brain protection: a context that serves no session (no majority, or still
        // catching up after a heal) makes the node degraded.
        for svc in self.node.http.registry().services() {
            if let Some(why) = svc.partition_state() {
                checks.push(Check {
                    name: format!("partition:{}", svc.context()),
                    ok: false,
                    detail: why,
                });
            }
        }
        // A persistent context whose store is down is degraded (sticky contexts still serve
        // from memory; per-request ones answer 503).
        for svc in self.node.http.registry().services() {
            if let Some(p) = svc.persistent() {
                let st = p.status();
                let why = st.check_error.clone().or(st.degraded.clone());
                checks.push(Check {
                    name: format!("store:{}", svc.context()),
                    ok: why.is_none(),
                    detail: match why {
                        None => format!(
                            "{} reachable, {} changes queued",
                            st.describe, st.stats.queue_depth
                        ),
                        Some(w) => format!(
                            "{} down: {w}; {} changes queued",
                            st.describe, st.stats.queue_depth
                        ),
                    },
                });
            }
            // A replicated context with a store keeps serving while its store is down; the
            // changes wait in the write-behind queue, so the lag grows.
            if let Some(wb) = svc.write_behind() {
                let st = wb.stats();
                checks.push(Check {
                    name: format!("store:{}", svc.context()),
                    ok: st.degraded.is_none(),
                    detail: match &st.degraded {
                        None => format!(
                            "{} reachable (write-behind), {} changes queued, lag {} ms",
                            st.store, st.queued, st.lag_ms
                        ),
                        Some(w) => format!(
                            "{} down (write-behind): {w}; {} changes queued, lag {} ms",
                            st.store, st.queued, st.lag_ms
                        ),
                    },
                });
            }
        }
        rules::health(self.node.drain.is_draining(), checks)
    }

    pub(super) fn readiness_report(&self) -> Readiness {
        let mut checks = vec![Check {
            name: "http".into(),
            ok: true,
            detail: format!("listening on {}", self.node.http_addr),
        }];
        for svc in self.node.http.registry().services() {
            let ok = svc.is_ready();
            checks.push(Check {
                name: format!("state-transfer:{}", svc.context()),
                ok,
                detail: if ok {
                    "state transfer complete".into()
                } else {
                    "waiting for the session state transfer from another member".into()
                },
            });
            // `partition = "majority"`: no session served without the majority.
            if let Some(why) = svc.partition_state() {
                checks.push(Check {
                    name: format!("partition:{}", svc.context()),
                    ok: false,
                    detail: why,
                });
            }
        }
        let farm = self.node.farm.is_ready();
        checks.push(Check {
            name: "farm".into(),
            ok: farm,
            detail: if farm {
                "holds the cluster's deployments".into()
            } else {
                "converging with the cluster's deployments (fetching what it missed)".into()
            },
        });
        let drain = self.node.drain.state().map(|d| d.detail);
        rules::readiness(drain.as_deref(), checks)
    }
}
