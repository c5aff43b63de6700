//! The parts of a message that incidents add: a thread reply's compact head and list (repeats
//! collapsed, every event counted), a reminder's "still going" line, and a digest's note on
//! events already posted as immediate alerts.

use std::fmt::Write as _;

use super::{Block, Text, code_within, plain_within};
use crate::incident::{HeldEntry, Incident};
use crate::locale::Locale;
use crate::summary::outcome::Outcome;
use crate::window::{Batch, BatchEvent};

/// When an incident started, as seen from `batch`'s window: `09:00` on the same day,
/// `2026-11-02 09:00` before it.
fn since(time: chrono::DateTime<chrono::Utc>, batch: &Batch, locale: Locale) -> String {
    let start = time.with_timezone(&locale.tz);
    let window = batch.id.window_start.with_timezone(&locale.tz);
    let format = if start.date_naive() == window.date_naive() {
        "%H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    start.format(format).to_string()
}

/// "↳ 12 more events · Root used · since 09:00 · 40 events so far".
pub(super) fn reply_head(batch: &Batch, incident: &Incident, locale: Locale) -> Block {
    let w = locale.words();
    let title = batch
        .events
        .first()
        .map(|e| plain_within(e.rule.title(locale.lang), 150))
        .unwrap_or_default();
    Block::Context {
        elements: vec![Text::mrkdwn(format!(
            "↳ *{}* · {title} · {} {} · {}",
            (w.more_events)(batch.events.len()),
            w.since,
            since(incident.opened_at, batch, locale),
            (w.so_far)(incident.events),
        ))],
    }
}

/// "Still going since 09:00 · 40 events so far · earlier events are in the thread …".
pub(super) fn reminder_line(
    batch: &Batch,
    incident: &Incident,
    locale: Locale,
    threaded: bool,
) -> Block {
    let w = locale.words();
    Block::Context {
        elements: vec![Text::mrkdwn(format!(
            ":repeat: *{} {} {}* · {} · {}",
            w.still_going,
            w.since,
            since(incident.opened_at, batch, locale),
            (w.so_far)(incident.events),
            if threaded { w.in_thread } else { w.in_held },
        ))],
    }
}

/// The first post past a channel's hourly ceiling: later new incidents fold into its thread.
pub(super) fn overflow_line(ceiling: usize, locale: Locale, threaded: bool) -> Block {
    let w = locale.words();
    let text = if threaded {
        (w.overflow)(ceiling)
    } else {
        (w.overflow_unthreaded)(ceiling)
    };
    Block::Context {
        elements: vec![Text::mrkdwn(format!(":heavy_plus_sign: *{text}*"))],
    }
}

/// The digest's note on events left out because their immediate alert went out.
pub(super) fn alerted_note(count: usize, locale: Locale) -> Block {
    Block::Context {
        elements: vec![Text::mrkdwn(format!(
            ":bell: {}",
            (locale.words().alerted_elsewhere)(count)
        ))],
    }
}

/// A reply's events, repeats collapsed as the digest's tree does: one line per event name and
/// outcome, with its count, time range and resources (`• 10:05:01–10:09:40
/// `DescribeInstances` ×12 → ...`), in order of first time.
pub(super) fn collapsed_lines(batch: &Batch, locale: Locale) -> Vec<String> {
    let w = locale.words();
    let mut groups: Vec<Vec<&BatchEvent>> = Vec::new();
    for e in &batch.events {
        let key = |x: &BatchEvent| {
            (
                x.event.name.clone(),
                Outcome::of(&x.event),
                x.already_alerted,
            )
        };
        match groups.iter_mut().find(|g| key(g[0]) == key(e)) {
            Some(group) => group.push(e),
            None => groups.push(vec![e]),
        }
    }
    groups
        .iter()
        .map(|events| super::tree_line(events, false, locale, w))
        .collect()
}

/// Entries listed in a "continuing" section; the rest are counted.
const HELD_SHOWN: usize = 15;

/// A time of a held event as seen from `batch`'s window (`09:00`, or with its date).
fn clock(time: chrono::DateTime<chrono::Utc>, batch: &Batch, locale: Locale) -> String {
    since(time, batch, locale)
}

/// The "continuing" section of a top-level post, for a destination without threads: one
/// line per incident with held events (`• 🔴 Root used · root · 42 events 10:05–10:40 ·
/// DescribeInstances ×30, …`), worst first.
pub(super) fn continuing_blocks(
    entries: &[HeldEntry],
    batch: &Batch,
    locale: Locale,
) -> Vec<Block> {
    let w = locale.words();
    let mut lines: Vec<String> = entries
        .iter()
        .take(HELD_SHOWN)
        .map(|entry| {
            let subject = if entry.subject.is_empty() {
                w.no_actor.to_owned()
            } else {
                plain_within(&entry.subject, 120)
            };
            let mut line = format!(
                "• {} *{}* · {subject} · {} {}",
                entry.severity.emoji(),
                plain_within(&entry.title, 150),
                (w.events_n)(entry.events),
                clock(entry.first, batch, locale),
            );
            if entry.last != entry.first {
                let _ = write!(line, "–{}", clock(entry.last, batch, locale));
            }
            let names: Vec<String> = entry
                .top_names()
                .into_iter()
                .take(4)
                .map(|(name, count)| {
                    let name = code_within(name, 60);
                    if count > 1 {
                        format!("{name} ×{count}")
                    } else {
                        name
                    }
                })
                .collect();
            if !names.is_empty() {
                let _ = write!(line, " · {}", names.join(", "));
            }
            if let Some(since) = entry.since.filter(|s| *s < entry.first) {
                let _ = write!(line, " ({} {})", w.since, clock(since, batch, locale));
            }
            line
        })
        .collect();
    if entries.len() > HELD_SHOWN {
        lines.push((w.more)(entries.len() - HELD_SHOWN));
    }
    let mut blocks = vec![Block::Context {
        elements: vec![Text::mrkdwn(format!(
            ":repeat: *{}* · {}",
            w.continuing, w.continuing_note
        ))],
    }];
    blocks.extend(super::pack(lines));
    blocks
}

/// The head of a post of held events only: its headline and the account.
pub(super) fn continuing_head(delivery: &crate::delivery::Delivery) -> Vec<Block> {
    let (batch, locale) = (&delivery.batch, delivery.locale);
    let w = locale.words();
    let events: u64 = delivery.continuing.iter().map(|e| e.events).sum();
    let mut head = vec![
        Block::section(format!(
            "{} *{}*",
            delivery.severity.emoji(),
            (w.continuing_headline)(events, delivery.continuing.len())
        )),
        Block::Context {
            elements: vec![Text::mrkdwn(plain_within(&batch.account_label(), 200))],
        },
    ];
    head.extend(continuing_blocks(&delivery.continuing, batch, locale));
    head
}
