//! Test harness shared by the sse workspace's test suites (dev-only, never published).
//!
//! - [`tools`]: the one rule for tests that need a system tool (ffmpeg, tesseract, pdftoppm,
//!   chromium, node, redis-server): fail in CI with the install command, skip visibly elsewhere.
//! - [`redis`]: a private `redis-server` on a free port in a temporary directory, killed and
//!   removed when dropped; app processes on it as backplane nodes.
//! - [`browser`]: finding headless Chromium and Node.js, installing the shared playwright setup
//!   in `examples/browser/`, running a `.mjs` script, and checking its screenshots.
//! - [`raw`]: a raw-socket HTTP/1.1 client: one-shot requests and SSE subscribers that
//!   de-chunk and decode the body.
//! - [`sse`]: reading a streaming response body with [`sse_core::Decoder`], chunk by chunk,
//!   event by event, each read bounded by a timeout.
//! - [`minimal`]: the checks the three minimal examples share.
//! - [`logs`]: capturing the project's `tracing` events as JSON in a test binary.
//! - [`conformance`]: the one suite every adapter runs against its standard app.

pub mod browser;
pub mod conformance;
pub mod logs;
pub mod minimal;
pub mod raw;
pub mod redis;
pub mod sse;
pub mod tools;
