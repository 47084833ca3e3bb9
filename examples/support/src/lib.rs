//! What the example apps share, in one version each:
//!
//! - [`ids`]: random hex ids and tokens from the operating system's generator (failing closed
//!   when there is none), and checking an id's shape.
//! - [`token`]: the request's token, from `Authorization: Bearer`, a cookie or the query string
//!   (a browser's `EventSource` cannot set headers).
//! - [`stream_auth`]: stream authentication on `sse-token` (signed, expiring, topic-scoped
//!   tokens), with a fallback to an app's API tokens for the field reports' clients.
//! - [`limits`]: jobs in flight per client and overall, bytes on disk; 429/503 with
//!   `Retry-After`.
//! - [`files`]: removing a job's files when its retention ends, and everything at shutdown.
//! - [`error`]: [`ApiError`], a refused request answered as JSON, for axum, actix-web and hyper.
//! - [`pdf`] (feature `pdf`): a small PDF generator with a real text layer, for sample files.
//! - [`time`]: RFC 3339 timestamps.
//!
//! The apps depend on this crate, never on each other's internals.

pub mod error;
pub mod files;
pub mod ids;
pub mod limits;
#[cfg(feature = "pdf")]
pub mod pdf;
pub mod stream_auth;
pub mod time;
pub mod token;

pub use error::ApiError;
/// The `http` crate whose `StatusCode` [`ApiError`] takes.
pub use http;
pub use ids::{is_hex_id, random_hex, RandomError};
pub use limits::{Admission, DiskBudget, Ticket};
pub use stream_auth::{StreamAuth, StreamUser};
pub use token::{request_token, TokenError, TokenSources};
