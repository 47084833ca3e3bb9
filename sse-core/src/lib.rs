//! Framework-neutral Server-Sent Events.
//!
//! * [`Event`] → [`Frame`]: spec-exact, validated encoding into shared [`bytes::Bytes`].
//! * [`Decoder`]: an incremental, spec-conformant event-stream parser, with owned
//!   ([`DecodedEvent`]) or borrowed, allocation-free ([`EventRef`]) events.
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
