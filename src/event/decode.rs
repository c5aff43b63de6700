//! One decoder for every input shape.

use serde::Serialize;

use super::Event;

/// A record that could not be decoded: kept, redacted and bounded, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub reason: String,
    pub excerpt: String,
}

/// One decoded record.
#[derive(Debug)]
pub enum Decoded {
    Event(Box<Event>),
    Quarantined(Quarantined),
}

/// Decode a buffer of any supported shape.
pub fn decode_bytes(input: &[u8], sink: &mut dyn FnMut(Decoded)) {
    let _ = (input, sink);
}
