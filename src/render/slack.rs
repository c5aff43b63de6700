//! Slack Block Kit: one colour-bar attachment per batch, split within Slack's limits.
//!
//! The layout follows the original system's message, which readers know, and says each fact
//! once: a bold headline (what happened, by whom, how it ended), at most a few summary lines
//! that add to it (a model's), the fields (time, regions, account), `CloudTrail` buttons, a
//! divider, then the tree: performer (when there are several) -> rule (when there are
//! several) -> one line per API and outcome, repeats grouped (`GetPasswordData ×29 → i-0abc,
//! i-0def and 27 more · denied`). The tree is rendered from the batch, never from the
//! summary: every event is in it exactly once, and what does not fit in one message goes into
//! continuation messages that the Notifier posts as thread replies.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::console::cloudtrail_url;
use super::escape::{code_within, defang, plain_within};
use crate::delivery::{Delivery, Placement};
use crate::enrich::{Performer, Principal};
use crate::locale::Words;
use crate::severity::Severity;
use crate::summary::offline::{clip_middle, who};
use crate::summary::outcome::{Outcome, Outcomes};
use crate::summary::{Locale, Summary, SummarySource};
use crate::window::{Batch, BatchEvent, BatchKind};

/// Slack's limit on blocks per message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on the text of a section block.
pub const MAX_TEXT: usize = 3000;
/// Slack's limit on one field of a section block.
pub const MAX_FIELD: usize = 2000;
/// Resource names on one tree line; the rest are counted.
pub const TREE_RESOURCES: usize = 3;
/// Longest resource name a tree line shows whole; longer ones keep their start and end.
pub const TREE_NAME_CHARS: usize = 64;
/// Buttons shown; further regions are listed as text.
pub const MAX_BUTTONS: usize = 5;
/// `metadata.event_type` of every message we post.
pub const EVENT_TYPE: &str = "trailwatch_batch";

#[cfg(test)]
thread_local! {
    /// Calls of [`render_batch`] on this thread: lets a test show that an output format
    /// never builds Slack blocks.
    pub(crate) static RENDERED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One message to post. Part 0 is the parent; parts 1.. are thread replies to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlackMessage {
    /// `batch.id.key()`: the same for every part of a batch.
    pub batch_key: String,
    pub part: usize,
    pub parts: usize,
    /// The batch key of the message this one is a thread reply to: an incident's first
    /// message for a reply, part 0 for a continuation; `null` for a top-level message.
    pub thread_of: Option<String>,
    pub payload: Payload,
}

impl SlackMessage {
    /// True for a thread reply: a continuation part, or a reply under an incident.
    pub fn is_reply(&self) -> bool {
        self.thread_of.is_some()
    }

    /// True for parts 1..: post as a reply in the parent's thread.
    pub fn is_continuation(&self) -> bool {
        self.part > 0
    }
}

/// The body of `chat.postMessage` (the Notifier adds `channel` and `thread_ts`). No top-level
/// `text`: Slack would show it above the attachment, repeating the headline; notifications
/// use the attachment's `fallback` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    pub attachments: Vec<Attachment>,
    pub metadata: Metadata,
}

/// A colour bar and the blocks beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub color: String,
    /// What notifications and text-only clients show: the headline, escaped.
    pub fallback: String,
    pub blocks: Vec<Block>,
}

/// Message metadata: lets a retry see that a part was already posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub event_type: String,
    pub event_payload: EventPayload,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventPayload {
    pub batch_id: String,
    pub part: usize,
    pub parts: usize,
    /// Which deployment posted it (the Slack notifier sets it): two deployments posting into
    /// one channel, or a replay into it, must not take each other's messages for their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
}

/// The Block Kit blocks we use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Section {
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<Text>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fields: Option<Vec<Text>>,
    },
    Context {
        elements: Vec<Text>,
    },
    Actions {
        elements: Vec<Button>,
    },
    Divider,
}

impl Block {
    fn section(text: String) -> Self {
        Self::Section {
            text: Some(Text::mrkdwn(text)),
            fields: None,
        }
    }

    /// Every text in the block, for limit checks and previews.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Self::Section { text, fields } => text
                .iter()
                .chain(fields.iter().flatten())
                .map(Text::as_str)
                .collect(),
            Self::Context { elements } => elements.iter().map(Text::as_str).collect(),
            Self::Actions { elements } => elements.iter().map(|b| b.text.as_str()).collect(),
            Self::Divider => Vec::new(),
        }
    }
}

/// A text object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Text {
    /// `verbatim: true`: Slack must not auto-link URLs or parse names in event text.
    #[serde(rename = "mrkdwn")]
    Mrkdwn { text: String, verbatim: bool },
    #[serde(rename = "plain_text")]
    PlainText { text: String, emoji: bool },
}

impl Text {
    fn mrkdwn(text: String) -> Self {
        Self::Mrkdwn {
            text,
            verbatim: true,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Mrkdwn { text, .. } | Self::PlainText { text, .. } => text,
        }
    }
}

/// A link button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename = "button")]
pub struct Button {
    pub text: Text,
    pub url: String,
    pub action_id: String,
}

/// Renders a delivery as one or more messages: part 0 the parent, the rest its thread
/// replies, each within Slack's limits ([`MAX_BLOCKS`], [`MAX_TEXT`]).
pub fn render_batch(delivery: &Delivery) -> Vec<SlackMessage> {
    #[cfg(test)]
    RENDERED.set(RENDERED.get() + 1);
    let (batch, summary, locale, severity) = (
        &delivery.batch,
        &delivery.summary,
        delivery.locale,
        delivery.severity,
    );
    let l = locale.words();
    let Some((head, sections)) = head_and_sections(delivery) else {
        // Held for a later top-level post: nothing of its own to show.
        return Vec::new();
    };

    let first_room = MAX_BLOCKS - head.len();
    let later_room = MAX_BLOCKS - 1;
    let rest = sections.len().saturating_sub(first_room);
    let parts = 1 + rest.div_ceil(later_room);

    let key = delivery.key();
    // A destination without threads posts every part top level, and says so.
    let thread_of = delivery
        .thread_of()
        .filter(|_| delivery.threaded)
        .map(str::to_owned);
    let fallback = fallback_text(batch, summary, l);
    let mut remaining = sections.into_iter();
    let mut messages = Vec::with_capacity(parts);
    for part in 0..parts {
        let mut blocks = if part == 0 {
            head.clone()
        } else {
            vec![continuation_head(summary, severity, part, parts, l)]
        };
        let room = MAX_BLOCKS - blocks.len();
        blocks.extend(remaining.by_ref().take(room));
        let fallback = if part == 0 {
            fallback.clone()
        } else {
            format!("({} {}/{parts}) {fallback}", l.continued, part + 1)
        };
        messages.push(SlackMessage {
            batch_key: key.clone(),
            part,
            parts,
            thread_of: thread_of
                .clone()
                .or_else(|| (part > 0 && delivery.threaded).then(|| key.clone())),
            payload: Payload {
                attachments: vec![Attachment {
                    color: severity.colour().to_owned(),
                    fallback,
                    blocks,
                }],
                metadata: Metadata {
                    event_type: EVENT_TYPE.to_owned(),
                    event_payload: EventPayload {
                        batch_id: key.clone(),
                        part,
                        parts,
                        deployment: None,
                    },
                },
            },
        });
    }
    messages
}

/// The head blocks of a delivery's first message and the sections that follow it (they may
/// spill into continuation parts); `None` for a held reply, which shows nothing of its own.
fn head_and_sections(delivery: &Delivery) -> Option<(Vec<Block>, Vec<Block>)> {
    let (batch, summary, locale, severity) = (
        &delivery.batch,
        &delivery.summary,
        delivery.locale,
        delivery.severity,
    );
    let l = locale.words();
    let (mut head, mut sections) = match &delivery.placement {
        Placement::Held(_) => return None,
        Placement::Continuing => (incident::continuing_head(delivery), Vec::new()),
        Placement::Notice => (notice_head(delivery), Vec::new()),
        Placement::Reply(incident) => (
            vec![incident::reply_head(batch, incident, locale)],
            pack(incident::collapsed_lines(batch, locale)),
        ),
        Placement::Reminder(incident) => {
            let mut head = vec![incident::reminder_line(
                batch,
                incident,
                locale,
                delivery.threaded,
            )];
            head.extend(head_blocks(batch, summary, severity, locale, l));
            (head, tree_sections(batch, locale, l))
        }
        Placement::Overflow(ceiling) => {
            let mut head = vec![incident::overflow_line(*ceiling, locale, delivery.threaded)];
            head.extend(head_blocks(batch, summary, severity, locale, l));
            (head, tree_sections(batch, locale, l))
        }
        Placement::Top | Placement::Folded(_) => {
            let mut head = head_blocks(batch, summary, severity, locale, l);
            if delivery.alerted_elsewhere > 0 {
                let at = head.len().saturating_sub(1);
                head.insert(
                    at,
                    incident::alerted_note(delivery.alerted_elsewhere, locale),
                );
            }
            (head, tree_sections(batch, locale, l))
        }
    };
    let own_head = matches!(
        delivery.placement,
        Placement::Continuing | Placement::Notice
    );
    let headed = matches!(
        delivery.placement,
        Placement::Top | Placement::Folded(_) | Placement::Reminder(_) | Placement::Overflow(_)
    );
    if headed && said_by_headline(batch, summary) && delivery.continuing.is_empty() {
        // The tree would repeat the headline line for line.
        if matches!(head.last(), Some(Block::Divider)) {
            head.pop();
        }
        return Some((head, Vec::new()));
    }
    if !delivery.continuing.is_empty() && !own_head {
        // Before the divider that ends the head, so it stays in the first message.
        let at = head.len().saturating_sub(1);
        let list = incident::continuing_blocks(&delivery.continuing, batch, locale);
        head.splice(at..at, list);
    }
    if sections.is_empty() && !own_head {
        sections.push(Block::section(l.no_events.to_owned()));
    }
    Some((head, sections))
}

/// True when the offline headline already says everything the tree would: one performer,
/// one API (named in it), one outcome (one tree line).
fn said_by_headline(batch: &Batch, summary: &Summary) -> bool {
    let Some(first) = batch.events.first() else {
        return false;
    };
    summary.source == SummarySource::Offline
        && summary.headline.contains(first.event.display_name())
        && batch.events.iter().all(|e| {
            e.actor == first.actor
                && e.event.name == first.event.name
                && Outcome::of(&e.event) == Outcome::of(&first.event)
                && e.already_alerted == first.already_alerted
        })
}

/// A notice about the pipeline: its headline, the account, what it means.
fn notice_head(delivery: &Delivery) -> Vec<Block> {
    let (batch, summary) = (&delivery.batch, &delivery.summary);
    let mut head = vec![
        Block::section(format!(
            "{} *{}*",
            delivery.severity.emoji(),
            prose(&summary.headline, 300)
        )),
        Block::Context {
            elements: vec![Text::mrkdwn(plain_within(&batch.account_label(), 200))],
        },
    ];
    if !summary.body.is_empty() {
        head.push(Block::section(prose(&summary.body, 1_000)));
    }
    head
}

/// Summary text (a model's or the templates'): links and mentions defanged, then escaped
/// like event text.
fn prose(text: &str, max: usize) -> String {
    plain_within(&defang(text), max)
}

fn fallback_text(batch: &Batch, summary: &Summary, l: &Words) -> String {
    let mut headline = prose(&summary.headline, 300);
    let account = plain_within(&batch.account_label(), 200);
    // A notification names the account, once.
    if !headline.contains(&account) {
        headline = format!("{headline} · {account}");
    }
    match batch.kind {
        BatchKind::Late => format!("[{}] {headline}", l.late),
        BatchKind::Immediate => format!("[{}] {headline}", l.immediate),
        BatchKind::Window => headline,
    }
}

fn head_blocks(
    batch: &Batch,
    summary: &Summary,
    severity: Severity,
    locale: Locale,
    l: &Words,
) -> Vec<Block> {
    let mut blocks = vec![Block::section(headline_text(batch, summary, severity, l))];
    if let Some(body) = body_text(summary) {
        blocks.push(Block::section(body));
    }
    blocks.push(Block::Section {
        text: None,
        fields: Some(fields(batch, summary, locale, l)),
    });
    blocks.extend(region_blocks(batch, l));
    if let Some(line) = source_line(batch, summary, l) {
        blocks.push(Block::Context {
            elements: vec![Text::mrkdwn(line)],
        });
    }
    blocks.push(Block::Divider);
    blocks
}

fn headline_text(batch: &Batch, summary: &Summary, severity: Severity, l: &Words) -> String {
    let headline = non_empty(prose(&summary.headline, 1000));
    let mut text = format!("{} *{headline}*", severity.emoji());
    match batch.kind {
        BatchKind::Late => {
            let _ = write!(
                text,
                "\n:hourglass_flowing_sand: *{}* · {}",
                l.late, l.late_note
            );
        }
        BatchKind::Immediate => {
            let _ = write!(text, "\n:rotating_light: *{}*", l.immediate);
        }
        BatchKind::Window => {}
    }
    text
}

/// The summary body, then its notes as bullets; `None` when both are empty.
fn body_text(summary: &Summary) -> Option<String> {
    let mut text = prose(&summary.body, 2000);
    let notes: Vec<String> = summary
        .notes
        .iter()
        .map(|n| prose(n, 300))
        .filter(|n| !n.is_empty())
        .collect();
    for (i, note) in notes.iter().enumerate() {
        let line = format!("• {note}");
        // Keep room for a "+N" line when notes do not fit.
        if text.chars().count() + line.chars().count() + 12 > MAX_TEXT {
            let _ = write!(text, "\n• +{}", notes.len() - i);
            break;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&line);
    }
    (!text.is_empty()).then_some(text)
}

/// Who wrote the summary, when a model did (or failed to): the offline templates are the
/// default and go unsaid. When the model raised the colour, why.
fn source_line(batch: &Batch, summary: &Summary, l: &Words) -> Option<String> {
    let mut line = match &summary.source {
        SummarySource::Offline => return None,
        SummarySource::Fallback { .. } => format!("{}: {}", l.summary_by, l.by_fallback),
        SummarySource::Model { model_id, .. } => format!(
            "{}: {} {}",
            l.summary_by,
            l.by_model,
            plain_within(model_id, 100)
        ),
    };
    let reason = prose(&summary.severity_reason, 1000);
    if summary.severity > batch.rule_severity() && !reason.is_empty() {
        let _ = write!(
            line,
            " · {} {}: {reason}",
            summary.severity.emoji(),
            l.severity_name(summary.severity)
        );
    }
    Some(line)
}

/// Time and account: what the headline and the tree do not say (each region is named by its
/// `CloudTrail` button, or listed under it when it has none). Under a model's headline, also
/// the events counted by outcome from the batch itself: a model cannot talk them away.
fn fields(batch: &Batch, summary: &Summary, locale: Locale, l: &Words) -> Vec<Text> {
    let field = |label: &str, value: String| Text::mrkdwn(format!("*{label}*\n{value}"));
    let mut fields = vec![
        field(l.time, time_text(batch, locale.tz)),
        field(l.account, plain_within(&batch.account_label(), 300)),
    ];
    if summary.source != SummarySource::Offline {
        let outcomes = Outcomes::count(batch.events.iter().map(|e| &e.event));
        let counted = format!("{} ({})", batch.events.len(), (l.outcome_counts)(&outcomes));
        fields.push(field(l.events, counted));
    }
    fields
}

/// Joins items while they fit in `max` chars, then says how many were left out.
fn join_within(items: &[String], sep: &str, max: usize, l: &Words) -> String {
    let mut out = String::new();
    let mut len = 0;
    for (i, item) in items.iter().enumerate() {
        let add = item.chars().count() + if i > 0 { sep.len() } else { 0 };
        if len + add > max {
            let _ = write!(out, " {}", (l.more)(items.len() - i));
            return out;
        }
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item);
        len += add;
    }
    if out.is_empty() { "-".to_owned() } else { out }
}

fn regions(batch: &Batch) -> BTreeSet<&str> {
    batch.events.iter().map(|e| &*e.event.region).collect()
}

/// The window in the reader's zone (`2024-01-01 09:00–09:05 KST`), or the event time for an
/// immediate alert or a one-event batch.
fn time_text(batch: &Batch, tz: Tz) -> String {
    if (batch.kind == BatchKind::Immediate || batch.events.len() == 1)
        && let Some(e) = batch.events.first()
    {
        return e
            .event
            .time
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string();
    }
    let start = batch.id.window_start.with_timezone(&tz);
    let end = batch.window_end.with_timezone(&tz);
    let (start_zone, end_zone) = (start.format("%Z").to_string(), end.format("%Z").to_string());
    if start_zone != end_zone {
        return format!(
            "{}–{}",
            start.format("%Y-%m-%d %H:%M %Z"),
            end.format("%Y-%m-%d %H:%M %Z")
        );
    }
    let end_format = if start.date_naive() == end.date_naive() {
        "%H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    format!(
        "{}–{} {start_zone}",
        start.format("%Y-%m-%d %H:%M"),
        end.format(end_format)
    )
}

/// Buttons to each region's `CloudTrail` event history, and the regions beyond five as text.
fn region_blocks(batch: &Batch, l: &Words) -> Vec<Block> {
    let mut buttons = Vec::new();
    let mut unlinked = Vec::new();
    for region in regions(batch) {
        match cloudtrail_url(region, batch.id.window_start, batch.window_end) {
            Some(url) if buttons.len() < MAX_BUTTONS => buttons.push(Button {
                text: Text::PlainText {
                    text: format!("CloudTrail {region}"),
                    emoji: false,
                },
                url,
                action_id: format!("cloudtrail_{region}"),
            }),
            _ => unlinked.push(plain_within(region, 60)),
        }
    }
    let mut blocks = Vec::new();
    if !buttons.is_empty() {
        blocks.push(Block::Actions { elements: buttons });
    }
    if !unlinked.is_empty() {
        blocks.push(Block::Context {
            elements: vec![Text::mrkdwn(format!(
                "{}: {}",
                l.other_regions,
                join_within(&unlinked, ", ", MAX_TEXT - 100, l)
            ))],
        });
    }
    blocks
}

fn continuation_head(
    summary: &Summary,
    severity: Severity,
    part: usize,
    parts: usize,
    l: &Words,
) -> Block {
    Block::section(format!(
        "{} *({} {}/{parts})* {}",
        severity.emoji(),
        l.continued,
        part + 1,
        prose(&summary.headline, 300)
    ))
}

/// Lines packed into section blocks of at most [`MAX_TEXT`] chars.
fn pack(lines: Vec<String>) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in lines {
        if !current.is_empty() && current.chars().count() + line.chars().count() + 1 > MAX_TEXT {
            blocks.push(Block::section(std::mem::take(&mut current)));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        blocks.push(Block::section(current));
    }
    blocks
}

/// One line of the tree: events of one performer, rule, API and outcome.
struct Line<'a> {
    events: Vec<&'a BatchEvent>,
}

/// A rule's lines, and a performer's rules, in order of first appearance.
type RuleLines<'a> = (&'a str, Vec<Line<'a>>);
type PerformerRules<'a> = (&'a Principal, Vec<RuleLines<'a>>);

/// Where `key` is in `items`, added at the end when it is not.
fn index_of<K: PartialEq, V>(items: &mut Vec<(K, Vec<V>)>, key: K) -> usize {
    if let Some(at) = items.iter().position(|(k, _)| *k == key) {
        return at;
    }
    items.push((key, Vec::new()));
    items.len() - 1
}

/// The tree, packed into section blocks of at most [`MAX_TEXT`] chars: performer headers when
/// there are several performers, rule headers when there are several rules, then one line
/// per API and outcome. A header is repeated (marked continued) when its lines run into the
/// next block.
fn tree_sections(batch: &Batch, locale: Locale, l: &Words) -> Vec<Block> {
    let actors: BTreeSet<&Principal> = batch.events.iter().map(|e| &e.actor.principal).collect();
    let rules: BTreeSet<&str> = batch.events.iter().map(|e| e.rule.id.as_str()).collect();
    let one_event = batch.events.len() == 1;
    // Performer -> rule -> (API, outcome, alerted, tool) -> events, in order of first
    // appearance.
    let mut tree: Vec<PerformerRules<'_>> = Vec::new();
    for e in &batch.events {
        let at = index_of(&mut tree, &e.actor.principal);
        let by_rule = &mut tree[at].1;
        let rule_at = index_of(by_rule, e.rule.id.as_str());
        let lines = &mut by_rule[rule_at].1;
        let key = |x: &BatchEvent| {
            (
                x.event.name.clone(),
                Outcome::of(&x.event),
                x.already_alerted,
                x.actor.tool,
            )
        };
        if let Some(line) = lines.iter_mut().find(|line| key(line.events[0]) == key(e)) {
            line.events.push(e);
        } else {
            lines.push(Line { events: vec![e] });
        }
    }
    let mut packer = Packer::default();
    for (principal, by_rule) in tree {
        // The tool goes in the header when the performer used one, else on each line.
        let performers: BTreeSet<&Performer> = batch
            .events
            .iter()
            .filter(|e| &e.actor.principal == principal)
            .map(|e| &e.actor)
            .collect();
        let one_tool = performers.len() == 1;
        let actor = performers.first().copied();
        let actor_header = actor
            .filter(|_| actors.len() > 1)
            .map(|actor| format!("*{}*", plain_within(&who(actor, l, one_tool), 300)));
        for (rule_index, (rule, lines)) in by_rule.into_iter().enumerate() {
            let title = batch
                .events
                .iter()
                .find(|e| e.rule.id == rule)
                .map(|e| plain_within(e.rule.title(locale.lang), 150))
                .unwrap_or_default();
            let rule_header = (rules.len() > 1).then(|| format!("▸ {title}"));
            // The performer is shown once; both headers again when lines spill over.
            let full: Vec<String> = actor_header
                .iter()
                .chain(rule_header.iter())
                .cloned()
                .collect();
            let full = full.join("\n");
            let shown = if rule_index == 0 {
                full.clone()
            } else {
                rule_header.unwrap_or_default()
            };
            for (i, line) in lines.iter().enumerate() {
                let mut text = tree_line(&line.events, one_event, locale, l);
                if !one_tool && let Some(tool) = l.tool_with_ci(&line.events[0].actor) {
                    let _ = write!(text, " · {}", (l.via)(&tool));
                }
                if i == 0 {
                    packer.start_group(&shown, &text);
                } else {
                    packer.push(&text, &full, l);
                }
            }
        }
    }
    packer.finish().into_iter().map(Block::section).collect()
}

/// Distinct resource names of `events` as code spans, at most [`TREE_RESOURCES`], then
/// ` and N more`.
fn targets(events: &[&BatchEvent], l: &Words) -> String {
    let mut seen = BTreeSet::new();
    let mut names: Vec<&str> = Vec::new();
    for e in events {
        for resource in &e.event.resources {
            if seen.insert(&*resource.name) {
                names.push(&resource.name);
            }
        }
    }
    let counted: usize = events
        .iter()
        .map(|e| usize::try_from(e.event.resources_more).unwrap_or(0))
        .sum();
    let more = names.len().saturating_sub(TREE_RESOURCES) + counted;
    let mut text = names
        .iter()
        .take(TREE_RESOURCES)
        .map(|n| code_within(&clip_middle(n, TREE_NAME_CHARS), 150))
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        text.push_str(&(l.and_more)(more));
    }
    text
}

/// `• 09:00:12–09:03:40 GetPasswordData ×29 → i-0abc, i-0def and 27 more · denied
/// (AccessDenied)`. The time is left out of a one-event message (its field says it).
pub(super) fn tree_line(
    events: &[&BatchEvent],
    one_event: bool,
    locale: Locale,
    l: &Words,
) -> String {
    let first = events[0];
    let mut line = "•".to_owned();
    if !one_event {
        let clock = |t: DateTime<Utc>| t.with_timezone(&locale.tz).format("%H:%M:%S").to_string();
        let (a, b) = (
            events
                .iter()
                .map(|e| e.event.time)
                .min()
                .unwrap_or(first.event.time),
            events
                .iter()
                .map(|e| e.event.time)
                .max()
                .unwrap_or(first.event.time),
        );
        let _ = write!(line, " {}", clock(a));
        if b != a {
            let _ = write!(line, "–{}", clock(b));
        }
    }
    let _ = write!(line, " {}", code_within(first.event.display_name(), 130));
    if events.len() > 1 {
        let _ = write!(line, " ×{}", events.len());
    }
    let targets = targets(events, l);
    if !targets.is_empty() {
        let _ = write!(line, " → {targets}");
    }
    let codes: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e.event.error_code.as_deref())
        .collect();
    let codes = codes
        .into_iter()
        .map(|c| code_within(c, 70))
        .collect::<Vec<_>>()
        .join(", ");
    match Outcome::of(&first.event) {
        Outcome::Change => {}
        Outcome::Read => {
            let _ = write!(line, " · {}", l.read);
        }
        Outcome::Denied => {
            let _ = write!(line, " · :x: {} {codes}", l.denied);
        }
        Outcome::Failed => {
            let _ = write!(line, " · :x: {} {codes}", l.failed);
        }
    }
    if first.already_alerted {
        let _ = write!(line, " :bell: ({})", l.already_alerted);
    }
    line.trim_end().to_owned()
}

#[derive(Default)]
struct Packer {
    done: Vec<String>,
    current: String,
    len: usize,
}

impl Packer {
    /// Starts an actor's group; the header never ends a block without an event under it.
    fn start_group(&mut self, header: &str, first: &str) {
        let needed = header.chars().count() + first.chars().count() + 2;
        if self.len + needed > MAX_TEXT {
            self.flush();
        }
        if !header.is_empty() {
            self.append(header);
        }
        self.append(first);
    }

    fn push(&mut self, line: &str, header: &str, l: &Words) {
        if self.len + 1 + line.chars().count() > MAX_TEXT {
            self.flush();
            if !header.is_empty() {
                self.append(&format!("{header} ({})", l.continued));
            }
        }
        self.append(line);
    }

    fn append(&mut self, line: &str) {
        let add = line.chars().count() + usize::from(self.len > 0);
        if self.len + add > MAX_TEXT {
            self.flush();
        }
        if self.len > 0 {
            self.current.push('\n');
            self.len += 1;
        }
        self.current.push_str(line);
        self.len += line.chars().count();
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
            self.len = 0;
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.done
    }
}

fn non_empty(s: String) -> String {
    if s.is_empty() { "?".to_owned() } else { s }
}

#[cfg(test)]
pub(crate) mod tests;

mod incident;
