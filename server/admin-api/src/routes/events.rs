//! `/api/v1/events` (server-sent events), `/api/v1/events/recent` and `/metrics`.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{
        sse::{Event as SseEvent, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures::{stream, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::{dto::Event, error::ApiError, ApiJson, ApiQuery};

/// Events kept for `/events/recent` and for `Last-Event-ID` replay.
pub const RECENT_MAX: usize = crate::rules::EVENTS_KEPT;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(recent_events))
        .routes(routes!(metrics))
}

/// Live events (membership, deploy, plugin changes) as `text/event-stream`.
///
/// Each SSE message has `event:` = the event kind, `id:` = its seq and `data:` = the Event as
/// JSON. A client that reconnects with `Last-Event-ID` first gets the recent events it missed.
/// A client too slow to keep up gets an `event: lagged` with the number of events lost.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq")),
    responses((status = 200, description = "An endless event stream", content_type = "text/event-stream", body = String)))]
async fn events(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let rx = s.backend.subscribe();
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let replay = match last_seen {
        Some(seq) => s
            .backend
            .recent_events(RECENT_MAX)
            .await?
            .into_iter()
            .filter(|e| e.seq > seq)
            .collect(),
        None => Vec::new(),
    };
    let replayed = stream::iter(replay).map(|e| Ok(to_sse(&e)));
    let mut stopping = s.stopping.clone();
    let stop = async move {
        // A dropped sender means "never stopping" (bare `router()` without `serve`).
        if stopping.wait_for(|v| *v).await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    let stream = replayed.chain(live(rx)).take_until(stop);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn to_sse(e: &Event) -> SseEvent {
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    SseEvent::default()
        .event(kind.unwrap_or_else(|| "event".to_owned()))
        .id(e.seq.to_string())
        .data(serde_json::to_string(e).unwrap_or_default())
}

fn live(rx: Receiver<Event>) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(e) => Some((Ok(to_sse(&e)), rx)),
            Err(RecvError::Lagged(n)) => Some((
                Ok(SseEvent::default().event("lagged").data(n.to_string())),
                rx,
            )),
            Err(RecvError::Closed) => None,
        }
    })
}

/// Paging of `/events/recent`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RecentQuery {
    /// How many of the latest events, 1..=200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

/// The most recent events, oldest first.
#[utoipa::path(get, path = "/api/v1/events/recent", tag = "events", params(RecentQuery),
    responses((status = 200, description = "Events", body = [Event])))]
async fn recent_events(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<RecentQuery>,
) -> Result<ApiJson<Vec<Event>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > RECENT_MAX {
        return Err(ApiError::bad_request(format!(
            "limit={limit} is out of range: use 1..={RECENT_MAX}"
        )));
    }
    Ok(ApiJson(s.backend.recent_events(limit).await?))
}

/// Prometheus text format. Needs a token (the read-only one is enough): set
/// `authorization: {credentials: <read_token>}` in the scrape config.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus exposition format 0.0.4", content_type = "text/plain", body = String)))]
async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = s.backend.metrics_text().await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
