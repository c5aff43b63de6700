//! The engine: decode -> rules -> enrich -> windows -> summary -> delivery -> notify, over ports.
//!
//! Generic over [`Store`], [`Summarizer`], [`Notifier`] and [`Clock`]; it does no I/O of its
//! own, and renders nothing: what it hands the notifier is a neutral [`Delivery`]. Replay, the
//! Lambda and `consume` differ only in the adapters they hand it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::delivery::{AuditLine, Placement, Receipt};
use crate::enrich::redact::RedactCache;
use crate::enrich::{AgentMemo, classify_with};
use crate::event::decode::{DecodeOptions, decode_json_lines_with, file_account, line_parts};
use crate::event::{Decoded, Heartbeat, Quarantined, Skipped, decode_bytes_with};
use crate::incident::{self, Ceiling, Incident, IncidentKey, Parent};
use crate::ports::{Delivery, Notifier, Retryable, Store};
use crate::rules::{RulePack, Verdict};
use crate::severity::Severity;
use crate::summary::{Summarizer, SummarySource, offline_summary};
use crate::window::{Added, Batch, BatchEvent, BatchId, BatchKind, Clock};

mod alerts;
pub mod heartbeat;
mod held;
mod thresholds;

/// How far past the wall clock an event may be dated before it is placed at the engine's
/// time (clocks drift; CloudTrail's own delivery is minutes late, never early).
pub const FUTURE_BOUND: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Event ids remembered with their content digest, to tell a conflicting duplicate from a
/// redelivery (forgotten all at once past this many).
const SEEN_KEPT: usize = 1 << 20;

/// What tells two records of one event id apart: account, event name, time, source and
/// region (FNV-1a, 64 bits: the same in every run).
fn content_digest(event: &BatchEvent) -> u64 {
    let e = &event.event;
    let time = e.time.timestamp_millis().to_le_bytes();
    fnv(&[
        e.account.as_str().as_bytes(),
        e.name.as_bytes(),
        &time,
        e.source.as_bytes(),
        e.region.as_bytes(),
    ])
}

/// FNV-1a (64 bits) of `parts`, each followed by a zero byte.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Why a post or a summary was given up: the flush's time budget ran out.
const BUDGET_SPENT: &str = "the flush's time budget ran out";

/// Most quarantined records kept for inspection (all are counted).
const QUARANTINE_KEPT: usize = 10_000;

/// Counters for one run. `read = decoded + quarantined + skipped + heartbeats`;
/// `decoded = matched + ignored + unmatched + duplicates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub read: u64,
    pub decoded: u64,
    pub quarantined: u64,
    /// Real CloudTrail output that is not an event: Insights records and digest files.
    pub skipped: u64,
    /// Of `skipped`: CloudTrail Insights records.
    pub skipped_insights: u64,
    /// Of `skipped`: CloudTrail digest files.
    pub skipped_digests: u64,
    /// Quarantined records beyond the first 10,000, which are counted but not kept (nor
    /// written to the quarantine file).
    pub quarantine_omitted: u64,
    /// Events dated more than 15 minutes past the wall clock, placed at the engine's time.
    pub future_dated: u64,
    /// Envelopes whose `detail.recipientAccountId` is not the EventBridge-stamped `account`
    /// (the envelope's is used).
    pub account_mismatches: u64,
    /// Records of an account outside `[trust] accounts`, quarantined (counted in
    /// `quarantined` too).
    pub untrusted: u64,
    /// Records whose event id was seen before with other content (another account or event
    /// name): the first in event-time order is kept, ties broken by a content digest.
    pub conflicting_duplicates: u64,
    pub matched: u64,
    pub ignored: u64,
    pub unmatched: u64,
    pub duplicates: u64,
    pub late: u64,
    pub immediate: u64,
    pub batches: u64,
    pub send_failures: u64,
    /// Send failures that retrying cannot fix (bad token, unknown channel): an operator alarm.
    pub send_failures_permanent: u64,
    pub fallbacks: u64,
    /// Top-level messages: digests, immediate alerts and reminders.
    pub top_level: u64,
    /// Thread replies under an incident's first message.
    pub replies: u64,
    /// Top-level reminders of incidents still going (counted in `top_level` too).
    pub reminders: u64,
    /// Events of immediate rules whose incident was already open: posted in its thread.
    pub immediate_in_thread: u64,
    /// Digests of new incidents folded past a channel's hourly ceiling (counted in `replies`).
    pub folded: u64,
    /// Replies held for the account's next top-level post (a destination without threads;
    /// see [`crate::incident::held`]).
    pub held: u64,
    /// Top-level posts of held events alone (counted in `top_level` too).
    pub continuing: u64,
    /// Immediate alerts stored for the next flush instead of posted during ingest (the
    /// Lambda: see [`Engine::with_deferred_alerts`]).
    pub queued_alerts: u64,
    /// Due batches, pending alerts and notices a flush left for the next one because its
    /// time budget ran out ([`Engine::set_deadline`]).
    pub deferred: u64,
    /// Heartbeats received (see [`heartbeat`]).
    pub heartbeats: u64,
    /// Account and region pairs found silent at the latest flush (a gauge, not a counter).
    pub silent_sources: u64,
    /// Notices posted that a source went silent or quiet, or came back.
    pub notices: u64,
    /// Events of threshold rules whose group stayed below the threshold in its window and that
    /// no other rule reports: kept out of the message (see [`crate::rules::Threshold`]).
    pub below_threshold: u64,
}

impl Stats {
    /// Add the counters decoding sets (read, decoded, quarantined, skipped, ignored, unmatched).
    fn add_decoding(&mut self, more: Self) {
        self.read += more.read;
        self.decoded += more.decoded;
        self.quarantined += more.quarantined;
        self.skipped += more.skipped;
        self.skipped_insights += more.skipped_insights;
        self.skipped_digests += more.skipped_digests;
        self.heartbeats += more.heartbeats;
        self.account_mismatches += more.account_mismatches;
        self.untrusted += more.untrusted;
        self.ignored += more.ignored;
        self.unmatched += more.unmatched;
    }
}

/// Keep `more` after `kept`, up to [`QUARANTINE_KEPT`] in all.
fn keep_quarantined(kept: &mut Vec<Quarantined>, more: Vec<Quarantined>) {
    let room = QUARANTINE_KEPT.saturating_sub(kept.len());
    kept.extend(more.into_iter().take(room));
}

/// A port failed; the engine stops and says which.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("state store failed")]
    Store {
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Retryable for EngineError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Store { retryable, .. } => *retryable,
        }
    }
}

fn store_error<E: std::error::Error + Retryable + Send + Sync + 'static>(err: E) -> EngineError {
    EngineError::Store {
        retryable: err.is_retryable(),
        source: Box::new(err),
    }
}

/// An error and its causes, `: `-joined: what is recorded on a batch that failed.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How [`Engine::decode`] shares a large JSON Lines input out: parts of at least `min_part`
/// bytes, cut at line ends, each decoded on a thread of its own (at most `threads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub threads: usize,
    pub min_part: usize,
}

impl Split {
    /// Everything on the calling thread.
    pub const SERIAL: Self = Self {
        threads: 1,
        min_part: usize::MAX,
    };

    /// This machine's cores (at most 8), for parts of at least 4 MiB: smaller inputs (a
    /// Kinesis batch, a CloudTrail log file) stay on the calling thread.
    pub fn cores() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            min_part: 4 << 20,
        }
    }
}

/// What decoding one buffer (or one part of it) gave: its matched events in input order.
#[derive(Default)]
struct Decoding {
    matched: Vec<BatchEvent>,
    stats: Stats,
    quarantine: Vec<Quarantined>,
    beats: Vec<Heartbeat>,
}

impl Decoding {
    /// Decode with `decode` (all of a buffer, or a run of its lines), matching and enriching
    /// each record as it comes.
    fn run(
        rules: &RulePack,
        settings: &Settings,
        decode: impl FnOnce(&mut dyn FnMut(Decoded<'_>)),
    ) -> Self {
        let (actors, trust) = (&settings.actors, &settings.trust);
        let mut out = Self::default();
        let mut redactions = RedactCache::default();
        let mut agents = AgentMemo::default();
        decode(&mut |decoded| {
            out.stats.read += 1;
            match decoded {
                Decoded::Record(record) if !trust.allows(record.account()) => {
                    out.stats.quarantined += 1;
                    out.stats.untrusted += 1;
                    if out.quarantine.len() < QUARANTINE_KEPT {
                        let reason = format!(
                            "account {} is not one of the organisation's ([trust] accounts)",
                            record.account()
                        );
                        out.quarantine.push(record.quarantined(&reason));
                    }
                }
                Decoded::Record(record) => {
                    out.stats.decoded += 1;
                    if record
                        .oddities()
                        .contains(&crate::event::decode::ACCOUNT_MISMATCH)
                    {
                        out.stats.account_mismatches += 1;
                    }
                    match rules.evaluate(&record.facts()) {
                        Verdict::Matched(rule) => {
                            let (counted, fallback) = if rule.threshold.is_some() {
                                let facts = record.facts();
                                (
                                    rules.counted_values(&rule, &facts),
                                    rules.without_threshold(&facts),
                                )
                            } else {
                                (Vec::new(), None)
                            };
                            let event = record.to_event_with(&mut redactions);
                            let actor = classify_with(&event, actors, &mut agents);
                            out.matched.push(BatchEvent {
                                event,
                                rule,
                                actor,
                                already_alerted: false,

                                placed: false,
                                incident: None,
                                counted,
                                fallback,
                            });
                        }
                        Verdict::Ignored(_) => out.stats.ignored += 1,
                        Verdict::Unmatched => out.stats.unmatched += 1,
                    }
                }
                Decoded::Quarantined(q) => {
                    out.stats.quarantined += 1;
                    if out.quarantine.len() < QUARANTINE_KEPT {
                        out.quarantine.push(q);
                    }
                }
                Decoded::Heartbeat(beat) if !trust.allows(beat.account.as_str()) => {
                    out.stats.quarantined += 1;
                    out.stats.untrusted += 1;
                    if out.quarantine.len() < QUARANTINE_KEPT {
                        out.quarantine.push(Quarantined {
                            reason: format!(
                                "heartbeat of account {} is not one of the organisation's ([trust] accounts)",
                                beat.account
                            ),
                            excerpt: String::new(),
                            source: None,
                        });
                    }
                }
                Decoded::Heartbeat(beat) => {
                    out.stats.heartbeats += 1;
                    out.beats.push(beat);
                }
                Decoded::Skipped(kind) => {
                    out.stats.skipped += 1;
                    match kind {
                        Skipped::Insight => out.stats.skipped_insights += 1,
                        Skipped::DigestFile => out.stats.skipped_digests += 1,
                    }
                }
            }
        });
        out
    }

    /// Append the next part's results.
    fn append(&mut self, next: Self) {
        self.stats.add_decoding(next.stats);
        keep_quarantined(&mut self.quarantine, next.quarantine);
        self.beats.extend(next.beats);
        if self.matched.is_empty() {
            self.matched = next.matched;
        } else {
            self.matched.extend(next.matched);
        }
    }
}

/// A claimed window batch, planned and not yet posted: its parts with offline summaries until
/// the model explains the ones in `ask`.
struct PlannedBatch {
    batch: Batch,
    /// The incidents it opens, in key order.
    claims: Vec<Incident>,
    /// Digest first (when `has_digest`), then reminders, then replies.
    deliveries: Vec<Delivery>,
    /// Indices of the parts the model is asked to explain.
    ask: Vec<usize>,
    has_digest: bool,
    /// Where an earlier attempt of this batch put its digest.
    earlier: Option<Parent>,
    /// Events left out below their thresholds (counted once the batch is sent).
    below: u64,
}

/// The engine with its ports and settings.
pub struct Engine<S, M, N, C> {
    pub store: S,
    pub summarizer: M,
    pub notifier: N,
    pub clock: C,
    rules: RulePack,
    settings: Settings,
    stats: Stats,
    quarantine: Vec<Quarantined>,
    flush_on_ingest: bool,
    split: Split,
    ceiling: Ceiling,
    /// Event id digest -> content digest of the events stored by this engine (bounded).
    seen: std::collections::HashMap<u64, u64, foldhash::fast::RandomState>,
    defer_alerts: bool,
    /// When the current flush must stop (the Lambda's time budget); `None`: no limit.
    deadline: Option<tokio::time::Instant>,
    /// Heartbeats decoded and not yet recorded, and the latest event time per source.
    beats: heartbeat::Beats,
}

impl<S, M, N, C> Engine<S, M, N, C> {
    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The organisation's accounts for `not_org_account`, as now known: those configuration
    /// names plus `accounts` (read from AWS Organizations).
    pub fn set_organization_accounts(&mut self, accounts: impl IntoIterator<Item = String>) {
        let configured = self.settings.organization();
        let all: Vec<String> = configured
            .accounts()
            .map(str::to_owned)
            .chain(accounts)
            .collect();
        self.rules
            .set_organization(crate::rules::Organization::new(all));
    }

    /// The rules the engine runs, with the organisation they know.
    pub fn rules(&self) -> &RulePack {
        &self.rules
    }

    /// Whether [`Engine::ingest`] flushes due windows before each event (the default, right
    /// for replay). The Lambda and `consume` turn it off: they flush on a tick or per batch,
    /// so ingest does no summarising or posting beyond immediate alerts.
    #[must_use]
    pub fn with_flush_on_ingest(mut self, flush: bool) -> Self {
        self.flush_on_ingest = flush;
        self
    }

    /// Whether an immediate rule's event is stored as a pending alert for the next flush
    /// (true) instead of posted during ingest (false, the default). The Lambda defers: its
    /// ingest then calls neither Slack nor Bedrock, and the tick posts the alerts first.
    #[must_use]
    pub fn with_deferred_alerts(mut self, defer: bool) -> Self {
        self.defer_alerts = defer;
        self
    }

    /// The flush that follows must end by `deadline` (the Lambda's time budget): batches
    /// not started by then stay due for the next flush, and a post or a summary still
    /// running then is given up (the batch stays due; the summary falls back to the
    /// offline one). `None`: no limit.
    pub fn set_deadline(&mut self, deadline: Option<tokio::time::Instant>) {
        self.deadline = deadline;
    }

    fn out_of_time(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
    }

    /// How a large input is shared out between threads ([`Split::cores`] by default).
    #[must_use]
    pub fn with_split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Quarantined records kept so far (redacted, bounded).
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.quarantine
    }

    /// Hand over the quarantined records kept so far, keeping none: a long-lived engine (the
    /// Lambda) logs them batch by batch instead of holding them.
    pub fn take_quarantined(&mut self) -> Vec<Quarantined> {
        std::mem::take(&mut self.quarantine)
    }
}

impl<S, M, N, C> Engine<S, M, N, C>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    pub fn new(
        rules: RulePack,
        settings: Settings,
        store: S,
        summarizer: M,
        notifier: N,
        clock: C,
    ) -> Self {
        // The organisation from configuration, unless the pack was given one.
        let rules = if rules.organization().is_empty() {
            rules.with_organization(settings.organization())
        } else {
            rules
        };
        Self {
            store,
            summarizer,
            notifier,
            clock,
            rules,
            settings,
            stats: Stats::default(),
            quarantine: Vec::new(),
            flush_on_ingest: true,
            split: Split::cores(),
            ceiling: Ceiling::default(),
            seen: std::collections::HashMap::default(),
            defer_alerts: false,
            deadline: None,
            beats: heartbeat::Beats::default(),
        }
    }

    /// [`Engine::decode`] of one input file: its quarantined records name it (`source`).
    /// A CloudTrail log file's name gives the account of records that name none.
    pub fn decode_from(&mut self, bytes: &[u8], source: &str) -> Vec<BatchEvent> {
        let before = self.quarantine.len();
        let events = self.decode_with(bytes, file_account(source));
        for q in &mut self.quarantine[before..] {
            q.source = Some(source.to_owned());
        }
        events
    }

    /// Decode, match and enrich a buffer. Only matched events are built and returned, in
    /// input order. A large JSON Lines buffer is cut at line ends and its parts decoded on
    /// threads of their own (see [`Split`]): the result is the same as in one piece.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<BatchEvent> {
        self.decode_with(bytes, None)
    }

    fn decode_with(&mut self, bytes: &[u8], file_account: Option<&str>) -> Vec<BatchEvent> {
        let options = DecodeOptions {
            max_inflated: self.settings.input.max_inflated,
            file_account,
        };
        let (rules, settings) = (&self.rules, &self.settings);
        let parts = line_parts(bytes, self.split.threads, self.split.min_part);
        let decoded = if parts.len() <= 1 {
            Decoding::run(rules, settings, |sink| {
                decode_bytes_with(bytes, options, sink);
            })
        } else {
            std::thread::scope(|scope| {
                let workers: Vec<_> = parts
                    .iter()
                    .map(|&part| {
                        scope.spawn(move || {
                            Decoding::run(rules, settings, |sink| {
                                decode_json_lines_with(part, options, sink);
                            })
                        })
                    })
                    .collect();
                let mut all = Decoding::default();
                for worker in workers {
                    match worker.join() {
                        Ok(part) => all.append(part),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                all
            })
        };
        self.stats.add_decoding(decoded.stats);
        for beat in decoded.beats {
            self.beats.heard(beat);
        }
        let before = self.quarantine.len();
        keep_quarantined(&mut self.quarantine, decoded.quarantine);
        let kept = (self.quarantine.len() - before) as u64;
        self.stats.quarantine_omitted += decoded.stats.quarantined.saturating_sub(kept);
        decoded.matched
    }

    /// Store matched events in their windows, in order. Before each, the clock sees the
    /// event's time and (unless turned off) whatever fell due is flushed; immediate rules
    /// post at once. Without a flush on ingest (the Lambda, `consume`), the events go to the
    /// store in one call ([`Store::add_all`]: one write per window rather than per event),
    /// then their alerts go out in order.
    pub async fn ingest(&mut self, events: Vec<BatchEvent>) -> Result<(), EngineError> {
        if self.flush_on_ingest {
            for event in events {
                let (event, digest) = self.arrive(event);
                // Boxed, here and below: a flush and an immediate alert are large futures.
                Box::pin(self.flush_due()).await?;
                let alert = event.rule.immediate.then(|| event.clone());
                let event_id = event.event.id.clone();
                let added = self
                    .store
                    .add(event, self.clock.now())
                    .await
                    .map_err(store_error)?;
                Box::pin(self.added(added, &event_id, digest, alert)).await?;
            }
        } else {
            let mut arrived = Vec::with_capacity(events.len());
            let mut stored = Vec::with_capacity(events.len());
            for event in events {
                let (event, digest) = self.arrive(event);
                let alert = event.rule.immediate.then(|| event.clone());
                arrived.push((event.event.id.clone(), digest, alert));
                stored.push(event);
            }
            let results = self
                .store
                .add_all(stored, self.clock.now())
                .await
                .map_err(store_error)?;
            for ((event_id, digest, alert), added) in arrived.into_iter().zip(results) {
                Box::pin(self.added(added, &event_id, digest, alert)).await?;
            }
        }
        self.record_beats().await
    }

    /// An event arrives: its digest as it came (a redelivered future-dated record is placed at
    /// another arrival time, and must still read as the same record), placed if dated in the
    /// future, seen by the clock and the heartbeats. Marked as alerted in its window only once
    /// its immediate alert went out (`mark_sent` of the alert does it), so a digest never
    /// claims an alert that failed.
    fn arrive(&mut self, mut event: BatchEvent) -> (BatchEvent, u64) {
        let digest = content_digest(&event);
        self.place_if_future(&mut event);
        self.clock.observe(event.event.time);
        self.beats
            .saw_event(&event.event.account, &event.event.region, event.event.time);
        event.already_alerted = false;
        (event, digest)
    }

    /// What the store said of an arrived event: counted as a duplicate, or as matched with
    /// its immediate alert sent or queued.
    async fn added(
        &mut self,
        added: Added,
        event_id: &crate::event::EventId,
        digest: u64,
        alert: Option<BatchEvent>,
    ) -> Result<(), EngineError> {
        let id = fnv(&[event_id.as_str().as_bytes()]);
        match added {
            Added::Duplicate => {
                self.stats.duplicates += 1;
                if let Some(kept) = self.seen.get(&id).filter(|kept| **kept != digest) {
                    self.stats.conflicting_duplicates += 1;
                    tracing::warn!(
                        event_id = %event_id,
                        kept = %format!("{kept:016x}"),
                        dropped = %format!("{digest:016x}"),
                        "Two records share an event id but differ (account, event name, time, source or region): the first was kept."
                    );
                }
            }
            Added::New { late, .. } => {
                if self.seen.len() >= SEEN_KEPT {
                    self.seen.clear();
                }
                self.seen.insert(id, digest);
                self.stats.matched += 1;
                self.stats.late += u64::from(late);
                match alert {
                    Some(alert) if self.defer_alerts => self.queue_alert(alert).await?,
                    Some(alert) => {
                        self.send_immediate(alert).await?;
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// An event dated more than [`FUTURE_BOUND`] past the wall clock (a broken or hostile
    /// record: year 9999) would make every later event late, and its window would never come
    /// due. It is placed at the engine's current time instead (its arrival in the Lambda, the
    /// latest event time in replay), and marked so on the event.
    fn place_if_future(&mut self, event: &mut BatchEvent) {
        let Some(wall) = self.clock.wall() else {
            return;
        };
        let Some(bound) = wall.checked_add_signed(FUTURE_BOUND) else {
            return;
        };
        if event.event.time <= bound {
            return;
        }
        let at = self
            .clock
            .current()
            .filter(|now| *now <= bound)
            .unwrap_or(wall);
        let note = format!(
            "dated {}, in the future: placed at {}",
            event
                .event
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        event.event.oddities.push(note.into());
        event.event.time = at;
        event.placed = true;
        self.stats.future_dated += 1;
    }

    /// Decode and ingest a buffer.
    pub async fn ingest_bytes(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let events = self.decode(bytes);
        self.ingest(events).await
    }

    /// Send every batch due now. Returns how many went out.
    pub async fn flush_due(&mut self) -> Result<usize, EngineError> {
        let now = self.clock.now();
        let sent = self.flush_at(now).await?;
        Ok(sent + self.post_notices(now).await?)
    }

    /// Send everything still pending, as if time ran on (end of a replay).
    pub async fn flush_all(&mut self) -> Result<usize, EngineError> {
        self.clock.observe(DateTime::<Utc>::MAX_UTC);
        self.flush_at(DateTime::<Utc>::MAX_UTC).await
    }

    async fn flush_at(&mut self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let mut sent = self.post_alerts(now).await?;
        let due = self.store.due(now).await.map_err(store_error)?;
        let total = due.len();
        // A round claims and plans batches of distinct accounts, up to one model call's worth,
        // explains them (one call per route), then posts them. A batch of an account already
        // in the round waits for the next one: it reads the incidents that the earlier batch
        // opens. A claim is held for one round of calls, well within its lease.
        let round = self.settings.summary.max_batches_per_call.max(1);
        let mut planned: Vec<PlannedBatch> = Vec::with_capacity(round);
        for (started, id) in due.iter().enumerate() {
            if self.out_of_time() {
                self.stats.deferred += (total - started) as u64;
                tracing::warn!(
                    left = total - started,
                    "Flush time budget ran out; the rest stays due."
                );
                break;
            }
            if planned.len() >= round || planned.iter().any(|p| p.batch.id.account == id.account) {
                self.explain(&mut planned).await;
                sent += self.post_planned(std::mem::take(&mut planned), now).await?;
            }
            let Some(claimed) = self.store.claim(id, now).await.map_err(store_error)? else {
                continue;
            };
            let mut batch = Batch {
                account_name: self.account_name(id),
                id: claimed.id,
                kind: claimed.kind,
                window_end: claimed.window_end,
                events: claimed.events,
            };
            // Counted once the batch is done: a batch given back and claimed again is counted
            // on the attempt that sends it.
            let open = self.open_threshold_incidents(&batch.events, now).await?;
            let below =
                thresholds::apply(&mut batch.events, &|e| open.contains(&IncidentKey::of(e)));
            if batch.events.is_empty() {
                // Nothing crossed its threshold (or, from a store, every event expired unsent):
                // the window is done, with nothing to post.
                Box::pin(self.close_quiet(&batch, now)).await?;
                self.stats.below_threshold += below;
                continue;
            }
            // Boxed: planning reads incidents and builds every part's offline text.
            if let Some(mut plan) = Box::pin(self.plan_batch(batch, now)).await? {
                plan.below = below;
                planned.push(plan);
            }
        }
        self.explain(&mut planned).await;
        sent += self.post_planned(planned, now).await?;
        sent += self.post_held(now).await?;
        Ok(sent)
    }

    /// Post planned batches in order; how many went out.
    async fn post_planned(
        &mut self,
        planned: Vec<PlannedBatch>,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let mut sent = 0;
        for plan in planned {
            let below = plan.below;
            // Boxed: a batch's posting is the largest state machine; every caller's future
            // would otherwise carry it.
            if Box::pin(self.flush_batch(plan, now)).await? {
                self.stats.below_threshold += below;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// The incidents of `events`' threshold groups that are still open for them: a group that
    /// fired before goes on under its incident, below the count or not.
    async fn open_threshold_incidents(
        &self,
        events: &[BatchEvent],
        now: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<IncidentKey>, EngineError> {
        let mut keys: Vec<IncidentKey> = events
            .iter()
            .filter(|e| e.rule.threshold.is_some())
            .map(IncidentKey::of)
            .collect();
        if keys.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        keys.sort();
        keys.dedup();
        let policy = self.settings.incidents;
        let known = self.store.incidents(&keys).await.map_err(store_error)?;
        Ok(known
            .into_iter()
            .filter(|incident| {
                !incident.is_abandoned(now, &policy)
                    && events.iter().any(|e| {
                        IncidentKey::of(e) == incident.key
                            && incident.is_open_at(e.event.time, &policy.for_rule(&e.rule))
                    })
            })
            .map(|incident| incident.key)
            .collect())
    }

    /// Mark a claimed batch sent that has nothing left to post (its events all stayed below
    /// their thresholds): its audit item lists no events.
    async fn close_quiet(&mut self, batch: &Batch, now: DateTime<Utc>) -> Result<(), EngineError> {
        let audit = merged_audit(batch, &[], &[], self.settings.locale);
        self.store
            .mark_sent(&batch.id, &audit, now)
            .await
            .map_err(store_error)
    }

    /// Plan a claimed window batch as incidents: a digest of the incidents it opens, a
    /// reminder or a thread reply for each one it continues (see [`crate::incident`]), each
    /// part with its offline summary. `None`: an incident it continues has no first message
    /// yet; the batch is given back to wait for it.
    async fn plan_batch(
        &mut self,
        batch: Batch,
        now: DateTime<Utc>,
    ) -> Result<Option<PlannedBatch>, EngineError> {
        let id = batch.id.clone();
        let mut keys: Vec<IncidentKey> = batch
            .events
            .iter()
            .filter(|e| !e.already_alerted)
            .map(IncidentKey::of)
            .collect();
        keys.sort();
        keys.dedup();
        let known: BTreeMap<IncidentKey, Incident> = self
            .store
            .incidents(&keys)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|incident| {
                // A claim whose batch never posted is taken over, not waited for.
                let incident = if incident.is_abandoned(now, &self.settings.incidents) {
                    tracing::warn!(incident = %incident.id, opener = %incident.opener(), "Incident claimed but never posted; taking it over.");
                    incident.closed()
                } else {
                    incident
                };
                (incident.key.clone(), incident)
            })
            .collect();
        let policy = self.settings.incidents;
        let mut plan = incident::plan(batch.events.clone(), &known, &id.key(), &policy);
        if plan.waiting {
            self.retry_later(&id, now, "an incident's first message is not posted yet")
                .await?;
            return Ok(None);
        }
        // Where an earlier attempt of this batch put its digest (its claims say), so that a
        // retry posts it to the same place, where the destination finds it.
        let earlier = known
            .values()
            .find(|s| s.opener() == id.key())
            .map(|s| s.parent.clone());
        // Claimed in key order, so two flushers opening the same incidents never hold one
        // each while waiting on the other's.
        let mut claims = std::mem::take(&mut plan.opened);
        claims.sort_by(|a, b| a.key.cmp(&b.key));
        let has_digest = !plan.digest.is_empty();
        let (deliveries, ask) = self.deliveries(&batch, plan);
        Ok(Some(PlannedBatch {
            batch,
            claims,
            deliveries,
            ask,
            has_digest,
            earlier,
            below: 0,
        }))
    }

    /// The model's explanations of the planned parts that ask for one: the parts bound for the
    /// same channels share a request (the summarizer splits it at its caps); parts for other
    /// channels are never in the same prompt. A part the model could not explain keeps its
    /// offline text, marked as a fallback (counted).
    async fn explain(&mut self, planned: &mut [PlannedBatch]) {
        let locale = self.settings.locale;
        let mut routes: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        for (p, plan) in planned.iter().enumerate() {
            for &d in &plan.ask {
                let delivery = &plan.deliveries[d];
                if delivery.batch.events.len() < self.settings.summary.model_min_events {
                    continue;
                }
                routes
                    .entry(self.routes_from(delivery))
                    .or_default()
                    .push((p, d));
            }
        }
        for parts in routes.into_values() {
            let batches: Vec<&Batch> = parts
                .iter()
                .map(|&(p, d)| &planned[p].deliveries[d].batch)
                .collect();
            let summarized = self.summarizer.summarize_many(&batches, locale);
            let results: Vec<Result<crate::summary::Summary, String>> = match self.deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, summarized).await {
                    Ok(results) => results
                        .into_iter()
                        .map(|r| r.map_err(|err| err.to_string()))
                        .collect(),
                    Err(_) => vec![Err(BUDGET_SPENT.to_owned()); parts.len()],
                },
                None => summarized
                    .await
                    .into_iter()
                    .map(|r| r.map_err(|err| err.to_string()))
                    .collect(),
            };
            for (&(p, d), result) in parts.iter().zip(results) {
                let delivery = &mut planned[p].deliveries[d];
                let summary = match result {
                    Ok(summary) => summary,
                    Err(reason) => {
                        self.stats.fallbacks += 1;
                        let mut summary = delivery.summary.clone();
                        summary.source = SummarySource::Fallback { reason };
                        summary
                    }
                };
                delivery.set_summary(summary);
            }
        }
    }

    /// Every channel set `delivery` may go to, at its severity or any the model may raise it
    /// to, as one key: batches that share it may share a prompt whatever the model answers.
    fn routes_from(&self, delivery: &Delivery) -> String {
        [Severity::Green, Severity::Yellow, Severity::Red]
            .into_iter()
            .filter(|severity| *severity >= delivery.severity)
            .map(|severity| {
                self.settings
                    .slack
                    .routes
                    .channels(&delivery.batch.id.account, severity)
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join("|")
    }

    /// Post a planned window batch. The incidents it opens are claimed in the store before
    /// anything is posted, so a racing flusher waits for their first message instead of
    /// posting its own. On any failure the whole batch stays due; a retry plans the same
    /// parts, under the same keys.
    async fn flush_batch(
        &mut self,
        planned: PlannedBatch,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let PlannedBatch {
            batch,
            mut claims,
            mut deliveries,
            has_digest,
            earlier,
            ..
        } = planned;
        let id = batch.id.clone();
        if has_digest {
            let placement = match &earlier {
                Some(parent) if parent.batch_key != batch.id.key() => {
                    Placement::Folded(parent.clone())
                }
                Some(_) => Placement::Top,
                None => {
                    let route = self.route(&deliveries[0]);
                    self.ceiling.place(
                        &route,
                        batch.window_end,
                        self.settings.incidents.ceiling_per_hour,
                    )
                }
            };
            deliveries[0].placement = placement;
        }
        if let Some(Placement::Folded(parent)) = deliveries.first().map(|d| &d.placement) {
            for incident in &mut claims {
                incident.parent.clone_from(parent);
            }
        }
        let held = if self.notifier.threads() {
            None
        } else {
            held::unthread(&mut deliveries);
            Some(
                self.hold(&id.account, &id.key(), &mut deliveries, now)
                    .await?,
            )
        };
        let mut opened = Vec::with_capacity(claims.len());
        for mut incident in claims {
            if !incident.posted {
                incident.claimed_at = Some(now);
            }
            if !self
                .store
                .save_incident(&incident, now)
                .await
                .map_err(store_error)?
            {
                self.retry_later(&id, now, "another flusher opened the same incident")
                    .await?;
                return Ok(false);
            }
            incident.version += 1;
            opened.push(incident);
        }
        let mut receipts = Vec::with_capacity(deliveries.len());
        for delivery in &deliveries {
            match self.post(delivery).await {
                Ok(receipt) => receipts.push(receipt),
                Err(reason) => {
                    self.retry_later(&id, now, &reason).await?;
                    return Ok(false);
                }
            }
        }
        if let Some(plan) = held {
            self.save_held(plan, &id.key(), &deliveries, now).await?;
        }
        self.record_flush(&batch, opened, &deliveries, &receipts, now)
            .await?;
        Ok(true)
    }

    /// The parts of a planned batch, in posting order, with their offline summaries: the
    /// digest (so that the incidents it opens have their first message before anything
    /// replies), reminders, replies. Also the parts the model is to explain: the digest and
    /// the reminders; a reply lists events under a message that already explained them.
    fn deliveries(&self, batch: &Batch, plan: incident::Plan) -> (Vec<Delivery>, Vec<usize>) {
        let locale = self.settings.locale;
        let offline = |events: Vec<BatchEvent>| {
            let part = Batch {
                events,
                ..batch.clone()
            };
            let summary = offline_summary(&part, locale);
            Delivery::new(part, summary, locale)
        };
        let mut deliveries = Vec::new();
        let mut ask = Vec::new();
        if !plan.digest.is_empty() {
            let mut delivery = offline(plan.digest);
            delivery.alerted_elsewhere = plan.alerted.len();
            ask.push(deliveries.len());
            deliveries.push(delivery);
        }
        for thread in plan.reminders {
            ask.push(deliveries.len());
            deliveries.push(
                offline(thread.events).placed(Placement::Reminder(Box::new(thread.incident))),
            );
        }
        for thread in plan.replies {
            deliveries
                .push(offline(thread.events).placed(Placement::Reply(Box::new(thread.incident))));
        }
        (deliveries, ask)
    }

    /// Everything went out: the incidents move on, the batch is marked sent with its audit.
    async fn record_flush(
        &mut self,
        batch: &Batch,
        opened: Vec<Incident>,
        deliveries: &[Delivery],
        receipts: &[Receipt],
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        // The first message of the incidents this batch opened: its digest, or for a digest
        // folded past the ceiling, the hour's overflow post whose thread it went into.
        let first_message =
            deliveries
                .first()
                .zip(receipts.first())
                .and_then(|(digest, receipt)| match &digest.placement {
                    Placement::Top | Placement::Overflow(_) => Some(Parent {
                        batch_key: digest.key(),
                        posts: receipt.posts.clone(),
                    }),
                    Placement::Folded(parent) => Some(parent.clone()),
                    Placement::Reminder(_)
                    | Placement::Reply(_)
                    | Placement::Held(_)
                    | Placement::Continuing
                    | Placement::Notice => None,
                });
        for mut incident in opened {
            incident.posted = true;
            if let Some(parent) = &first_message {
                incident.parent.clone_from(parent);
            }
            self.record(incident, now).await?;
        }
        for (delivery, receipt) in deliveries.iter().zip(receipts) {
            let route = self.route(delivery);
            let at = delivery.batch.window_end;
            match &delivery.placement {
                Placement::Top
                | Placement::Reminder(_)
                | Placement::Continuing
                | Placement::Notice => {
                    self.ceiling.posted(&route, at);
                }
                Placement::Overflow(_) => {
                    self.ceiling.posted(&route, at);
                    self.ceiling.overflowed(
                        &route,
                        at,
                        Parent {
                            batch_key: delivery.key(),
                            posts: receipt.posts.clone(),
                        },
                    );
                }
                Placement::Reply(_) | Placement::Folded(_) | Placement::Held(_) => {}
            }
        }
        for delivery in deliveries {
            if let Some(incident) = delivery.incident() {
                self.record(incident.clone(), now).await?;
            }
        }
        let audit = merged_audit(batch, deliveries, receipts, self.settings.locale);
        self.store
            .mark_sent(&batch.id, &audit, self.clock.now())
            .await
            .map_err(store_error)?;
        self.stats.batches += 1;
        for delivery in deliveries {
            match delivery.placement {
                Placement::Reply(_) => self.stats.replies += 1,
                // Without threads, a folded digest is posted as it comes, top level.
                Placement::Folded(_) if !delivery.threaded => {
                    self.stats.top_level += 1;
                    self.stats.folded += 1;
                }
                Placement::Folded(_) => {
                    self.stats.replies += 1;
                    self.stats.folded += 1;
                }
                Placement::Held(_) => self.stats.held += 1,
                Placement::Reminder(_) => {
                    self.stats.reminders += 1;
                    self.stats.top_level += 1;
                }
                Placement::Top
                | Placement::Overflow(_)
                | Placement::Continuing
                | Placement::Notice => {
                    self.stats.top_level += 1;
                }
            }
        }
        Ok(())
    }

    /// Write an incident's new state. Another writer may have moved it on meanwhile (a
    /// racing flusher's reply): then its counts are merged into what is stored.
    async fn record(&mut self, incident: Incident, now: DateTime<Utc>) -> Result<(), EngineError> {
        let mut next = incident;
        for _ in 0..5 {
            if self
                .store
                .save_incident(&next, now)
                .await
                .map_err(store_error)?
            {
                return Ok(());
            }
            let stored = self
                .store
                .incidents(std::slice::from_ref(&next.key))
                .await
                .map_err(store_error)?;
            let Some(stored) = stored.into_iter().next() else {
                next.version = 0;
                continue;
            };
            next = stored.merged(&next);
        }
        tracing::warn!(incident = %next.id, "Incident state kept changing under this flusher; its counts may be behind.");
        Ok(())
    }

    async fn retry_later(
        &mut self,
        id: &BatchId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), EngineError> {
        let retry_at = now
            .checked_add_signed(self.settings.window.grace)
            .unwrap_or(now);
        self.store
            .release(id, retry_at, reason)
            .await
            .map_err(store_error)
    }

    /// Post `event` alone, at once, unless its incident is open. Returns whether it posted.
    async fn send_immediate(&mut self, mut event: BatchEvent) -> Result<bool, EngineError> {
        event.already_alerted = false;
        let policy = self.settings.incidents.for_rule(&event.rule);
        let key = IncidentKey::of(&event);
        let known = self
            .store
            .incidents(std::slice::from_ref(&key))
            .await
            .map_err(store_error)?
            .into_iter()
            .next();
        if known
            .as_ref()
            .is_some_and(|open| open.is_open_at(event.event.time, &policy))
        {
            // The incident is already open: this event goes in its thread with its window.
            self.stats.immediate_in_thread += 1;
            return Ok(false);
        }
        let window = self.settings.window;
        let start = window.start_of(event.event.time);
        let id = BatchId {
            account: event.event.account.clone(),
            window_start: start,
            seq: 0,
            event: Some(event.event.id.to_string()),
            claim: None,
        };
        let mut incident = Incident::open(key, std::slice::from_ref(&event), &id.key(), &policy);
        incident.version = known.map_or(0, |closed| closed.version);
        event.incident = Some(incident.id.clone());
        let batch = Batch {
            account_name: self.account_name(&id),
            id,
            kind: BatchKind::Immediate,
            window_end: window.end_of(start),
            events: vec![event],
        };
        let now = self.clock.now();
        // Claimed before posting, as a window batch claims the incidents it opens: of two
        // flushers alerting on first events of one incident at once, one posts; the other's
        // event goes in its thread with its window.
        incident.claimed_at = Some(now);
        if !self
            .store
            .save_incident(&incident, now)
            .await
            .map_err(store_error)?
        {
            self.stats.immediate_in_thread += 1;
            return Ok(false);
        }
        incident.version += 1;
        // Posted at once with the offline text; the model's explanation follows as an update
        // of the same message (nothing, where the destination cannot edit).
        let delivery = self.prepare(batch, false).await;
        let Ok(receipt) = self.post(&delivery).await else {
            // Not marked alerted: the event goes out with its window instead, which opens the
            // incident itself once this claim is given back (not waiting for it to time out).
            let released = incident.closed();
            let _ = self
                .store
                .save_incident(&released, now)
                .await
                .map_err(store_error)?;
            return Ok(false);
        };
        let explained = self.prepare(delivery.batch.clone(), true).await;
        let delivery = match explained.summary.source {
            SummarySource::Model { .. } => match self.notifier.update(&receipt, &explained).await {
                Ok(()) => explained,
                Err(err) => {
                    tracing::warn!(batch = %delivery.key(), error = %error_chain(&err), "The alert went out; its explanation could not be added.");
                    delivery
                }
            },
            // Offline, or the model failed: the message as posted says it all.
            SummarySource::Offline | SummarySource::Fallback { .. } => {
                let mut delivery = delivery;
                delivery.summary.source = explained.summary.source;
                delivery
            }
        };
        let audit = delivery.audit(&receipt);
        self.store
            .mark_sent(&delivery.batch.id, &audit, self.clock.now())
            .await
            .map_err(store_error)?;
        incident.posted = true;
        incident.parent.posts = receipt.posts;
        self.record(incident, now).await?;
        let route = self.route(&delivery);
        self.ceiling.posted(&route, delivery.batch.window_end);
        self.stats.batches += 1;
        self.stats.immediate += 1;
        self.stats.top_level += 1;
        Ok(true)
    }

    /// The channels a delivery goes to, as one key (`""` when nothing routes: replay's one
    /// output counts as one channel).
    fn route(&self, delivery: &Delivery) -> String {
        self.settings
            .slack
            .routes
            .channels(&delivery.batch.id.account, delivery.severity)
            .join(",")
    }

    fn account_name(&self, id: &BatchId) -> Option<String> {
        self.settings.accounts.get(&id.account).map(str::to_owned)
    }

    /// The batch with its summary: the summarizer's when `model` (the offline templates when
    /// it fails, counted), else the offline templates.
    async fn prepare(&mut self, batch: Batch, model: bool) -> Delivery {
        let locale = self.settings.locale;
        // A batch this small is said completely by the offline summary: no model call.
        let model = model && batch.events.len() >= self.settings.summary.model_min_events;
        let summary = if model {
            let summarized = self.summarizer.summarize(&batch, locale);
            let outcome = match self.deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, summarized).await {
                    Ok(outcome) => outcome.map_err(|err| err.to_string()),
                    Err(_) => Err(BUDGET_SPENT.to_owned()),
                },
                None => summarized.await.map_err(|err| err.to_string()),
            };
            match outcome {
                Ok(summary) => summary,
                Err(reason) => {
                    self.stats.fallbacks += 1;
                    let mut summary = offline_summary(&batch, locale);
                    summary.source = SummarySource::Fallback { reason };
                    summary
                }
            }
        } else {
            offline_summary(&batch, locale)
        };
        Delivery::new(batch, summary, locale)
    }

    /// Deliver; when the notifier failed (warned and counted), why, with its causes.
    async fn post(&mut self, delivery: &Delivery) -> Result<Receipt, String> {
        let delivered = self.notifier.deliver(delivery);
        let outcome = match self.deadline {
            Some(deadline) => {
                let Ok(outcome) = tokio::time::timeout_at(deadline, delivered).await else {
                    self.stats.send_failures += 1;
                    tracing::warn!(batch = %delivery.key(), "Flush time budget ran out while posting; batch stays due.");
                    return Err(BUDGET_SPENT.to_owned());
                };
                outcome
            }
            None => delivered.await,
        };
        match outcome {
            Ok(receipt) => Ok(receipt),
            Err(err) => {
                self.stats.send_failures += 1;
                let permanent = !err.is_retryable();
                self.stats.send_failures_permanent += u64::from(permanent);
                tracing::warn!(
                    batch = %delivery.key(),
                    permanent,
                    error = %error_chain(&err),
                    "Delivery failed; batch stays due."
                );
                Err(error_chain(&err))
            }
        }
    }
}

/// The audit record of a flushed window batch, under the batch's own key: its first
/// delivery's line, with the events of every part (digest, reminders, replies). A batch whose
/// events were all posted as immediate alerts already records an empty line.
fn merged_audit(
    batch: &Batch,
    deliveries: &[Delivery],
    receipts: &[Receipt],
    locale: crate::summary::Locale,
) -> AuditLine {
    let Some((first, rest)) = deliveries.split_first() else {
        let empty = Batch {
            events: Vec::new(),
            ..batch.clone()
        };
        return Delivery::new(empty.clone(), offline_summary(&empty, locale), locale)
            .audit(&Receipt::default());
    };
    let mut line = first.audit(receipts.first().unwrap_or(&Receipt::default()));
    line.batch_id = batch.id.key();
    for delivery in rest {
        line.events
            .extend(delivery.audit(&Receipt::default()).events);
        line.severity = line.severity.max(delivery.severity);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{CollectingNotifier, MemoryStore};
    use crate::summary::OfflineSummarizer;
    use crate::window::EventTimeClock;

    fn engine(
        split: Split,
    ) -> Engine<MemoryStore, OfflineSummarizer, CollectingNotifier, EventTimeClock> {
        Engine::new(
            RulePack::builtin(),
            Settings::default(),
            MemoryStore::default(),
            OfflineSummarizer,
            CollectingNotifier::default(),
            EventTimeClock::default(),
        )
        .with_split(split)
    }

    /// Every JSON Lines fixture (planted secrets and malformed lines included), one after
    /// another, `times` over.
    fn fixture_lines(times: usize) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        let mut one = Vec::new();
        for file in files {
            let Ok(bytes) = std::fs::read(&file) else {
                panic!("cannot read {}", file.display());
            };
            one.extend_from_slice(&bytes);
            if !one.ends_with(b"\n") {
                one.push(b'\n');
            }
        }
        one.repeat(times)
    }

    /// A batch continuing an incident whose opener claimed it but never posted waits for a
    /// while, then takes the incident over and posts it top level: nothing waits for ever.
    #[tokio::test]
    async fn an_abandoned_incident_claim_is_taken_over() {
        use crate::enrich::{PrincipalKind, Tool};
        use crate::incident::{Incident, IncidentKey, IncidentPolicy};
        use crate::severity::Severity;
        use crate::testing::{actor, batch_event, event, rule, t0};

        let rl = rule("r", "Rule", None, Severity::Yellow);
        let who = actor("alice", PrincipalKind::Person, Tool::Console);
        let first = batch_event(event("e0", 0, "us-east-1", "CreateUser", &[]), &rl, &who);
        let later = batch_event(event("e1", 60, "us-east-1", "CreateUser", &[]), &rl, &who);
        // The window is due 7 minutes after t0; the claim is abandoned 15 minutes after it.
        for (wait_minutes, waits) in [(10, true), (20, false)] {
            let mut engine = engine(Split::SERIAL).with_flush_on_ingest(false);
            let policy = IncidentPolicy::default();
            let mut claim = Incident::open(
                IncidentKey::of(&first),
                std::slice::from_ref(&first),
                "other-batch",
                &policy,
            );
            claim.claimed_at = Some(t0());
            assert!(
                engine
                    .store
                    .save_incident(&claim, t0())
                    .await
                    .unwrap_or(false)
            );
            engine
                .ingest(vec![later.clone()])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let now = t0() + chrono::TimeDelta::minutes(wait_minutes);
            engine.flush_at(now).await.unwrap_or_else(|e| panic!("{e}"));
            let sent = engine.notifier.deliveries();
            if waits {
                assert!(sent.is_empty(), "posted while the claim is fresh");
                assert_eq!(engine.store.unsent(), 1, "the batch waits");
            } else {
                assert_eq!(sent.len(), 1, "{sent:?}");
                assert_eq!(sent[0].placement, crate::delivery::Placement::Top);
                let stored = engine.store.all_incidents();
                assert!(stored[0].posted && stored[0].opener() != "other-batch");
            }
        }
    }

    /// Fails the first thread reply it is given, delivers everything else.
    #[derive(Default)]
    struct FailFirstReply {
        failed: std::sync::atomic::AtomicBool,
        inner: CollectingNotifier,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reply refused")]
    struct Refused;

    impl Retryable for Refused {
        fn is_retryable(&self) -> bool {
            true
        }
    }

    impl Notifier for FailFirstReply {
        type Error = Refused;

        async fn deliver(&self, delivery: &Delivery) -> Result<crate::delivery::Receipt, Refused> {
            let reply = delivery.thread_of().is_some();
            if reply && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(Refused);
            }
            let _ = self.inner.deliver(delivery).await;
            Ok(crate::delivery::Receipt::default())
        }
    }

    /// A batch whose digest went out top level and whose reply then failed is retried with
    /// its digest top level again (where Slack finds it), even though the hour's ceiling
    /// filled meanwhile: a second attempt never folds it into the overflow thread.
    #[tokio::test]
    async fn a_retried_digest_keeps_the_place_its_first_attempt_gave_it() {
        use crate::enrich::{PrincipalKind, Tool};
        use crate::incident::{Incident, IncidentKey, IncidentPolicy};
        use crate::severity::Severity;
        use crate::testing::{actor, batch_event, event, rule, t0};

        let rl = rule("r", "Rule", None, Severity::Yellow);
        let alice = actor("alice", PrincipalKind::Person, Tool::Console);
        let bob = actor("bob", PrincipalKind::Person, Tool::Console);
        let before = batch_event(
            event("e0", -600, "us-east-1", "CreateUser", &[]),
            &rl,
            &alice,
        );
        let going_on = batch_event(event("e1", 60, "us-east-1", "CreateUser", &[]), &rl, &alice);
        let new = batch_event(event("e2", 90, "us-east-1", "CreateUser", &[]), &rl, &bob);
        let mut settings = Settings::default();
        settings.incidents.ceiling_per_hour = 1;
        let mut engine = Engine::new(
            RulePack::builtin(),
            settings.clone(),
            MemoryStore::new(settings.window),
            OfflineSummarizer,
            FailFirstReply::default(),
            EventTimeClock::default(),
        )
        .with_flush_on_ingest(false);
        // Alice's incident opened earlier and is posted: her event continues it (a reply).
        let mut open = Incident::open(
            IncidentKey::of(&before),
            std::slice::from_ref(&before),
            "earlier-batch",
            &IncidentPolicy::default(),
        );
        open.posted = true;
        assert!(
            engine
                .store
                .save_incident(&open, t0())
                .await
                .unwrap_or(false)
        );
        engine
            .ingest(vec![going_on, new])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        engine
            .flush_at(t0() + chrono::TimeDelta::minutes(7))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(engine.stats().send_failures, 1, "the reply failed");
        // Another top-level post fills the hour's ceiling of one.
        engine
            .ceiling
            .posted("", t0() + chrono::TimeDelta::minutes(8));
        engine
            .flush_at(t0() + chrono::TimeDelta::minutes(10))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let sent = engine.notifier.inner.deliveries();
        let digests: Vec<&Delivery> = sent.iter().filter(|d| d.thread_of().is_none()).collect();
        assert_eq!(
            digests.len(),
            2,
            "posted, then posted again on the retry: {sent:?}"
        );
        assert!(
            digests.iter().all(|d| d.placement == Placement::Top),
            "{:?}",
            digests.iter().map(|d| &d.placement).collect::<Vec<_>>()
        );
        assert_eq!(engine.store.unsent(), 0);
    }

    #[test]
    fn a_large_input_decoded_in_parts_gives_what_it_gives_in_one_piece() {
        let input = fixture_lines(6);
        let split = Split {
            threads: 4,
            min_part: input.len() / 5,
        };
        assert_eq!(line_parts(&input, split.threads, split.min_part).len(), 4);

        let mut serial = engine(Split::SERIAL);
        let mut parallel = engine(split);
        let expected = serial.decode(&input);
        let got = parallel.decode(&input);
        assert!(!expected.is_empty() && serial.stats().quarantined > 0);
        assert_eq!(got, expected);
        assert_eq!(parallel.stats(), serial.stats());
        assert_eq!(parallel.quarantined(), serial.quarantined());
    }

    #[test]
    fn quarantine_kept_across_parts_is_the_first_in_input_order() {
        let mut input = Vec::new();
        for n in 0..QUARANTINE_KEPT + 500 {
            input.extend_from_slice(format!("{{\"eventID\": \"e-{n}\", \"broken\": \n").as_bytes());
        }
        let mut parallel = engine(Split {
            threads: 3,
            min_part: 1,
        });
        assert!(parallel.decode(&input).is_empty());
        let stats = parallel.stats();
        assert_eq!(
            stats.quarantined,
            u64::try_from(QUARANTINE_KEPT + 500).unwrap_or(0)
        );
        assert_eq!(stats.read, stats.quarantined);
        let kept = parallel.quarantined();
        assert_eq!(kept.len(), QUARANTINE_KEPT);
        assert!(
            kept[0].excerpt.contains("\"eventID\":\"e-0\""),
            "{:?}",
            kept[0]
        );
        let last = format!("\"eventID\":\"e-{}\"", QUARANTINE_KEPT - 1);
        assert!(kept[QUARANTINE_KEPT - 1].excerpt.contains(&last));
    }
}
