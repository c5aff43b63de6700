//! The audit record of a sent batch: one JSON line, what was posted and why.

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use super::{Delivery, Placement};
use crate::enrich::PrincipalKind;
use crate::severity::Severity;
use crate::summary::SummarySource;
use crate::window::BatchKind;

/// Who wrote the summary that went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SummaryBy {
    Offline,
    Fallback,
    Model,
}

impl From<&SummarySource> for SummaryBy {
    fn from(source: &SummarySource) -> Self {
        match source {
            SummarySource::Offline => Self::Offline,
            SummarySource::Fallback { .. } => Self::Fallback,
            SummarySource::Model { .. } => Self::Model,
        }
    }
}

/// Where a delivery was posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostedAs {
    /// A top-level message (a digest, an immediate alert, a reminder).
    #[default]
    Top,
    /// A thread reply under an incident's first message.
    Reply,
    /// Folded into a top-level post that lists several incidents.
    Folded,
    /// Held for the account's next top-level post, which lists it in a compact
    /// "continuing" section (destinations without threads; see `incident::held`).
    Held,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    /// [`Delivery::key`]: the batch key, with `/reply/…` or `/reminder/…` for those.
    pub batch_id: String,
    pub kind: BatchKind,
    /// Top level or thread reply (lines written before incidents existed read as `top`).
    #[serde(default)]
    pub posted: PostedAs,
    /// The incident a reply or reminder is about, or the one incident a digest opens; `null`
    /// for a digest of several incidents (each event carries its own).
    #[serde(default)]
    pub incident: Option<String>,
    pub account: String,
    pub account_name: Option<String>,
    /// RFC 3339, UTC.
    pub window_start: String,
    pub late: bool,
    /// Final: the worse of the rules' and the summary's.
    pub severity: Severity,
    pub summary_by: SummaryBy,
    /// The model that wrote the summary (absent for offline summaries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// `prompts/VERSION` of the prompt the model saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input tokens read from Bedrock's prompt cache (model summaries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    /// Input tokens written to Bedrock's prompt cache (model summaries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Batches the model call explained together (model summaries only); the tokens above
    /// are this batch's share of that call's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_batches: Option<u32>,
    /// Why the model's summary was replaced by the offline one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub events: Vec<AuditEvent>,
    /// Where the first message landed, when the notifier knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
}

/// One event of the batch, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub name: String,
    /// The actor's display name.
    pub actor: String,
    /// `person`, `workload`, `aws-service`, `root` or `unknown`. (Lines written before the
    /// performer fields existed read back as `unknown` with an empty principal and tool.)
    #[serde(default = "unknown_principal")]
    pub principal_kind: PrincipalKind,
    /// Who, as named for readers: `dae.kim (SSO)`, `unknown user (name hidden by AWS)`.
    #[serde(default)]
    pub principal: String,
    /// `console`, `cli`, `sdk`, `terraform`, ..., `ci:github-actions`.
    #[serde(default)]
    pub tool: String,
    /// The CI system when a configured CI role acted (`ci:github-actions`, or `ci`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    /// The rule's severity for this event.
    pub severity: Severity,
    /// The incident the event belongs to (absent on lines written before incidents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// What was odd about the record and how it was read anyway (`Event::oddities`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oddities: Vec<String>,
}

fn unknown_principal() -> PrincipalKind {
    PrincipalKind::Unknown
}

/// The audit line of `delivery`, without a landing place (see [`Delivery::audit`]).
pub(super) fn audit_line(delivery: &Delivery) -> AuditLine {
    let (batch, summary) = (&delivery.batch, &delivery.summary);
    let mut line = AuditLine {
        batch_id: delivery.key(),
        kind: batch.kind,
        posted: match delivery.placement {
            Placement::Reply(_) => PostedAs::Reply,
            Placement::Folded(_) => PostedAs::Folded,
            Placement::Held(_) => PostedAs::Held,
            Placement::Top
            | Placement::Reminder(_)
            | Placement::Overflow(_)
            | Placement::Continuing
            | Placement::Notice => PostedAs::Top,
        },
        incident: delivery.incident().map(|i| i.id.clone()).or_else(|| {
            let mut ids = batch.events.iter().filter_map(|e| e.incident.as_deref());
            let first = ids.next()?;
            ids.all(|id| id == first).then(|| first.to_owned())
        }),
        account: batch.id.account.to_string(),
        account_name: batch.account_name.clone(),
        window_start: batch
            .id
            .window_start
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        late: batch.is_late(),
        severity: delivery.severity,
        summary_by: SummaryBy::from(&summary.source),
        model_id: None,
        prompt_version: None,
        input_tokens: None,
        output_tokens: None,
        cache_read_tokens: None,
        cache_write_tokens: None,
        latency_ms: None,
        attempts: None,
        call_batches: None,
        fallback_reason: None,
        events: batch
            .events
            .iter()
            .map(|e| AuditEvent {
                id: e.event.id.to_string(),
                name: e.event.name.to_string(),
                actor: e.actor.principal.name.clone(),
                principal_kind: e.actor.principal.kind,
                principal: e.actor.principal.describe(),
                tool: e.actor.tool_label(),
                ci: e.actor.ci.as_ref().map(ToString::to_string),
                severity: e.severity(),
                incident: e.incident.clone(),
                oddities: e.event.oddities.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        channel: None,
        ts: None,
    };
    match &summary.source {
        SummarySource::Offline => {}
        SummarySource::Fallback { reason } => line.fallback_reason = Some(reason.clone()),
        SummarySource::Model {
            model_id,
            prompt_version,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            latency_ms,
            attempts,
            call_batches,
        } => {
            line.model_id = Some(model_id.clone());
            line.prompt_version = Some(prompt_version.clone());
            line.input_tokens = Some(*input_tokens);
            line.output_tokens = Some(*output_tokens);
            line.cache_read_tokens = Some(*cache_read_tokens);
            line.cache_write_tokens = Some(*cache_write_tokens);
            line.latency_ms = Some(*latency_ms);
            line.attempts = Some(*attempts);
            line.call_batches = Some(*call_batches);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::delivery::{Posted, Receipt};
    use crate::testing::{delivery, small_batch, summary};

    #[test]
    fn has_the_documented_shape() {
        let line =
            delivery(small_batch(), summary("h", Severity::Green)).audit(&Receipt::default());
        let value = serde_json::to_value(&line).unwrap_or_default();
        assert_eq!(
            value,
            json!({
                "batch_id": "111111111111/20240101T0000Z/0",
                "kind": "window",
                "posted": "top",
                "incident": null,
                "account": "111111111111",
                "account_name": "A계정",
                "window_start": "2024-01-01T00:00:00Z",
                "late": false,
                "severity": "yellow",
                "summary_by": "offline",
                "events": [
                    {"id": "e1", "name": "CreateUser", "actor": "alice@example.com",
                     "principal_kind": "person", "principal": "alice@example.com",
                     "tool": "console", "severity": "yellow"},
                    {"id": "e2", "name": "AttachUserPolicy", "actor": "alice@example.com",
                     "principal_kind": "person", "principal": "alice@example.com",
                     "tool": "console", "severity": "yellow"},
                    {"id": "e3", "name": "DeleteBucket", "actor": "terraform-ci",
                     "principal_kind": "workload", "principal": "terraform-ci",
                     "tool": "terraform", "severity": "green"},
                ],
            })
        );
    }

    #[test]
    fn every_event_carries_its_performer() {
        use crate::enrich::{Ci, Origin, Performer, Principal};

        let mut batch = small_batch();
        batch.events[2].actor = Performer {
            principal: Principal {
                kind: PrincipalKind::Workload,
                name: "github-actions-terraform/GitHubActions".to_owned(),
                origin: Origin::RoleSession,
            },
            tool: crate::enrich::Tool::Terraform,
            ci: Some(Ci {
                name: Some("github-actions".to_owned()),
            }),
        };
        batch.events[0].actor.principal = Principal {
            kind: PrincipalKind::Unknown,
            name: String::new(),
            origin: Origin::NameHidden,
        };
        let line = delivery(batch, summary("h", Severity::Green)).audit(&Receipt::default());
        let value = serde_json::to_value(&line.events).unwrap_or_default();
        assert_eq!(value[0]["principal_kind"], "unknown");
        assert_eq!(value[0]["principal"], "unknown user (name hidden by AWS)");
        assert_eq!(value[2]["principal_kind"], "workload");
        assert_eq!(value[2]["tool"], "terraform");
        assert_eq!(value[2]["ci"], "ci:github-actions");
        assert_eq!(value[1].get("ci"), None, "absent when no CI role acted");

        // A line written before these fields still reads.
        let old: AuditEvent = serde_json::from_value(json!(
            {"id": "e1", "name": "CreateUser", "actor": "bob", "severity": "yellow"}
        ))
        .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(old.principal_kind, PrincipalKind::Unknown);
    }

    #[test]
    fn late_batches_model_summaries_and_raised_severity() {
        let mut batch = small_batch();
        batch.kind = BatchKind::Late;
        batch.id.seq = 1;
        let mut s = summary("h", Severity::Red);
        s.source = SummarySource::Model {
            model_id: "m".to_owned(),
            prompt_version: "v1".to_owned(),
            input_tokens: 1200,
            output_tokens: 300,
            cache_read_tokens: 1100,
            cache_write_tokens: 0,
            latency_ms: 2500,
            attempts: 2,
            call_batches: 3,
        };
        let line = delivery(batch.clone(), s.clone()).audit(&Receipt::default());
        assert_eq!(line.model_id.as_deref(), Some("m"));
        assert_eq!(line.prompt_version.as_deref(), Some("v1"));
        assert_eq!(
            (
                line.input_tokens,
                line.output_tokens,
                line.latency_ms,
                line.attempts
            ),
            (Some(1200), Some(300), Some(2500), Some(2))
        );
        assert_eq!(
            (line.cache_read_tokens, line.cache_write_tokens),
            (Some(1100), Some(0))
        );
        assert_eq!(line.call_batches, Some(3));
        assert_eq!(line.fallback_reason, None);
        assert!(line.late);
        assert_eq!(line.kind, BatchKind::Late);
        assert_eq!(line.batch_id, "111111111111/20240101T0000Z/1");
        assert_eq!(line.severity, Severity::Red);
        assert_eq!(line.summary_by, SummaryBy::Model);
        s.source = SummarySource::Fallback {
            reason: "timeout".to_owned(),
        };
        let fallback = delivery(batch, s.clone()).audit(&Receipt::default());
        assert_eq!(fallback.summary_by, SummaryBy::Fallback);
        assert_eq!(fallback.fallback_reason.as_deref(), Some("timeout"));
        assert_eq!(fallback.model_id, None);
        let text = serde_json::to_string(&line).unwrap_or_default();
        let back: AuditLine = serde_json::from_str(&text)
            .unwrap_or_else(|_| delivery(small_batch(), s).audit(&Receipt::default()));
        assert_eq!(back, line);
    }

    #[test]
    fn records_where_the_first_post_landed() {
        let receipt = Receipt {
            posts: vec![
                Posted {
                    destination: "C1".to_owned(),
                    id: "1.1".to_owned(),
                },
                Posted {
                    destination: "C2".to_owned(),
                    id: "2.2".to_owned(),
                },
            ],
        };
        let line = delivery(small_batch(), summary("h", Severity::Green)).audit(&receipt);
        assert_eq!(line.channel.as_deref(), Some("C1"));
        assert_eq!(line.ts.as_deref(), Some("1.1"));
    }
}
