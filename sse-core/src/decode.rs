//! Incremental event-stream decoder (placeholder, being written).

/// A dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecodedEvent {
    /// Event type.
    pub event: String,
    /// Data.
    pub data: String,
    /// Last event id.
    pub last_event_id: String,
}

/// Decoder.
#[derive(Debug, Default)]
pub struct Decoder {}
