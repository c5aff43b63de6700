//! Five-minute tumbling windows per account: arithmetic, batches, and the engine.

mod batch;
mod book;
mod clock;

use chrono::{DateTime, TimeDelta, Utc};

pub use batch::{Batch, BatchEvent, BatchId, BatchKind};
pub use book::{Added, Claimed, WindowBook};
pub use clock::{Clock, EventTimeClock, ManualClock};

/// Window width and grace, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// Width of each tumbling window (default five minutes).
    pub width: TimeDelta,
    /// How long after a window ends stragglers are still awaited (default two minutes).
    pub grace: TimeDelta,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            width: TimeDelta::minutes(5),
            grace: TimeDelta::minutes(2),
        }
    }
}

impl WindowConfig {
    /// `floor(t / width) * width`.
    pub fn start_of(&self, time: DateTime<Utc>) -> DateTime<Utc> {
        let width = self.width.num_milliseconds().max(1);
        let millis = time.timestamp_millis();
        let start = millis.div_euclid(width) * width;
        DateTime::from_timestamp_millis(start).unwrap_or(time)
    }

    pub fn end_of(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start + self.width
    }

    /// When a window's digest is due: its end plus grace.
    pub fn due_at(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start + self.width + self.grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn windows_are_floored_to_width() {
        let config = WindowConfig::default();
        assert_eq!(
            config.start_of(at("2026-11-02T03:04:59Z")),
            at("2026-11-02T03:00:00Z")
        );
        assert_eq!(
            config.start_of(at("2026-11-02T03:05:00Z")),
            at("2026-11-02T03:05:00Z")
        );
        assert_eq!(
            config.due_at(at("2026-11-02T03:05:00Z")),
            at("2026-11-02T03:12:00Z")
        );
        let before_epoch = at("1969-12-31T23:59:59Z");
        assert_eq!(config.start_of(before_epoch), at("1969-12-31T23:55:00Z"));
    }
}
