//! What leaves the engine: a neutral [`Delivery`] (the batch, its summary and the final
//! severity, computed once), where it landed ([`Receipt`]), and the audit record of it.
//!
//! Nothing here knows a destination's format. Each destination renders a delivery inside its
//! own adapter: the Slack notifier builds Block Kit, the audit writer writes [`AuditLine`]s,
//! the text and HTML previews draw themselves.

pub mod audit;

use serde::{Deserialize, Serialize};

pub use audit::{AuditEvent, AuditLine, PostedAs, SummaryBy};

use crate::incident::{HeldEntry, Incident, Parent};
use crate::severity::Severity;
use crate::summary::{Locale, Summary};
use crate::window::Batch;

/// The final severity of a batch: the worst of its rules' and the summary's.
///
/// The summarizer may raise the colour, never lower it (a model cannot talk an alert down).
/// This is the one place that decides it; every destination reads [`Delivery::severity`].
pub fn final_severity(batch: &Batch, summary: &Summary) -> Severity {
    batch.rule_severity().max(summary.severity)
}

/// Where a delivery goes in its channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// A top-level message: a window's digest of new incidents, or an immediate alert.
    #[default]
    Top,
    /// A top-level reminder that an incident is still going (its state after this batch).
    Reminder(Box<Incident>),
    /// A reply in the thread of the incident's first message (its state after this batch).
    Reply(Box<Incident>),
    /// A digest of new incidents past the channel's hourly ceiling, top level: it opens the
    /// thread the next ones of the hour fold into. `usize`: the ceiling.
    Overflow(usize),
    /// A digest of new incidents past the ceiling, in the thread of the hour's overflow post.
    Folded(Parent),
    /// Not posted: a reply for a destination without threads, held in the store for the
    /// account's next top-level post (see [`crate::incident::held`]); the incident's state
    /// after this batch.
    Held(Box<Incident>),
    /// A top-level post of held events only ([`Delivery::continuing`]), when nothing else
    /// posted for the account before they were due. Its batch has no events.
    Continuing,
    /// A top-level notice about the pipeline itself (a source went silent or came back; see
    /// [`crate::engine::heartbeat`]): the summary's headline and body say it all. Its batch
    /// has no events; `batch.id.event` names the notice (`silent-us-east-1`, ...).
    Notice,
}

/// A batch ready to go out: what happened, what the summarizer said of it, how bad it is,
/// the reader's language and time zone the summary was written for, and where it goes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub batch: Batch,
    pub summary: Summary,
    /// [`final_severity`] of the batch and summary.
    pub severity: Severity,
    pub locale: Locale,
    pub placement: Placement,
    /// Events of this window left out because their immediate alert already went out.
    pub alerted_elsewhere: usize,
    /// Held events of the account's continuing incidents, listed in a compact section of a
    /// top-level post (destinations without threads; see [`crate::incident::held`]).
    pub continuing: Vec<HeldEntry>,
    /// False when the destination cannot thread: a reminder then says where earlier events
    /// were listed instead of pointing at a thread.
    pub threaded: bool,
}

impl Delivery {
    /// A top-level delivery.
    pub fn new(batch: Batch, summary: Summary, locale: Locale) -> Self {
        let severity = final_severity(&batch, &summary);
        Self {
            batch,
            summary,
            severity,
            locale,
            placement: Placement::Top,
            alerted_elsewhere: 0,
            continuing: Vec::new(),
            threaded: true,
        }
    }

    /// Replace the summary (the model's explanation of a part planned with its offline text);
    /// the final severity follows it.
    pub fn set_summary(&mut self, summary: Summary) {
        self.severity = final_severity(&self.batch, &summary);
        self.summary = summary;
    }

    #[must_use]
    pub fn placed(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// True when it posts top level (a digest, an immediate alert, a reminder, an overflow
    /// post or a post of held events).
    pub fn is_top_level(&self) -> bool {
        matches!(
            self.placement,
            Placement::Top
                | Placement::Reminder(_)
                | Placement::Overflow(_)
                | Placement::Continuing
                | Placement::Notice
        )
    }

    /// The delivery's own key, unique across every delivery: the batch key, then for a
    /// reminder or reply `/reminder/…` or `/reply/…` and the incident's key digest.
    /// Slack messages carry it in their metadata (what makes posting idempotent).
    pub fn key(&self) -> String {
        match &self.placement {
            Placement::Top | Placement::Overflow(_) | Placement::Folded(_) => self.batch.id.key(),
            Placement::Reminder(incident) => {
                format!(
                    "{}/reminder/{}",
                    self.batch.id.key(),
                    &incident.key.digest()[..12]
                )
            }
            Placement::Reply(incident) | Placement::Held(incident) => {
                format!(
                    "{}/reply/{}",
                    self.batch.id.key(),
                    &incident.key.digest()[..12]
                )
            }
            Placement::Continuing => format!(
                "{}/continuing/{}",
                self.batch.id.key(),
                self.batch.window_end.format("%H%M%S")
            ),
            Placement::Notice => format!(
                "{}/{}/notice/{}",
                self.batch.id.account,
                self.batch.id.window_start.format("%Y%m%dT%H%MZ"),
                self.batch.id.event.as_deref().unwrap_or_default()
            ),
        }
    }

    /// The incident this delivery is about, when it is about one.
    pub fn incident(&self) -> Option<&Incident> {
        match &self.placement {
            Placement::Top
            | Placement::Overflow(_)
            | Placement::Folded(_)
            | Placement::Continuing
            | Placement::Notice => None,
            Placement::Reminder(incident)
            | Placement::Reply(incident)
            | Placement::Held(incident) => Some(incident),
        }
    }

    /// For a reply, the key of the message it replies under.
    pub fn thread_of(&self) -> Option<&str> {
        self.parent().map(|parent| parent.batch_key.as_str())
    }

    /// For a reply, the message it replies under.
    pub fn parent(&self) -> Option<&Parent> {
        match &self.placement {
            Placement::Reply(incident) => Some(&incident.parent),
            Placement::Folded(parent) => Some(parent),
            _ => None,
        }
    }

    /// The audit record of this delivery, with where it landed (`receipt`'s first post).
    pub fn audit(&self, receipt: &Receipt) -> AuditLine {
        let mut line = audit::audit_line(self);
        if let Some(first) = receipt.posts.first() {
            line.channel = Some(first.destination.clone());
            line.ts = Some(first.id.clone());
        }
        line
    }
}

/// Where a delivery landed: one entry per destination it was posted to, in posting order.
/// Empty when the destination gives no reference (a webhook, a file, memory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub posts: Vec<Posted>,
}

/// One landing place of a delivery, in the destination's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Where: for Slack, the channel id.
    pub destination: String,
    /// The first message's reference there: for Slack, its `ts` (the thread parent).
    pub id: String,
}
