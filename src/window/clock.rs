//! The Clock port: wall-clock time enters the engine only through here.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Port: what time it is for the engine.
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;

    /// Called with each event's time as it is ingested. Wall clocks ignore it; the replay
    /// clock advances with it, so replay output depends only on the input.
    fn observe(&self, event_time: DateTime<Utc>) {
        let _ = event_time;
    }

    /// The engine's current time, when it has one; replay's clock has none before its first
    /// event.
    fn current(&self) -> Option<DateTime<Utc>> {
        Some(self.now())
    }

    /// The real time, when this clock knows it: no event can be dated much later than this
    /// (see `Engine::ingest`). `None`: not checked (a test's manual clock).
    fn wall(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// A clock that tests set and advance by hand.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }

    pub fn advance(&self, by: chrono::TimeDelta) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Replay's clock: the latest event time seen (a watermark), never moving back.
#[derive(Debug, Default)]
pub struct EventTimeClock {
    now: Mutex<Option<DateTime<Utc>>>,
    /// The real time when the replay started (what events cannot be dated much later than).
    wall: Option<DateTime<Utc>>,
}

impl EventTimeClock {
    /// A replay clock that knows the real time `wall` (the system clock's, at start).
    pub fn with_wall(wall: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(None),
            wall: Some(wall),
        }
    }
}

impl Clock for EventTimeClock {
    fn wall(&self) -> Option<DateTime<Utc>> {
        self.wall
    }

    fn current(&self) -> Option<DateTime<Utc>> {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unwrap_or(DateTime::UNIX_EPOCH)
    }

    fn observe(&self, event_time: DateTime<Utc>) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.is_none_or(|n| n < event_time) {
            *now = Some(event_time);
        }
    }
}
