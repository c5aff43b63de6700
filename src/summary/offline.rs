//! Deterministic summaries, in the words of the reader's language ([`crate::locale`]).
//!
//! The text names the performers and the main groups of events, bounded to a few groups: the
//! full event list is rendered from the batch elsewhere. Event-derived strings are used as
//! they are (the renderer escapes them); actor names never carry access keys.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Summarizer, Summary, SummarySource};
use crate::enrich::{Performer, PrincipalKind, Tool};
use crate::event::EventKind;
use crate::locale::{ChangesBy, Lang, Locale, Overview, Ran, SignIn, Words};
use crate::rules::Rule;
use crate::severity::Severity;
use crate::window::{Batch, BatchEvent, BatchKind};

/// At most this many (actor, event name) groups are named in the body.
pub const NAMED_GROUPS: usize = 6;
/// At most this many resource names in one sentence.
const NAMED_RESOURCES: usize = 3;
/// At most this many regions named.
const NAMED_REGIONS: usize = 3;

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

/// Summarise `batch` with templates, in the locale's language and time zone.
pub fn offline_summary(batch: &Batch, locale: Locale) -> Summary {
    let text = Text {
        lang: locale.lang,
        words: locale.words(),
        tz: locale.tz,
    };
    let actors = group_by_actor(batch);
    let lead = lead_rule(batch);
    Summary {
        headline: text.headline(batch, lead.as_ref()),
        body: text.body(batch, &actors),
        notes: text.notes(&actors),
        severity: batch.rule_severity(),
        severity_reason: text.severity_reason(lead.as_ref()),
        source: SummarySource::Offline,
    }
}

/// Events of one event name by one actor.
struct NameGroup<'a> {
    name: &'a str,
    events: Vec<&'a BatchEvent>,
    severity: Severity,
}

struct ActorGroup<'a> {
    actor: &'a Performer,
    groups: Vec<NameGroup<'a>>,
    severity: Severity,
    count: usize,
}

fn max_severity(events: &[&BatchEvent]) -> Severity {
    events
        .iter()
        .map(|e| e.severity())
        .max()
        .unwrap_or(Severity::Green)
}

/// Actors worst first (severity, then event count), each with its event names in that order.
fn group_by_actor(batch: &Batch) -> Vec<ActorGroup<'_>> {
    let mut by_actor: BTreeMap<&Performer, BTreeMap<&str, Vec<&BatchEvent>>> = BTreeMap::new();
    for item in &batch.events {
        by_actor
            .entry(&item.actor)
            .or_default()
            .entry(&*item.event.name)
            .or_default()
            .push(item);
    }
    let mut actors: Vec<ActorGroup<'_>> = by_actor
        .into_iter()
        .map(|(actor, names)| {
            let mut groups: Vec<NameGroup<'_>> = names
                .into_iter()
                .map(|(name, mut events)| {
                    events.sort_by(|a, b| {
                        (a.event.time, &a.event.id).cmp(&(b.event.time, &b.event.id))
                    });
                    let severity = max_severity(&events);
                    NameGroup {
                        name,
                        events,
                        severity,
                    }
                })
                .collect();
            groups.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then(b.events.len().cmp(&a.events.len()))
            });
            let severity = groups
                .iter()
                .map(|g| g.severity)
                .max()
                .unwrap_or(Severity::Green);
            let count = groups.iter().map(|g| g.events.len()).sum();
            ActorGroup {
                actor,
                groups,
                severity,
                count,
            }
        })
        .collect();
    actors.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)));
    actors
}

/// The rule that leads the headline: worst severity, then most events, then id.
struct Lead<'a> {
    rule: &'a Rule,
    count: usize,
    others: usize,
}

fn lead_rule(batch: &Batch) -> Option<Lead<'_>> {
    let mut counts: BTreeMap<&str, (&Rule, usize)> = BTreeMap::new();
    for item in &batch.events {
        counts
            .entry(item.rule.id.as_str())
            .or_insert((&*item.rule, 0))
            .1 += 1;
    }
    let (rule, count) = counts.into_values().min_by(|(ra, na), (rb, nb)| {
        rb.severity
            .cmp(&ra.severity)
            .then(nb.cmp(na))
            .then(ra.id.cmp(&rb.id))
    })?;
    Some(Lead {
        rule,
        count,
        others: batch.events.len() - count,
    })
}

fn distinct_resources(events: &[&BatchEvent]) -> (Vec<String>, usize) {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for item in events {
        for resource in &item.event.resources {
            if seen.insert(&*resource.name) {
                names.push(&*resource.name);
            }
        }
    }
    let more = names.len().saturating_sub(NAMED_RESOURCES);
    let shown = names
        .into_iter()
        .take(NAMED_RESOURCES)
        .map(|n| format!("'{n}'"))
        .collect();
    (shown, more)
}

fn changes_by(actor: &Performer) -> ChangesBy {
    match (actor.principal.kind, actor.tool) {
        (PrincipalKind::Root, _) => ChangesBy::Root,
        (PrincipalKind::AwsService, _) => ChangesBy::Service,
        (_, tool) if tool.is_infrastructure_as_code() => ChangesBy::Tool(tool),
        (_, Tool::Ci) => ChangesBy::Ci,
        (PrincipalKind::Person, _) => ChangesBy::Person,
        (PrincipalKind::Workload, _) => ChangesBy::Workload,
        (PrincipalKind::Unknown, _) => ChangesBy::Unknown,
    }
}

/// The templates of one locale.
struct Text {
    lang: Lang,
    words: &'static Words,
    tz: Tz,
}

impl Text {
    fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// `2024-05-01 14:00–14:04 KST`, or one time when both fall in the same minute.
    fn span(&self, first: DateTime<Utc>, last: DateTime<Utc>) -> String {
        let (a, b) = (first.with_timezone(&self.tz), last.with_timezone(&self.tz));
        if a.format("%Y-%m-%d %H:%M").to_string() == b.format("%Y-%m-%d %H:%M").to_string() {
            self.time(first)
        } else if a.date_naive() == b.date_naive() {
            format!("{}–{}", a.format("%Y-%m-%d %H:%M"), b.format("%H:%M %Z"))
        } else {
            format!(
                "{} – {}",
                a.format("%Y-%m-%d %H:%M"),
                b.format("%Y-%m-%d %H:%M %Z")
            )
        }
    }

    fn account(&self, batch: &Batch) -> String {
        (self.words.account_in_prose)(&batch.id.account.to_string(), batch.account_name.as_deref())
    }

    fn rule_title<'r>(&self, rule: &'r Rule) -> &'r str {
        rule.title(self.lang)
    }

    fn severity_word(&self, severity: Severity) -> &'static str {
        self.words.severity_name(severity)
    }

    fn headline(&self, batch: &Batch, lead: Option<&Lead<'_>>) -> String {
        let w = self.words;
        let account = self.account(batch);
        let prefix = match batch.kind {
            BatchKind::Window => "",
            BatchKind::Late => w.late_prefix,
            BatchKind::Immediate => w.immediate_prefix,
        };
        let Some(lead) = lead else {
            return format!("[{account}] {prefix}{}", w.no_changes);
        };
        let title = self.rule_title(lead.rule);
        let count = if lead.count > 1 {
            (w.lead_count)(lead.count)
        } else {
            String::new()
        };
        let others = if lead.others > 0 {
            (w.lead_others)(lead.others)
        } else {
            String::new()
        };
        format!("[{account}] {prefix}{title}{count}{others}")
    }

    fn severity_reason(&self, lead: Option<&Lead<'_>>) -> String {
        match lead {
            None => self.words.no_rule_matched.to_owned(),
            Some(lead) => (self.words.worst_rule)(
                self.rule_title(lead.rule),
                self.severity_word(lead.rule.severity),
            ),
        }
    }
}

impl Text {
    fn body(&self, batch: &Batch, actors: &[ActorGroup<'_>]) -> String {
        if batch.events.is_empty() {
            return self.words.no_events_in_batch.to_owned();
        }
        let mut lines = vec![self.overview(batch)];
        lines.extend(self.kind_line(batch));
        let mut named = 0;
        for group in actors {
            if named >= NAMED_GROUPS {
                break;
            }
            let take = (NAMED_GROUPS - named).min(group.groups.len());
            lines.extend(self.actor_sentences(group, &group.groups[..take]));
            named += take;
        }
        let total_groups: usize = actors.iter().map(|a| a.groups.len()).sum();
        if total_groups > named {
            lines.push(self.more_groups(actors, named, total_groups - named));
        }
        lines.push(self.performers(batch));
        lines.extend(self.failures(batch));
        lines.extend(self.already_alerted(batch));
        lines.join("\n")
    }

    /// When, where and how many.
    fn overview(&self, batch: &Batch) -> String {
        let first = batch.events.iter().map(|e| e.event.time).min();
        let last = batch.events.iter().map(|e| e.event.time).max();
        let span = match (first, last) {
            (Some(first), Some(last)) => self.span(first, last),
            _ => self.span(batch.id.window_start, batch.window_end),
        };
        let regions: BTreeSet<&str> = batch.events.iter().map(|e| &*e.event.region).collect();
        let mut region_list: Vec<&str> = regions.iter().copied().take(NAMED_REGIONS).collect();
        let more_regions = regions.len().saturating_sub(NAMED_REGIONS);
        let more = if more_regions == 0 {
            String::new()
        } else {
            (self.words.and_more)(more_regions)
        };
        if region_list.is_empty() {
            region_list.push("-");
        }
        (self.words.overview)(&Overview {
            events: batch.events.len(),
            account: &self.account(batch),
            regions: &region_list.join(", "),
            more_regions: &more,
            span: &span,
        })
    }

    fn kind_line(&self, batch: &Batch) -> Option<String> {
        match batch.kind {
            BatchKind::Window => None,
            BatchKind::Late => {
                let window = self.span(batch.id.window_start, batch.window_end);
                Some((self.words.late_line)(batch.events.len(), &window))
            }
            BatchKind::Immediate => {
                let rule = batch
                    .events
                    .iter()
                    .map(|e| &e.rule)
                    .max_by_key(|r| r.severity)?;
                Some((self.words.immediate_line)(
                    self.rule_title(rule),
                    self.severity_word(rule.severity),
                ))
            }
        }
    }

    /// The performer as a sentence's subject: `dae.kim (SSO, person) via Terraform`,
    /// `dae.kim(SSO, 사람, Terraform)이`.
    fn subject(&self, actor: &Performer) -> String {
        let w = self.words;
        let name = w.principal_name(&actor.principal);
        let tool = match actor.tool {
            // An AWS service acting on its own is said by its kind.
            Tool::Service => None,
            _ => w.tool_with_ci(actor),
        };
        let mut tags: Vec<&str> = w
            .principal_qualifier(&actor.principal)
            .into_iter()
            .collect();
        tags.push(w.kind_in_prose.of(actor.principal.kind));
        (w.subject)(&name, &tags, tool.as_deref())
    }

    /// A natural sentence for each small group of a person (or of an actor with one group),
    /// then one sentence listing the rest with counts.
    fn actor_sentences(&self, group: &ActorGroup<'_>, shown: &[NameGroup<'_>]) -> Vec<String> {
        let subject = self.subject(group.actor);
        let personal = matches!(
            group.actor.principal.kind,
            PrincipalKind::Person | PrincipalKind::Root
        );
        let mut sentences = Vec::new();
        let mut listed: Vec<&NameGroup<'_>> = Vec::new();
        for name_group in shown {
            let natural = if personal || shown.len() == 1 {
                let when = self.events_span(&name_group.events);
                self.one_group(&when, &subject, name_group)
            } else {
                None
            };
            match natural {
                Some(sentence) => sentences.push(sentence),
                None => listed.push(name_group),
            }
        }
        if listed.is_empty() {
            return sentences;
        }
        let events: Vec<&BatchEvent> = listed
            .iter()
            .flat_map(|g| g.events.iter().copied())
            .collect();
        let when = self.events_span(&events);
        let list: Vec<String> = listed
            .iter()
            .map(|g| match g.events.len() {
                1 => g.name.to_owned(),
                n => format!("{} ×{n}", g.name),
            })
            .collect();
        sentences.push((self.words.made)(&when, &subject, &list.join(", ")));
        sentences
    }

    fn events_span(&self, events: &[&BatchEvent]) -> String {
        let first = events.iter().map(|e| e.event.time).min();
        let last = events.iter().map(|e| e.event.time).max();
        match (first, last) {
            (Some(a), Some(b)) => self.span(a, b),
            _ => String::new(),
        }
    }

    /// A natural sentence for a small group: a sign-in, or a few calls of one rule.
    fn one_group(&self, when: &str, subject: &str, group: &NameGroup<'_>) -> Option<String> {
        let first = group.events.first()?;
        let n = group.events.len();
        if first.event.kind == EventKind::ConsoleSignIn {
            return Some(self.sign_in(when, subject, group));
        }
        if n > NAMED_RESOURCES {
            return None;
        }
        let (resources, more) = distinct_resources(&group.events);
        let mut targets = resources.join(", ");
        if more > 0 {
            targets.push_str(&(self.words.and_more)(more));
        }
        let codes: BTreeSet<&str> = group
            .events
            .iter()
            .filter_map(|e| e.event.error_code.as_deref())
            .collect();
        Some((self.words.ran)(&Ran {
            when,
            subject,
            name: group.name,
            targets: &targets,
            calls: n,
            failed: group.events.iter().filter(|e| e.event.failed()).count(),
            codes: &codes.into_iter().collect::<Vec<_>>().join(", "),
            title: self.rule_title(&first.rule),
        }))
    }

    fn sign_in(&self, when: &str, subject: &str, group: &NameGroup<'_>) -> String {
        let failed = group
            .events
            .iter()
            .filter(|e| e.event.login_result.as_deref() == Some("Failure") || e.event.failed())
            .count();
        let without_mfa = group
            .events
            .iter()
            .any(|e| e.event.mfa_used.as_deref() == Some("No"));
        (self.words.sign_in)(&SignIn {
            when,
            subject,
            attempts: group.events.len(),
            failed,
            without_mfa,
        })
    }

    fn more_groups(&self, actors: &[ActorGroup<'_>], named: usize, more: usize) -> String {
        let shown_events: usize = actors
            .iter()
            .flat_map(|a| a.groups.iter())
            .take(named)
            .map(|g| g.events.len())
            .sum();
        let total: usize = actors.iter().map(|a| a.count).sum();
        (self.words.more_groups)(more, total - shown_events)
    }

    /// `Terraform으로 적용된 변경 312건, 사람이 직접 수행한 변경 3건.`
    fn performers(&self, batch: &Batch) -> String {
        let mut counts: BTreeMap<ChangesBy, usize> = BTreeMap::new();
        for item in &batch.events {
            *counts.entry(changes_by(&item.actor)).or_default() += 1;
        }
        let parts: Vec<String> = counts
            .into_iter()
            .map(|(by, n)| (self.words.changes_by)(by, n))
            .collect();
        format!("{}.", parts.join(", "))
    }

    fn failures(&self, batch: &Batch) -> Option<String> {
        let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
        for item in &batch.events {
            if let Some(code) = item.event.error_code.as_deref() {
                *codes.entry(code).or_default() += 1;
            }
        }
        let total: usize = codes.values().sum();
        if total == 0 {
            return None;
        }
        let list: Vec<String> = codes
            .iter()
            .map(|(code, n)| format!("{code} ×{n}"))
            .collect();
        Some((self.words.failed_calls)(total, &list.join(", ")))
    }

    fn already_alerted(&self, batch: &Batch) -> Option<String> {
        if batch.kind == BatchKind::Immediate {
            return None;
        }
        let n = batch.events.iter().filter(|e| e.already_alerted).count();
        (n > 0).then(|| (self.words.already_posted)(n))
    }

    /// One short remark per named group: `RunInstances ×200 — EC2 instance changed (yellow)`.
    fn notes(&self, actors: &[ActorGroup<'_>]) -> Vec<String> {
        actors
            .iter()
            .flat_map(|a| a.groups.iter().map(move |g| (a.actor, g)))
            .take(NAMED_GROUPS)
            .filter_map(|(actor, group)| {
                let rule = group
                    .events
                    .iter()
                    .map(|e| &e.rule)
                    .max_by_key(|r| r.severity)?;
                let count = match group.events.len() {
                    1 => String::new(),
                    n => format!(" ×{n}"),
                };
                Some(format!(
                    "{}: {}{count} — {} ({})",
                    self.words.principal_name(&actor.principal),
                    group.name,
                    self.rule_title(rule),
                    self.severity_word(rule.severity)
                ))
            })
            .collect()
    }
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
            incident: None,
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
        let mut out = format!(
            "headline: {}\nseverity: {} ({})\n\n{}\n",
            summary.headline, summary.severity, summary.severity_reason, summary.body
        );
        if !summary.notes.is_empty() {
            out.push_str("\nnotes:\n");
            for note in &summary.notes {
                out.push_str("- ");
                out.push_str(note);
                out.push('\n');
            }
        }
        out
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
            "[111111111111(A계정)] IAM 사용자 생성 외 4건"
        );
        assert!(
            summary
                .body
                .contains("2024-05-01 14:03 KST, jane.doe@example.com(사람, 콘솔)이 IAM 사용자")
        );
        insta::assert_snapshot!(render(&summary));
    }

    #[test]
    fn terraform_burst_ko() {
        let summary = offline_summary(&testkit::terraform_burst(), ko());
        assert!(summary.body.contains("Terraform으로 적용된 변경 297건"));
        assert!(summary.body.contains("사람이 직접 수행한 변경 3건"));
        assert!(summary.body.contains("RunInstances ×200"));
        assert!(summary.body.contains("외 2개 그룹"));
        insta::assert_snapshot!(render(&summary));
    }

    #[test]
    fn terraform_burst_en() {
        let summary = offline_summary(&testkit::terraform_burst(), en());
        assert!(summary.body.contains("297 changes applied by Terraform"));
        assert!(summary.body.contains("and 2 more groups"));
        insta::assert_snapshot!(render(&summary));
    }

    #[test]
    fn root_login_ko_and_en() {
        let batch = testkit::root_login();
        let ko = offline_summary(&batch, ko());
        assert_eq!(ko.severity, Severity::Red);
        assert!(ko.body.contains("즉시 알림"));
        insta::assert_snapshot!("root_login_ko", render(&ko));
        insta::assert_snapshot!("root_login_en", render(&offline_summary(&batch, en())));
    }

    #[test]
    fn late_batch_en_and_ko() {
        let batch = testkit::late_s3();
        let en = offline_summary(&batch, en());
        assert!(en.headline.starts_with("[111111111111 (A계정)] Late: "));
        insta::assert_snapshot!("late_en", render(&en));
        let ko = offline_summary(&batch, ko());
        assert!(ko.body.contains("지연 도착한 이벤트 2건"));
        insta::assert_snapshot!("late_ko", render(&ko));
    }

    #[test]
    fn the_whole_summary_as_json() {
        insta::assert_json_snapshot!(offline_summary(&testkit::console_iam(), ko()));
    }

    #[test]
    fn body_names_at_most_six_groups() {
        let r = rule("any", "Any change", "변경", Severity::Green);
        let jane = testkit::jane();
        let events = (0..40)
            .map(|i| {
                let name = format!("Call{i:02}");
                item(i, at(5, 1, 0), ("ec2.amazonaws.com", &name), &jane, &r, &[])
            })
            .collect();
        let batch = batch(BatchKind::Window, events);
        let summary = offline_summary(&batch, ko());
        let named = (0..40)
            .filter(|i| summary.body.contains(&format!("Call{i:02}")))
            .count();
        assert_eq!(named, NAMED_GROUPS);
        assert!(
            summary.body.contains("외 34개 그룹(34건)"),
            "{}",
            summary.body
        );
        assert_eq!(summary.notes.len(), NAMED_GROUPS);
        assert!(
            summary.body.len() < 1_000,
            "bounded: {} bytes",
            summary.body.len()
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
        assert_eq!(summary.headline, "[111111111111 (A계정)] No changes");
    }

    #[test]
    fn times_cross_midnight_in_the_reader_zone() {
        let text = Text {
            lang: Lang::Ko,
            words: Lang::Ko.words(),
            tz: Seoul,
        };
        // 14:59 and 15:01 UTC are 23:59 and 00:01 KST, on two dates.
        assert_eq!(
            text.span(at(14, 59, 0), at(15, 1, 0)),
            "2024-05-01 23:59 – 2024-05-02 00:01 KST"
        );
        assert_eq!(
            text.span(at(5, 0, 0), at(5, 4, 59)),
            "2024-05-01 14:00–14:04 KST"
        );
        assert_eq!(text.span(at(5, 3, 1), at(5, 3, 59)), "2024-05-01 14:03 KST");
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
