//! Test harness shared by the sse workspace's test suites (dev-only, never published).
//!
//! - [`redis`]: a private `redis-server` on a free port in a temporary directory, killed and
//!   removed when dropped, and the "skip loudly unless `CI` is set" check.
//! - [`browser`]: finding headless Chromium and Node.js, installing the shared playwright setup
//!   in `examples/tests/browser/`, running a `.mjs` script, and checking its screenshots.
//! - [`raw`]: a raw-socket HTTP/1.1 client: one-shot requests and SSE subscribers that
//!   de-chunk and decode the body.
//! - [`sse`]: reading a streaming response body with [`sse_core::Decoder`], chunk by chunk,
//!   event by event, each read bounded by a timeout.
//! - [`conformance`]: the one suite every adapter runs against its standard app.

pub mod browser;
pub mod conformance;
pub mod raw;
pub mod redis;
pub mod sse;
