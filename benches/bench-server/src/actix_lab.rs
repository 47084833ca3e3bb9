//! The actix baseline: what a typical actix-web user writes for fan-out, actix-web-lab's `sse`
//! responder over a `tokio::sync::broadcast` channel per topic (capacity 1024), one worker.
//!
//! It speaks part 1 of the bench protocol, like [`axum_broadcast`](super::axum_broadcast):
//! `GET /sub/{topic}` (`: ok` first), `POST /pub/{topic}?n=&size=` (payload
//! `{"seq":K,"ts":NANOS,"pad":"xxx…"}`, `id: K`) and `GET /stats`. A subscriber that lags
//! behind the channel skips what it missed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpResponse, Responder};
use actix_web_lab::sse;
use futures_util::stream::{self, StreamExt};
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

async fn subscribe(state: web::Data<Arc<AppState>>, topic: web::Path<String>) -> impl Responder {
    let state: Arc<AppState> = Arc::clone(state.get_ref());
    let rx = state.topic(&topic).tx.subscribe();
    let counted = Counted::new(state);
    let ok = stream::once(async { Ok::<_, Infallible>(sse::Event::Comment("ok".into())) });
    let events = stream::unfold((rx, counted), |(mut rx, counted)| async move {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    let data = sse::Data::new(&*msg.data).id(msg.id.to_string());
                    return Some((Ok(sse::Event::Data(data)), (rx, counted)));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    sse::Sse::from_stream(ok.chain(events)).with_keep_alive(Duration::from_secs(15))
}

#[derive(Deserialize)]
struct PubParams {
    n: u64,
    size: usize,
}

async fn publish(
    state: web::Data<Arc<AppState>>,
    topic: web::Path<String>,
    params: web::Query<PubParams>,
) -> HttpResponse {
    if params.n > super::MAX_N || params.size > super::MAX_SIZE {
        return HttpResponse::BadRequest().body("n or size too large\n");
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
    HttpResponse::Ok().body(format!("{}\n", params.n))
}

async fn stats(state: web::Data<Arc<AppState>>) -> HttpResponse {
    let topics = state.topics.lock().map(|t| t.len()).unwrap_or(0);
    HttpResponse::Ok().json(serde_json::json!({
        "subscribers": state.subscribers.load(Ordering::Relaxed),
        "topics": topics,
        "published": state.published.load(Ordering::Relaxed),
    }))
}

/// Serves the baseline on `listener`: an actix-web `HttpServer` with one worker on its own
/// actix system thread; returns when that server stops.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let listener = listener.into_std()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<io::Result<()>>();
    std::thread::Builder::new()
        .name("actix-lab".into())
        .spawn(move || {
            let res = actix_web::rt::System::new().block_on(async move {
                let state = web::Data::new(Arc::new(AppState::default()));
                actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(state.clone())
                        .route("/sub/{topic}", web::get().to(subscribe))
                        .route("/pub/{topic}", web::post().to(publish))
                        .route("/stats", web::get().to(stats))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)?
                .run()
                .await
            });
            let _ = done_tx.send(res);
        })?;
    done_rx
        .await
        .unwrap_or_else(|_| Err(io::Error::other("the actix server thread died")))
}
