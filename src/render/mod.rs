//! Rendering: Slack Block Kit, the HTML preview, and escaping of event text.

pub mod audit;
pub mod escape;
pub mod html;
mod mrkdwn;
pub mod slack;
pub mod text;

#[cfg(test)]
mod testing;

pub use audit::{AuditEvent, AuditLine, SummaryBy, audit_line};
pub use escape::{code, escape, plain, truncate_chars};
pub use html::preview;
pub use slack::{SlackMessage, render_batch};
pub use text::text;
