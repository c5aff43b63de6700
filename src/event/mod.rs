//! Events: every input shape decoded into one typed, redacted [`Event`].

pub mod decode;
mod model;
mod raw;
mod resources;

pub use decode::{
    DecodeOptions, Decoded, Heartbeat, Quarantined, Skipped, decode_bytes, decode_bytes_with,
};
pub use model::{
    AccountId, Event, EventId, EventKind, Facts, Identity, Resource, SharedStr, display_name,
};
pub use raw::RawJson;
pub use resources::MAX_RESOURCES;
