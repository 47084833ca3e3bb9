//! What the example apps share, in one version each:
//!
//! - [`ids`]: random hex ids and tokens from the operating system's generator (failing closed
//!   when there is none), and checking an id's shape.
//! - [`token`]: the request's token, from `Authorization: Bearer`, a cookie or the query string
//!   (a browser's `EventSource` cannot set headers).
//! - [`error`]: [`ApiError`], a refused request answered as JSON, for axum, actix-web and hyper.
//! - [`pdf`] (feature `pdf`): a small PDF generator with a real text layer, for sample files.
//! - [`time`]: RFC 3339 timestamps.
//!
//! The apps depend on this crate, never on each other's internals.

pub mod error;
pub mod ids;
#[cfg(feature = "pdf")]
pub mod pdf;
pub mod time;
pub mod token;

pub use error::ApiError;
/// The `http` crate whose `StatusCode` [`ApiError`] takes.
pub use http;
pub use ids::{is_hex_id, random_hex, RandomError};
pub use token::{request_token, TokenError, TokenSources};
