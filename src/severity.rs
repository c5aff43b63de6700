//! Red / yellow / green: how bad a change is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Ordered so that `max` gives the worse one: `Green < Yellow < Red`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Routine, expected change.
    Green,
    /// Worth a look: permissions, exposure, or an unusual actor.
    Yellow,
    /// Act now: root use, tampering with logging or security controls, deletions of guard rails.
    Red,
}

impl Severity {
    pub const ALL: [Self; 3] = [Self::Green, Self::Yellow, Self::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Red => "red",
        }
    }

    /// The Slack attachment colour bar.
    pub fn colour(self) -> &'static str {
        match self {
            Self::Green => "#2eb67d",
            Self::Yellow => "#ecb22e",
            Self::Red => "#e01e5a",
        }
    }

    /// A one-glyph marker for plain text and Slack.
    pub fn emoji(self) -> &'static str {
        match self {
            Self::Green => ":large_green_circle:",
            Self::Yellow => ":large_yellow_circle:",
            Self::Red => ":red_circle:",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not `red`, `yellow` or `green`.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity {0:?}: expected red, yellow or green")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "green" => Ok(Self::Green),
            "yellow" => Ok(Self::Yellow),
            "red" => Ok(Self::Red),
            _ => Err(UnknownSeverity(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_is_the_worse() {
        assert_eq!(Severity::Green.max(Severity::Red), Severity::Red);
        assert_eq!(Severity::Yellow.max(Severity::Green), Severity::Yellow);
        assert_eq!("RED".parse::<Severity>().ok(), Some(Severity::Red));
        assert!("purple".parse::<Severity>().is_err());
    }
}
