//! The engine: decode -> rules -> enrich -> windows -> summary -> render -> notify, over ports.
//!
//! Generic over [`Store`], [`Summarizer`], [`Notifier`] and [`Clock`]; it does no I/O of its
//! own. Replay, the Lambda and `consume` differ only in the adapters they hand it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::enrich::{AgentMemo, classify_with};
use crate::event::{Decoded, Quarantined, decode_bytes};
use crate::ports::{Delivery, Notifier, Retryable, Store};
use crate::render::audit::audit_line;
use crate::render::slack::render_batch;
use crate::rules::{RulePack, Verdict};
use crate::summary::{Summarizer, SummarySource, offline_summary};
use crate::window::{Added, Batch, BatchEvent, BatchId, BatchKind, Clock};

/// Most quarantined records kept for inspection (all are counted).
const QUARANTINE_KEPT: usize = 10_000;

/// Counters for one run. `read = decoded + quarantined`;
/// `decoded = matched + ignored + unmatched + duplicates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub read: u64,
    pub decoded: u64,
    pub quarantined: u64,
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
}

impl<S, M, N, C> Engine<S, M, N, C> {
    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether [`Engine::ingest`] flushes due windows before each event (the default, right
    /// for replay). The Lambda and `consume` turn it off: they flush on a tick or per batch,
    /// so ingest does no summarising or posting beyond immediate alerts.
    #[must_use]
    pub fn with_flush_on_ingest(mut self, flush: bool) -> Self {
        self.flush_on_ingest = flush;
        self
    }

    /// Quarantined records kept so far (redacted, bounded).
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.quarantine
    }
}

impl<S, M, N, C> Engine<S, M, N, C>
where
    S: Store,
    M: Summarizer,
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
        }
    }

    /// Decode, match and enrich a buffer. Only matched events are built and returned.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<BatchEvent> {
        let mut matched = Vec::new();
        let stats = &mut self.stats;
        let quarantine = &mut self.quarantine;
        let rules = &self.rules;
        let actors = &self.settings.actors;
        let mut redactions = crate::enrich::redact::RedactCache::default();
        let mut agents = AgentMemo::default();
        decode_bytes(bytes, &mut |decoded| {
            stats.read += 1;
            match decoded {
                Decoded::Record(record) => {
                    stats.decoded += 1;
                    match rules.evaluate(&record.facts()) {
                        Verdict::Matched(rule) => {
                            let event = record.to_event_with(&mut redactions);
                            let actor = classify_with(&event, actors, &mut agents);
                            matched.push(BatchEvent {
                                event,
                                rule,
                                actor,
                                already_alerted: false,
                            });
                        }
                        Verdict::Ignored(_) => stats.ignored += 1,
                        Verdict::Unmatched => stats.unmatched += 1,
                    }
                }
                Decoded::Quarantined(q) => {
                    stats.quarantined += 1;
                    if quarantine.len() < QUARANTINE_KEPT {
                        quarantine.push(q);
                    }
                }
            }
        });
        matched
    }

    /// Store matched events in their windows, in order. Before each, the clock sees the
    /// event's time and (unless turned off) whatever fell due is flushed; immediate rules
    /// post at once.
    pub async fn ingest(&mut self, events: Vec<BatchEvent>) -> Result<(), EngineError> {
        for mut event in events {
            self.clock.observe(event.event.time);
            if self.flush_on_ingest {
                self.flush_due().await?;
            }
            // Marked as alerted in its window only once the immediate alert went out
            // (`mark_sent` of the alert does it), so a digest never claims an alert that failed.
            event.already_alerted = false;
            let alert = event.rule.immediate.then(|| event.clone());
            match self
                .store
                .add(event, self.clock.now())
                .await
                .map_err(store_error)?
            {
                Added::Duplicate => self.stats.duplicates += 1,
                Added::New { late, .. } => {
                    self.stats.matched += 1;
                    self.stats.late += u64::from(late);
                    if let Some(alert) = alert {
                        self.send_immediate(alert).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Decode and ingest a buffer.
    pub async fn ingest_bytes(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let events = self.decode(bytes);
        self.ingest(events).await
    }

    /// Send every batch due now. Returns how many went out.
    pub async fn flush_due(&mut self) -> Result<usize, EngineError> {
        let now = self.clock.now();
        self.flush_at(now).await
    }

    /// Send everything still pending, as if time ran on (end of a replay).
    pub async fn flush_all(&mut self) -> Result<usize, EngineError> {
        self.clock.observe(DateTime::<Utc>::MAX_UTC);
        self.flush_at(DateTime::<Utc>::MAX_UTC).await
    }

    async fn flush_at(&mut self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let due = self.store.due(now).await.map_err(store_error)?;
        let mut sent = 0;
        for id in due {
            let Some(claimed) = self.store.claim(&id, now).await.map_err(store_error)? else {
                continue;
            };
            let batch = Batch {
                account_name: self.account_name(&id),
                id: claimed.id,
                kind: claimed.kind,
                window_end: claimed.window_end,
                events: claimed.events,
            };
            if self.send(batch, now).await? {
                sent += 1;
            }
        }
        Ok(sent)
    }

    async fn send_immediate(&mut self, mut event: BatchEvent) -> Result<(), EngineError> {
        event.already_alerted = false;
        let window = self.settings.window;
        let start = window.start_of(event.event.time);
        let id = BatchId {
            account: event.event.account.clone(),
            window_start: start,
            seq: 0,
            event: Some(event.event.id.to_string()),
        };
        let batch = Batch {
            account_name: self.account_name(&id),
            id,
            kind: BatchKind::Immediate,
            window_end: window.end_of(start),
            events: vec![event],
        };
        let now = self.clock.now();
        if self.send(batch, now).await? {
            self.stats.immediate += 1;
        }
        Ok(())
    }

    fn account_name(&self, id: &BatchId) -> Option<String> {
        self.settings.accounts.get(&id.account).map(str::to_owned)
    }

    /// Summarise, render, deliver, then mark sent; on a delivery failure the batch stays due.
    async fn send(&mut self, batch: Batch, now: DateTime<Utc>) -> Result<bool, EngineError> {
        let locale = self.settings.locale;
        let summary = match self.summarizer.summarize(&batch, locale).await {
            Ok(summary) => summary,
            Err(err) => {
                self.stats.fallbacks += 1;
                let mut summary = offline_summary(&batch, locale);
                summary.source = SummarySource::Fallback {
                    reason: err.to_string(),
                };
                summary
            }
        };
        let messages = render_batch(&batch, &summary, locale);
        let delivery = Delivery {
            batch,
            summary,
            messages,
        };
        let id = delivery.batch.id.clone();
        match self.notifier.deliver(&delivery).await {
            Ok(receipt) => {
                let mut audit = audit_line(&delivery.batch, &delivery.summary);
                audit.channel = receipt.channel;
                audit.ts = receipt.ts;
                self.store
                    .mark_sent(&id, &audit, self.clock.now())
                    .await
                    .map_err(store_error)?;
                self.stats.batches += 1;
                Ok(true)
            }
            Err(err) => {
                self.stats.send_failures += 1;
                let permanent = !err.is_retryable();
                self.stats.send_failures_permanent += u64::from(permanent);
                tracing::warn!(
                    batch = %id.key(),
                    permanent,
                    error = %error_chain(&err),
                    "Delivery failed; batch stays due."
                );
                let retry_at = now
                    .checked_add_signed(self.settings.window.grace)
                    .unwrap_or(now);
                if id.event.is_none() {
                    self.store
                        .release(&id, retry_at, &error_chain(&err))
                        .await
                        .map_err(store_error)?;
                }
                Ok(false)
            }
        }
    }
}
