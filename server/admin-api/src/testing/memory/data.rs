//! The fake 3-node cluster the in-memory backend starts with. Deterministic: the same ids and
//! values every run, so tests and screenshots are repeatable.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::dto::*;

pub(super) const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// A session and its raw attribute values.
#[derive(Debug, Clone)]
pub(super) struct FakeSession {
    pub summary: SessionSummary,
    pub attributes: Vec<(String, Vec<u8>)>,
}

/// A context with its sessions and counters.
#[derive(Debug, Clone)]
pub(super) struct FakeContext {
    pub context: Context,
    pub sessions: BTreeMap<String, FakeSession>,
    pub stats: ManagerStats,
}

pub(super) fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(super) fn members(now: u64) -> Vec<Member> {
    NODES
        .iter()
        .enumerate()
        .map(|(i, name)| Member {
            name: (*name).to_owned(),
            id: digest(name.as_bytes())[..32].to_owned(),
            address: format!("127.0.0.1:{}", 4000 + i),
            domain: "default".to_owned(),
            state: MemberState::Alive,
            since_ms: now - 600_000 + i as u64 * 5_000,
            since: rfc3339(now - 600_000 + i as u64 * 5_000),
            reason: Some(if i == 0 {
                "local member".into()
            } else {
                "joined by multicast beacon".into()
            }),
            local: i == 0,
        })
        .collect()
}

fn stage(name: &str, kind: StageKind, plugin: Option<&str>) -> PipelineStage {
    PipelineStage {
        name: name.into(),
        kind,
        plugin: plugin.map(Into::into),
        enabled: true,
    }
}

pub(super) fn contexts(now: u64) -> Vec<FakeContext> {
    let app = Context {
        name: "app".into(),
        path: "/app".into(),
        manager: ManagerKind::Delta,
        replication: ReplicationMode::Sync,
        backups: 0,
        pipeline: vec![
            stage("url-filter", StageKind::UrlFilter, Some("url-filter")),
            stage("ReplicationValve", StageKind::Valve, None),
            stage("JvmRouteBinderValve", StageKind::Valve, None),
            stage("app", StageKind::App, None),
        ],
        active_sessions: 0,
    };
    let shop = Context {
        name: "shop".into(),
        path: "/shop".into(),
        manager: ManagerKind::Backup,
        replication: ReplicationMode::Async,
        backups: 1,
        pipeline: vec![
            stage("auth-valve", StageKind::Valve, Some("auth-valve")),
            stage("ReplicationValve", StageKind::Valve, None),
            stage("shop", StageKind::App, None),
        ],
        active_sessions: 0,
    };
    let cart = Context {
        name: "cart".into(),
        path: "/cart".into(),
        manager: ManagerKind::Persistent,
        replication: ReplicationMode::Sync,
        backups: 0,
        pipeline: vec![
            stage("ReplicationValve", StageKind::Valve, None),
            stage("cart", StageKind::App, None),
        ],
        active_sessions: 0,
    };
    [(app, 48), (shop, 23), (cart, 7)]
        .into_iter()
        .map(|(context, count)| {
            let sessions = (0..count).map(|i| fake_session(&context, i, now)).collect();
            let mut stats = fresh_stats(&context.name, count as u64, now);
            if context.manager == ManagerKind::Persistent {
                stats.store = Some(fake_store(count as u64));
            }
            FakeContext {
                context,
                sessions,
                stats,
            }
        })
        .map(|mut c| {
            c.context.active_sessions = c.sessions.len() as u64;
            c
        })
        .collect()
}

fn fake_session(context: &Context, i: usize, now: u64) -> (String, FakeSession) {
    let id = digest(format!("{}-{i}", context.name).as_bytes())[..32].to_uppercase();
    let primary = NODES[i % 3].to_owned();
    let backups = match context.manager {
        ManagerKind::Delta => NODES
            .iter()
            .filter(|n| **n != primary)
            .map(|n| (*n).to_owned())
            .collect(),
        ManagerKind::Backup => vec![NODES[(i + 1) % 3].to_owned()],
        // The store holds the copy every node reads; no member is a backup.
        ManagerKind::Persistent => Vec::new(),
    };
    let mut attributes = vec![
        ("user".to_owned(), format!("user{i}").into_bytes()),
        ("counter".to_owned(), (i * 7).to_string().into_bytes()),
    ];
    if i.is_multiple_of(2) {
        let cart = serde_json::json!({"items": [{"sku": format!("SKU-{i}"), "qty": i % 5 + 1}], "total": i * 3});
        attributes.push(("cart".to_owned(), cart.to_string().into_bytes()));
    }
    if i.is_multiple_of(5) {
        // Starts like a serialized object: 4 small bytes, then bytes that are not UTF-8.
        let mut blob = vec![0, 1, 2, 3, 0xff, 0xfe];
        blob.extend((0..=255u8).cycle().take(58 + i));
        attributes.push(("blob".to_owned(), blob));
    }
    let size = attributes.iter().map(|(_, v)| v.len() as u64).sum();
    let last_access_ms = now - (i as u64 * 37_000) % 1_700_000;
    let summary = SessionSummary {
        id: id.clone(),
        context: context.name.clone(),
        primary,
        backups,
        created_ms: last_access_ms - 60_000 * (i as u64 % 9 + 1),
        last_access_ms,
        idle_ms: 0,
        max_inactive_secs: 1800,
        attribute_count: attributes.len() as u32,
        size_bytes: size,
        version: 1 + i as u64 % 13,
        principal: i.is_multiple_of(4).then(|| format!("user{i}")),
    };
    (
        id,
        FakeSession {
            summary,
            attributes,
        },
    )
}

/// The SQLite store of the persistent context: up, a little queued, `in_memory` of its
/// sessions in memory and twice as many in the store.
pub(super) fn fake_store(in_memory: u64) -> StoreStats {
    StoreStats {
        role: StoreRole::Persistent,
        name: "sqlite".into(),
        describe: "sqlite data/sessions.db table tomcat_sessions".into(),
        degraded: None,
        last_error: None,
        queue_depth: 0,
        queue_bytes: 0,
        queue_lag_ms: 0,
        queue_full: 0,
        conflicts: 1,
        loads: 40,
        saves: 310,
        removes: 12,
        errors: 0,
        ops_timed: 362,
        latency_avg_us: 420,
        latency_max_us: 9_800,
        in_memory: Some(in_memory),
        stored: Some(in_memory * 2),
    }
}

pub(super) fn fresh_stats(context: &str, active: u64, now: u64) -> ManagerStats {
    let map = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    ManagerStats {
        context: context.to_owned(),
        sessions_active: active,
        sessions_created: active + 12,
        sessions_expired: 12,
        max_active: active + 3,
        rejected: 0,
        messages_sent: map(&[("delta", 1520), ("accessed", 480), ("expire", 12)]),
        messages_received: map(&[("delta", 3010), ("accessed", 950), ("expire", 24)]),
        state_transfers: 1,
        conflicts: 0,
        replication_time_avg_us: 180,
        replication_time_max_us: 2400,
        since_ms: now,
        store: None,
        valves: vec![ValveStats {
            name: "ReplicationValve".into(),
            requests: 2000,
            total_time_us: 360_000,
            max_time_us: 2400,
            failures: 0,
        }],
    }
}

pub(super) fn channel() -> (Vec<Interceptor>, SendOptions) {
    let native = |name: &str, flag: u32, config: serde_json::Value| Interceptor {
        name: name.into(),
        plugin: None,
        option_flag: flag,
        enabled: true,
        config,
        counters: BTreeMap::new(),
    };
    let mut stack = vec![
        native(
            "TcpFailureDetector",
            0,
            serde_json::json!({"connect_timeout_ms": 200, "perform_read_test": false}),
        ),
        native(
            "MessageDispatch",
            8,
            serde_json::json!({"max_queue_size": 65536}),
        ),
        native("Throughput", 0, serde_json::json!({"interval": 10000})),
        native("checksum", 0, serde_json::json!({})),
        native(
            "Encrypt",
            0,
            serde_json::json!({"algorithm": "AES-256-GCM", "replay_window": 1024}),
        ),
        native("TcpPing", 0, serde_json::json!({"interval_ms": 250})),
    ];
    stack[3].plugin = Some("checksum".into());
    let flags = [
        ("byte_message", 1, false),
        ("use_ack", 2, true),
        ("synchronized_ack", 4, true),
        ("asynchronous", 8, false),
        ("udp", 32, false),
    ];
    let send = SendOptions {
        default_flags: 6,
        flags: flags
            .iter()
            .map(|(n, b, d)| OptionFlag {
                name: (*n).into(),
                bit: *b,
                default: *d,
            })
            .collect(),
        ack_timeout_ms: 3000,
        async_queue_capacity: 65536,
        async_queue_depth: 0,
        async_queue_full_total: 0,
    };
    (stack, send)
}

pub(super) fn plugins(now: u64) -> Vec<Plugin> {
    let make = |name: &str, world: PluginWorld, attach: &str, config: serde_json::Value| Plugin {
        name: name.into(),
        wit_version: "0.2.0".into(),
        generation: 1,
        label: None,
        digest: digest(name.as_bytes()),
        world,
        state: PluginState::Enabled,
        policy: FailurePolicy::FailOpen,
        limits: PluginLimits {
            memory_bytes: 16 << 20,
            call_timeout_ms: 50,
            max_instances: 64,
        },
        failures: FailureCounts::default(),
        attached_to: vec![attach.into()],
        config,
        size_bytes: 48_213,
        loaded_ms: now - 300_000,
        nodes: NODES
            .iter()
            .map(|n| NodePluginState {
                node: (*n).into(),
                state: PluginState::Enabled,
                error: None,
            })
            .collect(),
        warnings: Vec::new(),
    };
    let mut auth = make(
        "auth-valve",
        PluginWorld::Valve,
        "shop",
        serde_json::json!({"header": "x-shoal-auth"}),
    );
    auth.policy = FailurePolicy::FailClosed;
    auth.failures = FailureCounts {
        traps: 2,
        timeouts: 1,
        memory: 0,
        bad_output: 0,
        total: 3,
    };
    vec![
        make(
            "url-filter",
            PluginWorld::UrlFilter,
            "app",
            serde_json::json!({"skip": ["*.css", "*.js", "*.png"]}),
        ),
        auth,
        make(
            "checksum",
            PluginWorld::ChannelInterceptor,
            "channel",
            serde_json::json!({}),
        ),
    ]
}
