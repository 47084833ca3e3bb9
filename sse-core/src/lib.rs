//! Framework-neutral Server-Sent Events: the engine behind `sse-axum`, `sse-actix` and
//! `sse-hyper`.
//!
//! ```
//! use futures_util::StreamExt;
//! use sse_core::{Event, Hub};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let job = hub.job("ocr-42")?;                 // a topic with a job's lifecycle
//! let mut stream = hub.subscribe("ocr-42").await?;  // what a handler turns into a response
//!
//! job.progress(&serde_json::json!({ "page": 1, "of": 2 })).await?;
//! job.complete(Event::new().event("completed").data("done")).await?;
//!
//! let first = stream.next().await.unwrap();
//! assert!(first.as_bytes().starts_with(b"event: progress\ndata: {\"of\":2,\"page\":1}\nid: "));
//! let last = stream.next().await.unwrap();
//! assert!(last.as_bytes().starts_with(b"event: completed\n"));
//! assert!(stream.next().await.is_none()); // the stream ends after the terminal event
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Map
//!
//! * [`Event`] → [`Frame`] ([`event`], [`frame`]): spec-exact, validated encoding into shared
//!   [`bytes::Bytes`]; invalid names and ids are typed errors, never a corrupted stream.
//! * [`Decoder`] ([`decode`]): an incremental, spec-conformant parser, with owned
//!   ([`DecodedEvent`]) or borrowed, allocation-free ([`EventRef`]) events.
//! * [`Hub`] ([`hub`]): per-topic fan-out with `Last-Event-ID` replay, restart-safe ids,
//!   snapshots, jobs ([`JobPublisher`]), backpressure policies, limits, metrics and shutdown.
//!   Every publish returns a [`PublishAck`](hub::PublishAck); [`Hub::subscribe`] is async. The
//!   [`Backplane`](hub::Backplane) seam makes several nodes one cluster (`sse-redis`).
//! * [`SseBody`] ([`body`]): an `http_body::Body` over a subscription or any stream: first byte
//!   at once, ready frames coalesced into one chunk, lazy heartbeats.
//! * [`StreamResponse`] ([`response`]) and [`http`]: the response builder and the HTTP
//!   decisions (headers, `Last-Event-ID`, `Accept` negotiation, status of every refusal) that
//!   the adapters share.
//!
//! Adapters: `sse-axum`, `sse-actix`, `sse-hyper`. Around them: `sse-redis` (a Redis Streams
//! backplane), `sse-token` (stream tokens for `EventSource` URLs), `sse-client` (a Rust client).
#![forbid(unsafe_code)]

pub mod body;
pub mod decode;
pub mod event;
pub mod frame;
pub mod http;
pub mod hub;
pub mod response;

pub use body::SseBody;
pub use decode::{DecodeStream, DecodedEvent, Decoder, EventRef};
pub use event::{Event, EventError, Field, ForbiddenChar};
pub use frame::Frame;
pub use hub::{Hub, JobPublisher, Subscription, Topic};
pub use response::StreamResponse;
