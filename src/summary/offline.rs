//! Deterministic summaries, in the words of the reader's language ([`crate::locale`]).
//!
//! One headline per batch: what happened, by whom (principal and tool) and how it ended
//! (changes, reads and attempts told apart, see [`super::outcome`]). The message's fields and
//! event tree carry the rest. Event-derived strings are used as they are (the renderer
//! escapes them); actor names never carry access keys.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;

use super::outcome::Outcomes;
use super::{Summarizer, Summary, SummarySource};
use crate::enrich::{Performer, Principal, PrincipalKind, Tool};
use crate::event::EventKind;
use crate::locale::{Action, Lang, Locale, Words};
use crate::window::{Batch, BatchEvent};

/// At most this many resource names in a headline, each at most [`NAME_CHARS`] long.
const NAMED_RESOURCES: usize = 2;
/// Longest resource name a headline shows whole; longer ones keep their start and end.
const NAME_CHARS: usize = 40;

/// The summarizer that never fails: templates only.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineSummarizer;

impl Summarizer for OfflineSummarizer {
    type Error = Infallible;

    fn summarize(
        &self,
        batch: &Batch,
        locale: Locale,
    ) -> impl Future<Output = Result<Summary, Self::Error>> + Send {
        std::future::ready(Ok(offline_summary(batch, locale)))
    }
}

/// Summarise `batch` with templates, in the locale's language: one headline that says what
/// happened, by whom and how it ended. The fields (time, region, account) and the event tree
/// say the rest, so the offline summary has no body: nothing in it would be new.
pub fn offline_summary(batch: &Batch, locale: Locale) -> Summary {
    let words = locale.words();
    Summary {
        headline: headline(batch, locale.lang, words),
        body: String::new(),
        notes: Vec::new(),
        severity: batch.rule_severity(),
        severity_reason: severity_reason(batch, locale.lang, words),
        source: SummarySource::Offline,
    }
}

/// The worst rule and its colour, for the audit (the message shows the colour itself).
fn severity_reason(batch: &Batch, lang: Lang, words: &Words) -> String {
    batch
        .events
        .iter()
        .map(|e| &e.rule)
        .max_by(|a, b| a.severity.cmp(&b.severity).then(b.id.cmp(&a.id)))
        .map_or_else(
            || words.no_rule_matched.to_owned(),
            |rule| (words.worst_rule)(rule.title(lang), words.severity_name(rule.severity)),
        )
}

/// The performer as the headline names it: `dae.kim (SSO) via Terraform`, `root user`. The
/// tool is left out where the action says it (a console sign-in is made in the console).
pub fn who(actor: &Performer, words: &Words, with_tool: bool) -> String {
    let name = words.principal_name(&actor.principal);
    if actor.principal.kind == PrincipalKind::Root && name == "root" {
        let root = words.kind_in_prose.of(PrincipalKind::Root);
        let via = words
            .tool_with_ci(actor)
            .filter(|_| with_tool)
            .map(|tool| (words.via)(&tool));
        return (words.who)(root, &[], via.as_deref());
    }
    let tool = match actor.tool {
        // An AWS service acting on its own is said by its kind.
        Tool::Service => None,
        _ if !with_tool => None,
        _ => words.tool_with_ci(actor),
    };
    let mut tags: Vec<&str> = words
        .principal_qualifier(&actor.principal)
        .into_iter()
        .collect();
    if matches!(
        actor.principal.kind,
        PrincipalKind::Root | PrincipalKind::AwsService | PrincipalKind::Unknown
    ) {
        tags.push(words.kind_in_prose.of(actor.principal.kind));
    }
    let via = tool.map(|tool| (words.via)(&tool));
    (words.who)(&name, &tags, via.as_deref())
}

/// Distinct resource names of `events`, at most [`NAMED_RESOURCES`], then ` and N more`.
/// The performer's own name (`performer`) reads as "itself": a user creating its own access
/// key is not named twice.
pub fn targets(events: &[&BatchEvent], words: &Words, performer: Option<&str>) -> String {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for item in events {
        for resource in &item.event.resources {
            let name = if performer == Some(&*resource.name) {
                words.itself
            } else {
                short_name(&resource.name)
            };
            if seen.insert(name) {
                names.push(name);
            }
        }
    }
    let counted: usize = events
        .iter()
        .map(|e| usize::try_from(e.event.resources_more).unwrap_or(0))
        .sum();
    let more = names.len().saturating_sub(NAMED_RESOURCES) + counted;
    let mut text = names
        .into_iter()
        .take(NAMED_RESOURCES)
        .map(|name| clip_middle(name, NAME_CHARS))
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        text.push_str(&(words.and_more)(more));
    }
    text
}

/// An ARN by its resource part, as a headline names it (`certificate/1234abcd-...` ->
/// `1234abcd-...`, `arn:aws:s3:::logs` -> `logs`); anything else as it is. The tree keeps
/// the whole ARN.
fn short_name(name: &str) -> &str {
    if !name.starts_with("arn:") {
        return name;
    }
    // arn:partition:service:region:account:resource
    let resource = name.splitn(6, ':').nth(5).unwrap_or(name);
    resource
        .rsplit(['/', ':'])
        .find(|part| !part.is_empty())
        .unwrap_or(resource)
}

/// `name` when it has at most `max` characters, else its start and end around `…` (an S3
/// key's date and file name both matter).
pub fn clip_middle(name: &str, max: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= max {
        return name.to_owned();
    }
    let head = max / 2 - 1;
    let tail = max - head - 1;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Error codes of the failed events, distinct, joined.
fn codes(events: &[&BatchEvent]) -> String {
    let codes: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e.event.error_code.as_deref())
        .collect();
    codes.into_iter().collect::<Vec<_>>().join(", ")
}

/// `Denied attempt: ` when every event was denied, `Failed attempt: ` when every one failed,
/// else nothing.
fn attempt_prefix(outcomes: &Outcomes, words: &Words) -> &'static str {
    if !outcomes.all_attempts() {
        ""
    } else if outcomes.failed == 0 {
        words.denied_attempt
    } else {
        words.failed_attempt
    }
}

/// What the batch is about, as one line: `{prefix}{who} {what} · {rule title}`.
fn headline(batch: &Batch, lang: Lang, words: &Words) -> String {
    let events: Vec<&BatchEvent> = batch.events.iter().collect();
    if events.is_empty() {
        return words.no_events_in_batch.to_owned();
    }
    let outcomes = Outcomes::count(events.iter().map(|e| &e.event));
    // Performers by who they are: one person with two tools is one performer.
    let actors: BTreeSet<&Principal> = events.iter().map(|e| &e.actor.principal).collect();
    let tools: BTreeSet<Tool> = events.iter().map(|e| e.actor.tool).collect();
    let rules: BTreeSet<&str> = events.iter().map(|e| e.rule.id.as_str()).collect();
    let names: BTreeSet<&str> = events.iter().map(|e| &*e.event.name).collect();
    let title = if rules.len() == 1 {
        events[0].rule.title(lang).to_owned()
    } else {
        (words.rules_n)(rules.len())
    };
    let sign_ins = events
        .iter()
        .all(|e| e.event.kind == EventKind::ConsoleSignIn);
    let performer = if actors.len() == 1 {
        who(&events[0].actor, words, !sign_ins && tools.len() == 1)
    } else {
        (words.performers_n)(actors.len())
    };
    let what = if names.len() == 1 && actors.len() == 1 {
        let first = &events[0].event;
        let sign_in = (first.kind == EventKind::ConsoleSignIn).then(|| {
            events
                .iter()
                .any(|e| e.event.mfa_used.as_deref() == Some("No"))
        });
        (words.action)(&Action {
            name: first.display_name(),
            calls: events.len(),
            targets: &targets(
                &events,
                words,
                Some(&words.principal_name(&events[0].actor.principal)),
            ),
            outcomes,
            codes: &codes(&events),
            sign_in_without_mfa: sign_in,
            prefixed: !sign_ins && outcomes.all_attempts(),
        })
    } else {
        (words.made)(&(words.outcome_counts)(&outcomes))
    };
    // A sign-in says its own outcome ("tried to sign in ... and failed").
    let prefix = if sign_ins {
        ""
    } else {
        attempt_prefix(&outcomes, words)
    };
    (words.headline)(prefix, &performer, &what, &title)
}

/// Small builders for summary tests: realistic batches without the decoder.
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
pub(crate) mod testkit {
    use std::sync::Arc;

    use chrono::{DateTime, TimeZone, Utc};

    use crate::enrich::{Performer, PrincipalKind, Tool};
    use crate::event::{AccountId, Event, EventId, EventKind, Identity, Resource};
    use crate::locale::Lang;
    use crate::rules::{Rule, Titles};
    use crate::severity::Severity;
    use crate::window::{Batch, BatchEvent, BatchId, BatchKind};

    pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, m, s).unwrap()
    }

    pub fn rule(id: &str, title: &str, title_ko: &str, severity: Severity) -> Arc<Rule> {
        Arc::new(Rule {
            id: id.to_owned(),
            titles: Titles::new(title).with(Lang::Ko, title_ko),
            severity,
            immediate: severity == Severity::Red,
            tags: Vec::new(),
            dedup_period_secs: None,
            dedup_by: Vec::new(),
            threshold: None,
        })
    }

    pub fn actor(kind: PrincipalKind, name: &str, tool: Tool) -> Performer {
        crate::testing::actor(name, kind, tool)
    }

    pub fn jane() -> Performer {
        actor(PrincipalKind::Person, "jane.doe@example.com", Tool::Console)
    }

    pub fn terraform() -> Performer {
        actor(
            PrincipalKind::Workload,
            "github-actions-terraform/GitHubActions",
            Tool::Terraform,
        )
    }

    /// One matched event; `seq` keeps ids unique and ordered.
    pub fn item(
        seq: usize,
        time: DateTime<Utc>,
        (source, name): (&str, &str),
        actor: &Performer,
        rule: &Arc<Rule>,
        resources: &[&str],
    ) -> BatchEvent {
        BatchEvent {
            event: Event {
                id: EventId::new(format!("ev-{seq:05}")),
                account: AccountId::new("111111111111"),
                time,
                region: "us-east-1".into(),
                kind: EventKind::ApiCall,
                source: source.into(),
                name: name.into(),
                identity: Identity::default(),
                user_agent: None,
                source_ip: Some("203.0.113.7".into()),
                error_code: None,
                error_message: None,
                read_only: Some(false),
                mfa_used: None,
                login_result: None,
                state: None,
                resources: resources
                    .iter()
                    .map(|name| Resource {
                        kind: "name".into(),
                        name: (*name).into(),
                    })
                    .collect(),
                resources_more: 0,
                oddities: Vec::new(),
            },
            rule: Arc::clone(rule),
            actor: actor.clone(),
            already_alerted: false,

            placed: false,
            incident: None,
            counted: Vec::new(),
            fallback: None,
        }
    }

    /// A batch of account `111111111111 (A계정)`, window 2024-05-01 05:00–05:05 UTC.
    pub fn batch(kind: BatchKind, mut events: Vec<BatchEvent>) -> Batch {
        events.sort_by(|a, b| (a.event.time, &a.event.id).cmp(&(b.event.time, &b.event.id)));
        Batch {
            id: BatchId {
                account: AccountId::new("111111111111"),
                window_start: at(5, 0, 0),
                seq: u32::from(kind == BatchKind::Late),
                event: None,
                claim: None,
            },
            kind,
            account_name: Some("A계정".to_owned()),
            window_end: at(5, 5, 0),
            events,
        }
    }

    /// A person's console IAM changes, and a colleague's failed CLI call.
    pub fn console_iam() -> Batch {
        let iam = "iam.amazonaws.com";
        let user_created = rule(
            "iam-user-created",
            "IAM user created",
            "IAM 사용자 생성",
            Severity::Yellow,
        );
        let profile = rule(
            "iam-login-profile",
            "IAM console password set",
            "IAM 콘솔 암호 설정",
            Severity::Green,
        );
        let membership = rule(
            "iam-group-membership",
            "IAM group membership changed",
            "IAM 그룹 멤버 추가",
            Severity::Green,
        );
        let bob = actor(PrincipalKind::Person, "bob", Tool::Cli);
        let jane = jane();
        let mut failed = item(
            5,
            at(5, 4, 10),
            (iam, "AddUserToGroup"),
            &bob,
            &membership,
            &["carol", "developers"],
        );
        failed.event.error_code = Some("AccessDenied".into());
        batch(
            BatchKind::Window,
            vec![
                item(
                    1,
                    at(5, 3, 12),
                    (iam, "CreateUser"),
                    &jane,
                    &user_created,
                    &["alice"],
                ),
                item(
                    2,
                    at(5, 3, 40),
                    (iam, "CreateLoginProfile"),
                    &jane,
                    &profile,
                    &["alice"],
                ),
                item(
                    3,
                    at(5, 3, 55),
                    (iam, "AddUserToGroup"),
                    &jane,
                    &membership,
                    &["alice", "developers"],
                ),
                item(
                    4,
                    at(5, 4, 2),
                    (iam, "AddUserToGroup"),
                    &jane,
                    &membership,
                    &["alice", "readers"],
                ),
                failed,
            ],
        )
    }

    /// 297 Terraform calls from CI and 3 console changes by a person: 300 events.
    pub fn terraform_burst() -> Batch {
        let ec2 = "ec2.amazonaws.com";
        let iam = "iam.amazonaws.com";
        let instance = rule(
            "ec2-instance-changed",
            "EC2 instance changed",
            "EC2 인스턴스 변경",
            Severity::Yellow,
        );
        let tags = rule(
            "ec2-tags-changed",
            "EC2 tags changed",
            "EC2 태그 변경",
            Severity::Green,
        );
        let sg = rule(
            "security-group-changed",
            "Security group changed",
            "보안 그룹 변경",
            Severity::Yellow,
        );
        let role = rule(
            "iam-role-changed",
            "IAM role changed",
            "IAM 역할 변경",
            Severity::Yellow,
        );
        let tf = terraform();
        let plan: [(&str, &str, &Arc<Rule>, usize); 6] = [
            (ec2, "RunInstances", &instance, 200),
            (ec2, "CreateTags", &tags, 60),
            (ec2, "AuthorizeSecurityGroupIngress", &sg, 22),
            (ec2, "CreateSecurityGroup", &sg, 10),
            (iam, "CreateRole", &role, 3),
            (iam, "PutRolePolicy", &role, 2),
        ];
        let mut events = Vec::new();
        for (source, name, rule, count) in plan {
            for i in 0..count {
                let seq = events.len();
                let second = u32::try_from(seq % 240).unwrap();
                let resource = format!("{}-{i:04}", name.to_ascii_lowercase());
                events.push(item(
                    seq,
                    at(5, second / 60, second % 60),
                    (source, name),
                    &tf,
                    rule,
                    &[&resource],
                ));
            }
        }
        let jane = jane();
        events.push(item(
            900,
            at(5, 4, 30),
            (ec2, "ModifyInstanceAttribute"),
            &jane,
            &instance,
            &["i-0abc"],
        ));
        events.push(item(
            901,
            at(5, 4, 31),
            (ec2, "ModifyInstanceAttribute"),
            &jane,
            &instance,
            &["i-0def"],
        ));
        events.push(item(
            902,
            at(5, 4, 50),
            (ec2, "StopInstances"),
            &jane,
            &instance,
            &["i-0abc"],
        ));
        batch(BatchKind::Window, events)
    }

    /// Root signs in to the console without MFA: an immediate alert.
    pub fn root_login() -> Batch {
        let root_used = rule(
            "root-account-used",
            "Root account used",
            "루트 계정 사용",
            Severity::Red,
        );
        let root = actor(PrincipalKind::Root, "root", Tool::Console);
        let mut login = item(
            1,
            at(5, 2, 9),
            ("signin.amazonaws.com", "ConsoleLogin"),
            &root,
            &root_used,
            &[],
        );
        login.event.kind = EventKind::ConsoleSignIn;
        login.event.mfa_used = Some("No".into());
        login.event.login_result = Some("Success".into());
        let mut batch = batch(BatchKind::Immediate, vec![login]);
        batch.id.event = Some("ev-00001".to_owned());
        batch
    }

    /// Two S3 changes that arrived after the window's digest was sent.
    pub fn late_s3() -> Batch {
        let s3 = "s3.amazonaws.com";
        let policy = rule(
            "s3-bucket-policy-changed",
            "S3 bucket policy changed",
            "S3 버킷 정책 변경",
            Severity::Yellow,
        );
        let pab = rule(
            "s3-public-access-block-removed",
            "S3 public access block removed",
            "S3 퍼블릭 액세스 차단 해제",
            Severity::Red,
        );
        let sso = actor(
            PrincipalKind::Person,
            "kim.minsu@example.com",
            Tool::Console,
        );
        let mut removed = item(
            2,
            at(5, 4, 58),
            (s3, "DeletePublicAccessBlock"),
            &sso,
            &pab,
            &["prod-assets"],
        );
        removed.already_alerted = true;
        batch(
            BatchKind::Late,
            vec![
                item(
                    1,
                    at(5, 4, 51),
                    (s3, "PutBucketPolicy"),
                    &sso,
                    &policy,
                    &["prod-assets"],
                ),
                removed,
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use chrono_tz::Asia::Seoul;

    use super::testkit::{self, at, batch, item, rule};
    use super::*;
    use crate::severity::Severity;
    use crate::window::BatchKind;

    fn en() -> Locale {
        Locale::default()
    }

    fn ko() -> Locale {
        Locale {
            lang: Lang::Ko,
            tz: Seoul,
        }
    }

    /// The summary as a reviewer reads it.
    fn render(summary: &Summary) -> String {
        format!(
            "headline: {}\nseverity: {} ({})\nbody: {:?}\n",
            summary.headline, summary.severity, summary.severity_reason, summary.body
        )
    }

    #[test]
    fn console_iam_changes_en_utc() {
        let summary = offline_summary(&testkit::console_iam(), en());
        assert_eq!(summary.source, SummarySource::Offline);
        assert_eq!(summary.severity, Severity::Yellow);
        insta::assert_snapshot!(render(&summary));
    }

    #[test]
    fn console_iam_changes_ko_seoul() {
        let summary = offline_summary(&testkit::console_iam(), ko());
        assert_eq!(
            summary.headline,
            "수행자 2명: 변경 4건, 거부된 시도 1건 · 규칙 3개"
        );
        insta::assert_snapshot!(render(&summary));
    }

    #[test]
    fn terraform_burst_ko() {
        let summary = offline_summary(&testkit::terraform_burst(), ko());
        insta::assert_snapshot!(render(&summary));
    }

    #[test]
    fn terraform_burst_en() {
        let summary = offline_summary(&testkit::terraform_burst(), en());
        insta::assert_snapshot!(render(&summary));
    }

    #[test]
    fn root_login_ko_and_en() {
        let batch = testkit::root_login();
        let ko = offline_summary(&batch, ko());
        assert_eq!(ko.severity, Severity::Red);
        insta::assert_snapshot!("root_login_ko", render(&ko));
        insta::assert_snapshot!("root_login_en", render(&offline_summary(&batch, en())));
    }

    #[test]
    fn late_batch_en_and_ko() {
        let batch = testkit::late_s3();
        insta::assert_snapshot!("late_en", render(&offline_summary(&batch, en())));
        insta::assert_snapshot!("late_ko", render(&offline_summary(&batch, ko())));
    }

    #[test]
    fn the_whole_summary_as_json() {
        insta::assert_json_snapshot!(offline_summary(&testkit::console_iam(), ko()));
    }

    #[test]
    fn the_offline_summary_adds_no_body_to_the_fields_and_tree() {
        for locale in [en(), ko()] {
            for batch in [
                testkit::console_iam(),
                testkit::terraform_burst(),
                testkit::root_login(),
            ] {
                let summary = offline_summary(&batch, locale);
                assert!(summary.body.is_empty() && summary.notes.is_empty());
                // The account is a field of its own, not part of the headline.
                assert!(
                    !summary.headline.contains("111111111111"),
                    "{}",
                    summary.headline
                );
            }
        }
    }

    #[test]
    fn one_performer_one_api_is_said_as_an_action() {
        let r = rule("any", "Instance stopped", "인스턴스 중지", Severity::Yellow);
        let jane = testkit::jane();
        let mut events: Vec<_> = (0..5)
            .map(|i| {
                let id = format!("i-0abc{i}");
                item(
                    i,
                    at(5, 1, u32::try_from(i).unwrap_or(0)),
                    ("ec2.amazonaws.com", "StopInstances"),
                    &jane,
                    &r,
                    &[id.as_str()],
                )
            })
            .collect();
        events[0].event.error_code = Some("Client.UnauthorizedOperation".into());
        let batch = batch(BatchKind::Window, events);
        assert_eq!(
            offline_summary(&batch, en()).headline,
            "jane.doe@example.com via console ran StopInstances ×5 on i-0abc0, i-0abc1 and 3 more, 1 denied (Client.UnauthorizedOperation) · Instance stopped"
        );
        assert_eq!(
            offline_summary(&batch, ko()).headline,
            "jane.doe@example.com (콘솔 사용): i-0abc0, i-0abc1 외 3개 대상 StopInstances 5회 실행, 1회 거부됨 (Client.UnauthorizedOperation) · 인스턴스 중지"
        );
    }

    #[test]
    fn input_order_does_not_change_the_text() {
        let sorted = testkit::terraform_burst();
        let mut shuffled = sorted.clone();
        shuffled.events.reverse();
        shuffled.events.rotate_left(17);
        for locale in [en(), ko()] {
            assert_eq!(
                offline_summary(&sorted, locale),
                offline_summary(&shuffled, locale)
            );
        }
    }

    #[test]
    fn no_access_key_reaches_the_text() {
        use crate::enrich::{ActorConfig, classify};
        let mut batch = testkit::console_iam();
        let mut event = batch.events[0].event.clone();
        event.identity = crate::event::Identity {
            kind: Some("AssumedRole".into()),
            arn: Some("arn:aws:sts::111111111111:assumed-role/Dev/ASIA5PZQZ5QHE2FUNXHR".into()),
            role_name: Some("Dev".into()),
            ..Default::default()
        };
        event.user_agent = Some("aws-cli/2.15.0".into());
        for item in &mut batch.events {
            item.actor = classify(&event, &ActorConfig::default());
        }
        for locale in [en(), ko()] {
            let summary = offline_summary(&batch, locale);
            let all = format!("{}{}{:?}", summary.headline, summary.body, summary.notes);
            assert!(!all.contains("ASIA5PZQZ5QHE2FUNXHR"));
            assert!(all.contains("Dev/ASIA…NXHR"));
        }
    }

    #[test]
    fn empty_batch_is_green_and_says_so() {
        let summary = offline_summary(&batch(BatchKind::Window, Vec::new()), en());
        assert_eq!(summary.severity, Severity::Green);
        assert_eq!(summary.headline, "This batch has no events.");
    }

    #[test]
    fn the_summarizer_port_answers_at_once() {
        let batch = testkit::root_login();
        let mut future = pin!(OfflineSummarizer.summarize(&batch, ko()));
        let mut cx = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(summary)) => assert_eq!(summary, offline_summary(&batch, ko())),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => panic!("the offline summarizer never waits"),
        }
    }
}
