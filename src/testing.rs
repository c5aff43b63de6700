//! Small builders for unit tests: batches, events, summaries and deliveries without the engine.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::delivery::Delivery;
use crate::enrich::{Origin, Performer, Principal, PrincipalKind, Tool};
use crate::event::{AccountId, Event, EventId, EventKind, Identity, Resource};
use crate::render::slack::{SlackMessage, render_batch};
use crate::rules::{Rule, Titles};
use crate::severity::Severity;
use crate::summary::{Lang, Locale, Summary, SummarySource};
use crate::window::{Batch, BatchEvent, BatchId, BatchKind};

/// 2024-01-01T00:00:00Z: 09:00 in Seoul.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

pub(crate) fn rule(id: &str, title: &str, title_ko: Option<&str>, severity: Severity) -> Arc<Rule> {
    Arc::new(Rule {
        id: id.to_owned(),
        titles: match title_ko {
            Some(ko) => Titles::new(title).with(Lang::Ko, ko),
            None => Titles::new(title),
        },
        severity,
        immediate: false,
        tags: Vec::new(),
        dedup_period_secs: None,
        dedup_by: Vec::new(),
        threshold: None,
    })
}

/// A performer whose name is what it is: an IAM user, a role session, root or a service.
pub(crate) fn actor(name: &str, kind: PrincipalKind, tool: Tool) -> Performer {
    let origin = match kind {
        PrincipalKind::Person => Origin::IamUser,
        PrincipalKind::Workload => Origin::RoleSession,
        PrincipalKind::AwsService => Origin::Service,
        PrincipalKind::Root => Origin::RootUser,
        PrincipalKind::Unknown => Origin::Other,
    };
    Performer {
        principal: Principal {
            kind,
            name: name.to_owned(),
            origin,
        },
        tool,
        ci: None,
    }
}

pub(crate) fn event(id: &str, secs: i64, region: &str, name: &str, resources: &[&str]) -> Event {
    Event {
        id: EventId::new(id),
        account: AccountId::new("111111111111"),
        time: t0() + Duration::seconds(secs),
        region: region.into(),
        kind: EventKind::ApiCall,
        source: "iam.amazonaws.com".into(),
        name: name.into(),
        identity: Identity::default(),
        user_agent: None,
        source_ip: None,
        error_code: None,
        error_message: None,
        read_only: Some(false),
        mfa_used: None,
        login_result: None,
        state: None,
        resources: resources
            .iter()
            .map(|r| Resource {
                kind: "name".into(),
                name: (*r).into(),
            })
            .collect(),
        resources_more: 0,
        oddities: Vec::new(),
    }
}

pub(crate) fn batch_event(event: Event, rule: &Arc<Rule>, actor: &Performer) -> BatchEvent {
    BatchEvent {
        event,
        rule: Arc::clone(rule),
        actor: actor.clone(),
        already_alerted: false,

        placed: false,
        incident: None,
        counted: Vec::new(),
        fallback: None,
    }
}

pub(crate) fn batch(kind: BatchKind, account_name: Option<&str>, events: Vec<BatchEvent>) -> Batch {
    Batch {
        id: BatchId {
            account: AccountId::new("111111111111"),
            window_start: t0(),
            seq: u32::from(kind == BatchKind::Late),
            event: None,
            claim: None,
        },
        kind,
        account_name: account_name.map(str::to_owned),
        window_end: t0() + Duration::minutes(5),
        events,
    }
}

pub(crate) fn summary(headline: &str, severity: Severity) -> Summary {
    Summary {
        headline: headline.to_owned(),
        body: "Two IAM changes and one failed bucket deletion.".to_owned(),
        notes: vec!["alice created a user for bob.".to_owned()],
        severity,
        severity_reason: "IAM user created".to_owned(),
        source: SummarySource::Offline,
    }
}

/// Three events by two actors, one failed, one already alerted, two regions.
pub(crate) fn small_batch() -> Batch {
    let iam = rule(
        "iam-user",
        "IAM user changed",
        Some("IAM 사용자 변경"),
        Severity::Yellow,
    );
    let s3 = rule("s3-bucket", "S3 bucket changed", None, Severity::Green);
    let alice = actor("alice@example.com", PrincipalKind::Person, Tool::Console);
    let tf = actor("terraform-ci", PrincipalKind::Workload, Tool::Terraform);
    let mut failed = event(
        "e3",
        200,
        "ap-northeast-2",
        "DeleteBucket",
        &["logs-bucket"],
    );
    failed.error_code = Some("AccessDenied".into());
    let mut alerted = batch_event(
        event(
            "e2",
            65,
            "us-east-1",
            "AttachUserPolicy",
            &["bob", "AdministratorAccess"],
        ),
        &iam,
        &alice,
    );
    alerted.already_alerted = true;
    batch(
        BatchKind::Window,
        Some("A계정"),
        vec![
            batch_event(
                event("e1", 5, "us-east-1", "CreateUser", &["bob"]),
                &iam,
                &alice,
            ),
            alerted,
            batch_event(failed, &s3, &tf),
        ],
    )
}

/// `batch` delivered with `summary`, in English and UTC.
pub(crate) fn delivery(batch: Batch, summary: Summary) -> Delivery {
    Delivery::new(batch, summary, Locale::default())
}

/// The Slack messages of `batch` delivered with `summary` in `locale`.
pub(crate) fn rendered(batch: &Batch, summary: &Summary, locale: Locale) -> Vec<SlackMessage> {
    render_batch(&Delivery::new(batch.clone(), summary.clone(), locale))
}

/// `deliveries` as plain terminal text: what a reader sees, without Block Kit's markup.
pub(crate) fn as_text(deliveries: &[Delivery]) -> String {
    crate::render::text::text(deliveries)
}
