//! The wall clock, for production.

use chrono::{DateTime, Utc};

use crate::window::Clock;

/// Reads the system time. The one place it is read.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The Clock port is where wall time enters.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn wall(&self) -> Option<DateTime<Utc>> {
        Some(self.now())
    }
}
