//! Framework-neutral Server-Sent Events.
//!
//! * [`Event`] → [`Frame`]: spec-exact, validated encoding into shared [`bytes::Bytes`].
//! * [`Decoder`]: an incremental, spec-conformant event-stream parser.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod decode;
pub mod event;
pub mod frame;

pub use decode::{DecodedEvent, Decoder};
pub use event::{Event, EventError, Field, ForbiddenChar};
pub use frame::Frame;
