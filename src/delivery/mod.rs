//! What leaves the engine: a neutral [`Delivery`] (the batch, its summary and the final
//! severity, computed once), where it landed ([`Receipt`]), and the audit record of it.
//!
//! Nothing here knows a destination's format. Each destination renders a delivery inside its
//! own adapter: the Slack notifier builds Block Kit, the audit writer writes [`AuditLine`]s,
//! the text and HTML previews draw themselves.

pub mod audit;

use serde::Serialize;

pub use audit::{AuditEvent, AuditLine, SummaryBy};

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

/// A batch ready to go out: what happened, what the summarizer said of it, how bad it is,
/// and the reader's language and time zone the summary was written for.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub batch: Batch,
    pub summary: Summary,
    /// [`final_severity`] of the batch and summary.
    pub severity: Severity,
    pub locale: Locale,
}

impl Delivery {
    pub fn new(batch: Batch, summary: Summary, locale: Locale) -> Self {
        let severity = final_severity(&batch, &summary);
        Self {
            batch,
            summary,
            severity,
            locale,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Posted {
    /// Where: for Slack, the channel id.
    pub destination: String,
    /// The first message's reference there: for Slack, its `ts` (the thread parent).
    pub id: String,
}
