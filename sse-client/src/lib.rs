//! An async Server-Sent Events client that reconnects the way a browser's `EventSource` does,
//! and reads events without allocating.
//!
//! ```
//! # use axum::{extract::{Path, State}, routing::get, Router};
//! # use sse_core::{hub::SubscribeOptions, Event as SseEvent, Hub};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let hub = Hub::new();
//! # let job = hub.job("ocr-42")?;
//! # tokio::spawn(async move {
//! #     // Publishes once the client below has subscribed (waiting 5 s at most).
//! #     for _ in 0..500 {
//! #         if job.topic().subscriber_count() > 0 { break; }
//! #         tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! #     }
//! #     job.progress(&serde_json::json!({"page": 1, "of": 2})).await?;
//! #     job.progress(&serde_json::json!({"page": 2, "of": 2})).await?;
//! #     job.complete(SseEvent::new().event("completed").data("done")).await
//! # });
//! # let app = Router::new()
//! #     .route("/jobs/{id}", get(|State(hub): State<Hub>, Path(id): Path<String>| async move {
//! #         sse_axum::subscribe(&hub, SubscribeOptions::topic(id)).await
//! #     }))
//! #     .with_state(hub);
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! # tokio::spawn(async move { axum::serve(listener, app).await });
//! use serde::Deserialize;
//! use sse_client::Client;
//!
//! #[derive(Deserialize)]
//! struct Progress {
//!     page: u32,
//!     of: u32,
//! }
//!
//! let client = Client::builder().build()?;
//! let mut events = client.get(format!("http://{addr}/jobs/ocr-42")).open()?;
//! let mut pages = Vec::new();
//! // Connects, and reconnects with Last-Event-ID whenever the stream breaks off.
//! while let Some(event) = events.next_event().await? {
//!     match event.event_type() {
//!         "progress" => {
//!             let progress: Progress = event.json()?;
//!             pages.push((progress.page, progress.of));
//!         }
//!         "completed" => break,
//!         _ => {}
//!     }
//! }
//! assert_eq!(pages, [(1, 2), (2, 2)]);
//! # Ok(())
//! # }
//! ```
//!
//! # What it does
//!
//! * **Requests**: GET, POST or any method, with headers and a body ([`RequestBuilder`]),
//!   `http://` and `https://` (rustls, Mozilla's roots built in, more roots with
//!   [`ClientBuilder::add_root_certificates_pem`]; no OpenSSL). The same request is sent at every
//!   reconnection, with `Last-Event-ID` once the stream has given an id.
//! * **Reconnection**: when the stream ends or the connection fails, wait the server's `retry:`
//!   time (3 s until it sends one), grown exponentially with jitter and capped while attempts
//!   fail ([`Backoff`]); give up after [`RequestBuilder::max_retries`] if set.
//! * **Stopping**: `204 No Content` stops for good (`Ok(None)`); another status than 200, or a
//!   `Content-Type` other than `text/event-stream`, stops with a typed [`Error`]
//!   ([`Error::is_status`], [`Error::is_content_type`]).
//! * **Idle timeout** ([`RequestBuilder::idle_timeout`]): reconnect when no byte arrives for
//!   that long; heartbeat comments count as bytes, so a server that sends them keeps the stream.
//! * **Events** are [`Event`]s borrowed from the decoder ([`sse_core::Decoder::next_event_ref`]):
//!   reading one allocates nothing. [`Event::json`] deserializes the data with serde.
//! * **Observing** the connection: [`EventSource::next`] also reports [`Update::Connected`] and
//!   [`Update::Reconnecting`] (with the delay and the cause).
#![forbid(unsafe_code)]

mod backoff;
mod client;
mod error;
mod request;
mod source;

pub use backoff::Backoff;
pub use client::{Client, ClientBuilder};
pub use error::{BuildError, Error, UrlError};
pub use request::{IntoUrl, RequestBuilder, DEFAULT_RETRY};
pub use source::{Connected, Event, EventSource, Reconnect, Update};

pub use url::Url;
