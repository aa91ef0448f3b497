//! The conformance suite of [`AdminBackend`]: one function per behaviour the API promises,
//! each taking the backend under test. [`test_all`] runs them in an order that leaves the
//! destructive ones (an expired session, a drain) last.
//!
//! Run against the in-memory twin (`server/admin-api/tests/conformance.rs`) and the node's
//! backend (`server/node/tests/admin_conformance.rs`): a rule that drifts fails both places
//! the same way. The functions panic with a message naming the behaviour.
use std::time::Duration;

use crate::{
    backend::{AdminBackend, ArtifactBody, BackendError},
    dto::{DeployRequest, EventKind, ManagerKind, SessionQuery, SessionSummary, StoreRole},
    rules::{DEFAULT_PAGE, MAX_ARTIFACT_NAME},
};

/// Every behaviour, on `context`, a context with at least three sessions (one is expired).
pub async fn test_all(backend: &dyn AdminBackend, context: &str) {
    unknown_names_are_not_found(backend, context).await;
    artifact_names_are_checked(backend).await;
    sessions_are_filtered_sorted_and_paged(backend, context).await;
    events_are_numbered_kept_and_broadcast(backend, context).await;
    drain_starts_once(backend).await;
}

/// A persistent context (`context`, with at least one session in memory here): its kind is
/// `persistent` with no backups; its session list shows the sessions in memory (no backups),
/// each readable; its stats show the store (up, its kind and place, the
/// sessions in memory as the context counts them, and at least as many in the store), and a
/// stats reset keeps them; health has a passing `store:<path>` check.
pub async fn a_persistent_context_reports_its_store(b: &dyn AdminBackend, context: &str) {
    let ctx = b.context(context).await.expect("the persistent context");
    assert_eq!(ctx.manager, ManagerKind::Persistent, "{ctx:?}");
    assert_eq!(
        ctx.backups, 0,
        "a persistent context has no backups: {ctx:?}"
    );
    assert!(
        ctx.active_sessions > 0,
        "the suite needs a session in memory: {ctx:?}"
    );
    let stats = b.manager_stats(context).await.expect("stats");
    let store = stats
        .store
        .as_ref()
        .unwrap_or_else(|| panic!("a persistent context shows its store: {stats:?}"));
    assert_eq!(store.role, StoreRole::Persistent, "{store:?}");
    assert!(
        !store.name.is_empty() && !store.describe.is_empty(),
        "{store:?}"
    );
    assert_eq!(store.degraded, None, "the store is up: {store:?}");
    assert_eq!(
        store.in_memory,
        Some(ctx.active_sessions),
        "{store:?} vs {ctx:?}"
    );
    assert_eq!(stats.sessions_active, ctx.active_sessions, "{stats:?}");
    let stored = store
        .stored
        .unwrap_or_else(|| panic!("the store answered its count: {store:?}"));
    assert!(
        stored >= ctx.active_sessions,
        "every session in memory is in the store (write-through): {store:?}"
    );
    let page = b
        .sessions(context, query(None, Some(500)))
        .await
        .expect("sessions of the persistent context");
    assert_eq!(
        page.total, ctx.active_sessions,
        "the list shows the sessions held in memory: {page:?}"
    );
    assert!(
        page.items.iter().all(|s| s.backups.is_empty()),
        "no member is a backup of a persistent session: {page:?}"
    );
    let first = &page.items[0];
    let detail = b
        .session(context, &first.id)
        .await
        .expect("a listed session");
    assert_eq!(detail.session.id, first.id);
    b.reset_stats(context).await.expect("reset");
    let after = b.manager_stats(context).await.expect("stats after a reset");
    assert!(
        after.store.as_ref().is_some_and(|s| s.saves >= store.saves),
        "a stats reset keeps the store's counters: {after:?}"
    );
    let health = b.health().await.expect("health");
    let check = health
        .checks
        .iter()
        .find(|c| c.name == format!("store:{}", ctx.path))
        .unwrap_or_else(|| panic!("health has a store:{} check: {health:?}", ctx.path));
    assert!(check.ok, "{check:?}");
}

fn not_found<T: std::fmt::Debug>(what: &str, r: Result<T, BackendError>) {
    assert!(
        matches!(r, Err(BackendError::NotFound { .. })),
        "{what}: expected NotFound, got {r:?}"
    );
}

/// Unknown contexts, sessions, plugins and deployments answer `NotFound`.
pub async fn unknown_names_are_not_found(b: &dyn AdminBackend, context: &str) {
    not_found("context", b.context("no-such-context").await);
    not_found(
        "sessions of an unknown context",
        b.sessions("no-such-context", SessionQuery::default()).await,
    );
    not_found(
        "stats of an unknown context",
        b.manager_stats("no-such-context").await,
    );
    not_found("session", b.session(context, "NOSUCHSESSION").await);
    not_found("plugin", b.plugin("no-such-plugin").await);
    not_found("deployment", b.deployment("no-such-deployment").await);
    not_found("undeploy", b.undeploy("no-such-deployment").await);
}

/// Artifact names: 1..=[`MAX_ARTIFACT_NAME`] letters, digits, `.`, `_`, `-`, not starting
/// with `.`; an empty plugin (the default kind) is refused. Names are checked before anything
/// else, so any bytes do.
pub async fn artifact_names_are_checked(b: &dyn AdminBackend) {
    let body = b"\0asm\x0d\x00\x01\x00".to_vec();
    let too_long = "a".repeat(MAX_ARTIFACT_NAME + 1);
    for name in ["", "a/b", "with space", "ä", "..", too_long.as_str()] {
        let r = b.deploy(request(name), body_of(body.clone())).await;
        assert!(
            matches!(r, Err(BackendError::Invalid(_))),
            "artifact name {name:?} ({} bytes) must be refused as Invalid, got {r:?}",
            name.len()
        );
    }
    let r = b
        .deploy(request("empty-artifact"), body_of(Vec::new()))
        .await;
    assert!(
        matches!(r, Err(BackendError::Invalid(_))),
        "an empty artifact must be refused as Invalid, got {r:?}"
    );
    assert!(
        b.deployment("empty-artifact").await.is_err(),
        "a refused artifact is not listed"
    );
}

fn request(name: &str) -> DeployRequest {
    DeployRequest {
        name: name.to_string(),
        ..DeployRequest::default()
    }
}

/// A body streamed in two pieces (as a client would send it).
pub fn body_of(bytes: Vec<u8>) -> ArtifactBody {
    let half = bytes.len() / 2;
    let (a, b) = bytes.split_at(half);
    let pieces = vec![
        Ok(axum::body::Bytes::copy_from_slice(a)),
        Ok(axum::body::Bytes::copy_from_slice(b)),
    ];
    Box::pin(futures::stream::iter(pieces))
}

fn query(offset: Option<u64>, limit: Option<u32>) -> SessionQuery {
    SessionQuery {
        offset,
        limit,
        ..SessionQuery::default()
    }
}

fn ids(items: &[SessionSummary]) -> Vec<&str> {
    items.iter().map(|s| s.id.as_str()).collect()
}

/// The session list: most recently used first (ties by id), `offset`/`limit` pages of that
/// order with the total, default page [`DEFAULT_PAGE`], and the `prefix`, `node` and
/// `min_idle_secs` filters.
pub async fn sessions_are_filtered_sorted_and_paged(b: &dyn AdminBackend, context: &str) {
    let all = b
        .sessions(context, query(None, Some(500)))
        .await
        .expect("sessions of the suite's context");
    let n = all.items.len();
    assert!(
        n >= 3,
        "the suite needs 3 or more sessions in {context}, has {n}"
    );
    assert_eq!(all.total, n as u64, "total counts every matching session");
    for w in all.items.windows(2) {
        let ordered = w[0].last_access_ms > w[1].last_access_ms
            || (w[0].last_access_ms == w[1].last_access_ms && w[0].id < w[1].id);
        assert!(
            ordered,
            "sessions must be listed most recently used first, then by id: {} ({}) before {} ({})",
            w[0].id, w[0].last_access_ms, w[1].id, w[1].last_access_ms
        );
    }
    let default = b
        .sessions(context, SessionQuery::default())
        .await
        .expect("default page");
    assert_eq!(default.limit, DEFAULT_PAGE, "default page size");
    assert_eq!(default.offset, 0, "default offset");

    for offset in (0..=n).step_by(2) {
        let page = b
            .sessions(context, query(Some(offset as u64), Some(2)))
            .await
            .expect("a page");
        let end = (offset + 2).min(n);
        assert_eq!(
            ids(&page.items),
            ids(&all.items[offset..end]),
            "page offset={offset} limit=2 is that slice of the full order"
        );
        assert_eq!(page.total, n as u64, "total is the same on every page");
        assert_eq!((page.offset, page.limit), (offset as u64, 2));
    }

    let prefix: String = all.items[0].id.chars().take(3).collect();
    let by_prefix = b
        .sessions(
            context,
            SessionQuery {
                prefix: Some(prefix.clone()),
                limit: Some(500),
                ..SessionQuery::default()
            },
        )
        .await
        .expect("prefix filter");
    let want: Vec<&str> = ids(&all.items)
        .into_iter()
        .filter(|id| id.starts_with(&prefix))
        .collect();
    assert_eq!(
        ids(&by_prefix.items),
        want,
        "prefix={prefix} keeps exactly those ids"
    );

    let node = all.items[0].primary.clone();
    let by_node = b
        .sessions(
            context,
            SessionQuery {
                node: Some(node.clone()),
                limit: Some(500),
                ..SessionQuery::default()
            },
        )
        .await
        .expect("node filter");
    let want: Vec<&str> = all
        .items
        .iter()
        .filter(|s| s.primary == node || s.backups.contains(&node))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        ids(&by_node.items),
        want,
        "node={node} keeps primaries and backups there"
    );

    let idle = b
        .sessions(
            context,
            SessionQuery {
                min_idle_secs: Some(u64::MAX),
                ..SessionQuery::default()
            },
        )
        .await
        .expect("idle filter");
    assert_eq!(idle.total, 0, "nothing has been idle for u64::MAX seconds");
}

/// Events: numbered from 1 upwards, the recent ones kept oldest first and capped at the
/// asked limit, and each also sent to subscribers. Expires one session of `context`.
pub async fn events_are_numbered_kept_and_broadcast(b: &dyn AdminBackend, context: &str) {
    let mut live = b.subscribe();
    let before = b.recent_events(200).await.expect("recent events");
    let page = b
        .sessions(context, query(None, Some(500)))
        .await
        .expect("sessions");
    let victim = page.items.last().expect("a session to expire").id.clone();
    b.expire_session(context, &victim)
        .await
        .expect("expire a session");
    not_found(
        "an expired session",
        b.session(context, &victim).await.map(|_| ()),
    );
    let after = b.recent_events(200).await.expect("recent events");
    for w in after.windows(2) {
        assert!(w[0].seq < w[1].seq, "recent events oldest first: {w:?}");
    }
    assert!(
        after.iter().all(|e| e.seq >= 1),
        "sequence numbers start at 1"
    );
    let newest = after.last().expect("the expiry was recorded");
    assert!(
        before.last().is_none_or(|e| e.seq < newest.seq),
        "a new event gets a higher number"
    );
    assert_eq!(newest.kind, EventKind::Session, "{newest:?}");
    assert_eq!(newest.subject, victim, "{newest:?}");
    let last_one = b.recent_events(1).await.expect("recent 1");
    assert_eq!(last_one.len(), 1, "limit caps the list");
    assert_eq!(last_one[0].seq, newest.seq, "limit keeps the newest");
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match live.recv().await {
                Ok(e) if e.seq == newest.seq => return Some(e),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    assert_eq!(
        heard.as_ref(),
        Some(newest),
        "subscribers get the same event"
    );
}

/// The drain: `serving` until asked, then `draining` (readiness and health say so); a second
/// request is a `Conflict`. Leaves the backend draining.
pub async fn drain_starts_once(b: &dyn AdminBackend) {
    let before = b.drain_status().await.expect("drain status");
    assert!(!before.draining, "not draining before asked: {before:?}");
    let started = b.start_drain().await.expect("start the drain");
    assert!(started.draining, "{started:?}");
    assert_eq!(started.trigger.as_deref(), Some("api"), "{started:?}");
    let again = b.start_drain().await;
    assert!(
        matches!(again, Err(BackendError::Conflict(_))),
        "a second drain request is a Conflict, got {again:?}"
    );
    let ready = b.readiness().await.expect("readiness");
    assert!(!ready.ready, "a draining node is not ready: {ready:?}");
    assert_eq!(ready.status, "draining", "{ready:?}");
    let health = b.health().await.expect("health");
    assert_eq!(health.status, "draining", "{health:?}");
}
