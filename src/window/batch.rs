//! What a window flush hands to the summarizer and the renderer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::enrich::Performer;
use crate::event::{AccountId, Event};
use crate::rules::Rule;
use crate::severity::Severity;

/// Why a batch exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// The window's digest, sent once the window is due.
    Window,
    /// Events that arrived after the window's digest was sent.
    Late,
    /// One event of an `immediate` rule, posted at once, alone.
    Immediate,
}

/// Identifies one batch: the account, its window, and a sequence number (0 = the digest,
/// 1.. = late follow-ups; immediate alerts carry the event id instead). Compared, hashed and
/// serialised without `claim`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchId {
    pub account: AccountId,
    pub window_start: DateTime<Utc>,
    pub seq: u32,
    /// Set for immediate alerts.
    pub event: Option<String>,
    /// Which claim of the batch this id came from, when a store tells its claims apart (the
    /// DynamoDB store: the generation the claim froze). `mark_sent` and `release` then act only
    /// if that claim still holds the batch, not a later takeover of it. Not part of the batch's
    /// identity.
    #[serde(skip)]
    pub claim: Option<i64>,
}

impl BatchId {
    fn identity(&self) -> (&AccountId, &DateTime<Utc>, u32, &Option<String>) {
        (&self.account, &self.window_start, self.seq, &self.event)
    }
}

impl PartialEq for BatchId {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for BatchId {}

impl std::hash::Hash for BatchId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl PartialOrd for BatchId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BatchId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.identity().cmp(&other.identity())
    }
}

impl BatchId {
    /// A stable text form, used in Slack metadata and audit keys.
    pub fn key(&self) -> String {
        let start = self.window_start.format("%Y%m%dT%H%MZ");
        match &self.event {
            Some(event) => format!("{}/{start}/immediate/{event}", self.account),
            None => format!("{}/{start}/{}", self.account, self.seq),
        }
    }
}

/// A matched event with what enrichment said about it. Serialised (the rule inline) where
/// events are stored: DynamoDB event items, replay's sorted runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchEvent {
    pub event: Event,
    pub rule: Arc<Rule>,
    pub actor: Performer,
    /// True when an immediate alert already went out for this event.
    pub already_alerted: bool,
    /// True when the record was dated in the future and placed at its arrival
    /// ([`crate::engine::FUTURE_BOUND`]): its window then depends on when it arrived, so a
    /// store dedupes it by event id alone, not within its window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placed: bool,
    /// The incident the event was posted under ([`crate::incident::Incident::id`]), once a
    /// flush placed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The values its rule's `threshold.distinct` counts, read when the record was decoded
    /// (empty for other rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted: Vec<String>,
    /// For an event of a threshold rule: the rule that reports it when its group stays below
    /// the threshold (the worst matching rule without a threshold), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Arc<Rule>>,
}

impl BatchEvent {
    pub fn severity(&self) -> Severity {
        self.rule.severity
    }
}

/// A set of events to summarise and post together.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: BatchId,
    pub kind: BatchKind,
    pub account_name: Option<String>,
    pub window_end: DateTime<Utc>,
    /// Ordered by event time, then id.
    pub events: Vec<BatchEvent>,
}

impl Batch {
    /// The worst rule severity in the batch (green when empty).
    pub fn rule_severity(&self) -> Severity {
        self.events
            .iter()
            .map(BatchEvent::severity)
            .max()
            .unwrap_or(Severity::Green)
    }

    /// "111111111111 (A계정)" or just the number.
    pub fn account_label(&self) -> String {
        match &self.account_name {
            Some(name) => format!("{} ({name})", self.id.account),
            None => self.id.account.to_string(),
        }
    }

    pub fn is_late(&self) -> bool {
        self.kind == BatchKind::Late
    }
}
