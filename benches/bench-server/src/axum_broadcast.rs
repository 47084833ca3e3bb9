//! The baseline: what a typical axum user writes for fan-out, axum 0.8's built-in
//! `axum::response::sse::{Sse, Event}` over a `tokio::sync::broadcast` channel per topic
//! (capacity 1024).
//!
//! It speaks part 1 of the bench protocol: `GET /sub/{topic}` (`: ok` first, as a comment
//! event), `POST /pub/{topic}?n=&size=` (payload `{"seq":K,"ts":NANOS,"pad":"xxx…"}`, `id: K`)
//! and `GET /stats` (`subscribers`, `topics`, `published`). A subscriber that lags behind the
//! channel skips what it missed, as `BroadcastStream` users usually do.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::broadcast::{self, error::RecvError};

/// Capacity of each topic's broadcast channel.
pub const CAPACITY: usize = 1024;

#[derive(Clone)]
struct Message {
    id: u64,
    data: Arc<str>,
}

struct Topic {
    tx: broadcast::Sender<Message>,
    seq: AtomicU64,
}

#[derive(Default)]
struct AppState {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    subscribers: AtomicUsize,
    published: AtomicU64,
}

impl AppState {
    fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(topics.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Topic {
                tx: broadcast::channel(CAPACITY).0,
                seq: AtomicU64::new(0),
            })
        }))
    }
}

/// The router of the baseline server.
pub fn router() -> Router {
    Router::new()
        .route("/sub/{topic}", get(subscribe))
        .route("/pub/{topic}", post(publish))
        .route("/stats", get(stats))
        .with_state(Arc::new(AppState::default()))
}

/// Serves the baseline on `listener` (on the caller's runtime).
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    axum::serve(listener, router()).await
}

/// Counts a subscriber while its stream lives.
struct Counted(Arc<AppState>);

impl Counted {
    fn new(state: Arc<AppState>) -> Self {
        state.subscribers.fetch_add(1, Ordering::Relaxed);
        Counted(state)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn subscribe(
    State(state): State<Arc<AppState>>,
    Path(topic): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.topic(&topic).tx.subscribe();
    let counted = Counted::new(state);
    let ok = stream::once(async { Ok(Event::default().comment("ok")) });
    let events = stream::unfold((rx, counted), |(mut rx, counted)| async move {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    let event = Event::default().id(msg.id.to_string()).data(&*msg.data);
                    return Some((Ok(event), (rx, counted)));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(ok.chain(events)).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct PubParams {
    n: u64,
    size: usize,
}

async fn publish(
    State(state): State<Arc<AppState>>,
    Path(topic): Path<String>,
    Query(params): Query<PubParams>,
) -> Response {
    if params.n > super::MAX_N || params.size > super::MAX_SIZE {
        return (StatusCode::BAD_REQUEST, "n or size too large\n").into_response();
    }
    let topic = state.topic(&topic);
    let pad = "x".repeat(params.size);
    for _ in 0..params.n {
        let id = topic.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut data = format!("{{\"seq\":{id},\"ts\":{ts},\"pad\":\"");
        let fill = params.size.saturating_sub(data.len() + 2);
        data.push_str(&pad[..fill.min(pad.len())]);
        let _ = write!(data, "\"}}");
        // No receivers is not an error for a publisher.
        let _ = topic.tx.send(Message {
            id,
            data: data.into(),
        });
        state.published.fetch_add(1, Ordering::Relaxed);
    }
    format!("{}\n", params.n).into_response()
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let topics = state.topics.lock().map(|t| t.len()).unwrap_or(0);
    Json(serde_json::json!({
        "subscribers": state.subscribers.load(Ordering::Relaxed),
        "topics": topics,
        "published": state.published.load(Ordering::Relaxed),
    }))
}
