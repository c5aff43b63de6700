//! The Lambda handler: one entry point for Kinesis batches (from an EventBridge Pipe or an
//! event-source mapping) and for the scheduled tick that flushes due windows.
//!
//! Ingest makes no Slack or Bedrock call: it stores events in their windows, immediate
//! alerts as pending for the next flush, and heartbeats. The tick (every minute) posts the
//! pending alerts, then flushes due windows and decides on silent sources, within a time
//! budget below the Lambda's timeout; what it has no time for stays due for the next tick.
//! Metrics are written at the end of every invocation, which the budget guarantees.
//! Each Kinesis record is decoded on its own: a record that cannot be decoded is quarantined,
//! counted and acknowledged. A retryable store failure reports that record as the batch's
//! first failure, so it and every record after it in the shard are delivered again (events
//! already stored are dropped as duplicates on redelivery).

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lambda_events::event::streams::KinesisEventResponse;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{Mutex, MutexGuard};

use crate::adapters::bedrock::{BedrockConfig, BedrockSummarizer};
use crate::adapters::dynamo::{DynamoSettings, DynamoStore};
use crate::adapters::either::Either;
use crate::adapters::metrics::{Metric, emf_line, engine_metrics};
use crate::adapters::stdout::StdoutNotifier;
use crate::adapters::system_clock::SystemClock;
use crate::app::RefreshingSlack;
use crate::config::{Settings, SummarizerKind, env};
use crate::engine::{Engine, EngineError};
use crate::ports::{Clock, Directory, Notifier, Retryable, Store, Summarizer};
use crate::summary::OfflineSummarizer;

/// Quarantined records a warm container keeps (after logging them) before forgetting them.
const QUARANTINE_LOGGED_KEPT: usize = 1_000;

/// The payload the EventBridge Scheduler schedule must send (its target `Input`).
pub const TICK_PAYLOAD: &str = r#"{"trailwatch":"tick"}"#;

/// The invocation could not be handled; Lambda (or the Pipe) retries it whole.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(
        "unrecognised payload: {0} (expected a Pipe batch, an event-source batch or {TICK_PAYLOAD})"
    )]
    UnknownPayload(&'static str),
    #[error("a record failed retryably but carries no {field} to report it by")]
    Unidentifiable {
        field: &'static str,
        #[source]
        source: EngineError,
    },
    #[error("flushing due windows failed")]
    Flush(#[source] EngineError),
}

impl From<LambdaError> for lambda_runtime::Diagnostic {
    fn from(err: LambdaError) -> Self {
        Self {
            error_type: "trailwatch::LambdaError".to_owned(),
            error_message: error_chain(&err),
        }
    }
}

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

/// What an invocation carried.
#[derive(Debug)]
pub enum Payload<'a> {
    /// An EventBridge Pipe batch: a bare array of Kinesis records, failures by `eventID`.
    Pipe(Vec<&'a RawValue>),
    /// A Lambda event-source mapping batch: `{"Records": [...]}`, failures by sequence number.
    EventSource(Vec<&'a RawValue>),
    /// A scheduled tick: flush due windows.
    Tick,
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    trailwatch: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<Cow<'a, str>>,
}

/// Tell the three payloads apart. Ticks: [`TICK_PAYLOAD`], or anything from EventBridge
/// Scheduler (`"source": "aws.scheduler"`) or a scheduled rule (`"detail-type": "Scheduled
/// Event"`). Error messages never echo payload text.
pub fn parse_payload(bytes: &[u8]) -> Result<Payload<'_>, LambdaError> {
    match bytes.trim_ascii_start().first() {
        Some(b'[') => serde_json::from_slice(bytes)
            .map(Payload::Pipe)
            .map_err(|_| LambdaError::UnknownPayload("an array that is not valid JSON")),
        Some(b'{') => {
            let object: Object<'_> = serde_json::from_slice(bytes)
                .map_err(|_| LambdaError::UnknownPayload("an object that is not valid JSON"))?;
            if let Some(records) = object.records {
                Ok(Payload::EventSource(records))
            } else if object.trailwatch.as_deref() == Some("tick")
                || object.source.as_deref() == Some("aws.scheduler")
                || object.detail_type.as_deref() == Some("Scheduled Event")
            {
                Ok(Payload::Tick)
            } else {
                Err(LambdaError::UnknownPayload(
                    "an object without Records that is not a tick",
                ))
            }
        }
        _ => Err(LambdaError::UnknownPayload("not a JSON object or array")),
    }
}

/// How a failed record is named back to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportBy {
    /// A Pipe wants the record's `eventID`.
    EventId,
    /// An event-source mapping wants `kinesis.sequenceNumber`.
    SequenceNumber,
}

#[derive(Default, Deserialize)]
struct RecordIds<'a> {
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kinesis: Option<KinesisIds<'a>>,
}

#[derive(Deserialize)]
struct KinesisIds<'a> {
    #[serde(rename = "sequenceNumber", borrow)]
    sequence_number: Option<Cow<'a, str>>,
}

impl ReportBy {
    fn field(self) -> &'static str {
        match self {
            Self::EventId => "eventID",
            Self::SequenceNumber => "kinesis.sequenceNumber",
        }
    }

    fn identifier(self, record: &str) -> Option<String> {
        let ids: RecordIds<'_> = serde_json::from_str(record).unwrap_or_default();
        let id = match self {
            Self::EventId => ids.event_id,
            Self::SequenceNumber => ids.kinesis.and_then(|k| k.sequence_number),
        };
        id.filter(|id| !id.is_empty()).map(Cow::into_owned)
    }
}

/// The handler's answer: partial batch failures for Kinesis, a count for a tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Batch(KinesisEventResponse),
    Tick { flushed: usize },
}

/// The engine, built once per Lambda instance, behind the one handler.
pub struct Handler<S, M, N, C> {
    engine: Mutex<Engine<S, M, N, C>>,
    metrics: std::sync::Mutex<Box<dyn Write + Send>>,
    /// Where and how often the organisation's accounts are read, if they are.
    roster: Option<Roster>,
}

/// A [`Directory`] behind a trait object, so that the handler's type does not name it.
pub trait AccountDirectory: Send + Sync {
    /// The organisation's account ids, or why they could not be read.
    fn account_ids(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>, String>> + Send + '_>>;
}

impl<D: Directory + Send + Sync> AccountDirectory for D {
    fn account_ids(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>, String>> + Send + '_>>
    {
        Box::pin(async move { self.accounts().await.map_err(|err| err.to_string()) })
    }
}

/// Longest a read of the organisation's accounts may take in an invocation.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed read, the next one comes this soon (or at the interval, if shorter).
const REFRESH_RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The organisation's accounts, read again every `every` (engine time), so that an account
/// added after the deploy is inside the organisation within the hour, not from the next deploy.
struct Roster {
    directory: Box<dyn AccountDirectory>,
    every: chrono::TimeDelta,
    /// When to read next; `None`: at the first invocation.
    next: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// A failure was logged (later ones are not: the central account may simply not be the
    /// organisation's management account or a delegated administrator).
    failure_logged: std::sync::atomic::AtomicBool,
}

impl<S, M, N, C> Handler<S, M, N, C>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    /// Wrap `engine`, turning off its per-event flush and deferring its immediate alerts to
    /// the tick; metrics go to standard output.
    pub fn new(engine: Engine<S, M, N, C>) -> Self {
        Self {
            engine: Mutex::new(
                engine
                    .with_flush_on_ingest(false)
                    .with_deferred_alerts(true),
            ),
            metrics: std::sync::Mutex::new(Box::new(std::io::stdout())),
            roster: None,
        }
    }

    /// Read the organisation's accounts from `directory` at the first invocation and every
    /// `every` after, for `not_org_account` (beside those configuration names). A failure
    /// keeps what was known and is logged once.
    #[must_use]
    pub fn with_directory(
        mut self,
        directory: impl Directory + Send + Sync + 'static,
        every: chrono::TimeDelta,
    ) -> Self {
        self.roster = Some(Roster {
            directory: Box::new(directory),
            every,
            next: std::sync::Mutex::new(None),
            failure_logged: std::sync::atomic::AtomicBool::new(false),
        });
        self
    }

    /// Read the organisation's accounts again when it is time.
    async fn refresh_organization(&self, engine: &mut Engine<S, M, N, C>) {
        let Some(roster) = &self.roster else {
            return;
        };
        let now = engine.clock.now();
        {
            let next = roster
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if next.is_some_and(|next| now < next) {
                return;
            }
        }
        // Bounded: the invocation's time is for its records and its flush.
        let read = tokio::time::timeout(REFRESH_TIMEOUT, roster.directory.account_ids())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {REFRESH_TIMEOUT:?}")));
        let next = match read {
            Ok(ids) => {
                tracing::info!(
                    accounts = ids.len(),
                    "Organisation accounts read from AWS Organizations."
                );
                engine.set_organization_accounts(ids);
                // A later failure is news again.
                roster
                    .failure_logged
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                roster.every
            }
            Err(err) => {
                if !roster
                    .failure_logged
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(error = %err, "Cannot read the organisation's accounts; using the ones known (the central account must be the management account or a delegated administrator). Said once until it works again.");
                }
                // Soon again: a cold start's passing failure should not leave an hour of
                // accounts looking foreign.
                REFRESH_RETRY.min(roster.every)
            }
        };
        *roster
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now.checked_add_signed(next);
    }

    /// Write embedded-metric lines here instead of standard output.
    #[must_use]
    pub fn with_metrics_output(mut self, out: Box<dyn Write + Send>) -> Self {
        self.metrics = std::sync::Mutex::new(out);
        self
    }

    /// The engine, for inspection.
    pub async fn engine(&self) -> MutexGuard<'_, Engine<S, M, N, C>> {
        self.engine.lock().await
    }

    /// Handle one invocation's payload, with no time budget.
    pub async fn handle(&self, payload: &[u8]) -> Result<Response, LambdaError> {
        self.handle_within(payload, None).await
    }

    /// Handle one invocation's payload; a tick stops starting work once `budget` is spent
    /// and gives up a post or summary still running then (see [`Engine::set_deadline`]).
    pub async fn handle_within(
        &self,
        payload: &[u8],
        budget: Option<Duration>,
    ) -> Result<Response, LambdaError> {
        match parse_payload(payload)? {
            Payload::Pipe(records) => self.ingest(&records, ReportBy::EventId).await,
            Payload::EventSource(records) => self.ingest(&records, ReportBy::SequenceNumber).await,
            Payload::Tick => self.tick(budget).await,
        }
    }

    async fn ingest(&self, records: &[&RawValue], by: ReportBy) -> Result<Response, LambdaError> {
        let mut engine = self.engine.lock().await;
        self.refresh_organization(&mut engine).await;
        let before = engine.stats();
        let quarantine_before = engine.quarantined().len();
        let mut response = KinesisEventResponse::default();
        let mut result = Ok(());
        let mut rejected = 0_u64;
        let mut retried = 0_u64;
        for (index, record) in records.iter().enumerate() {
            let events = engine.decode(record.get().as_bytes());
            let Err(err) = engine.ingest(events).await else {
                continue;
            };
            let id = by.identifier(record.get());
            if !err.is_retryable() {
                // Reported all the same: the Pipe's bounded retries then its dead-letter queue
                // keep the record, where acknowledging it would lose its events. Counted for
                // the alarm.
                rejected += 1;
                tracing::error!(record = id.as_deref().unwrap_or("-"), error = %error_chain(&err), "Store rejected a record; reported so it reaches the dead-letter queue.");
            }
            retried = u64::try_from(records.len() - index).unwrap_or(u64::MAX);
            match id {
                Some(id) => {
                    tracing::warn!(record = %id, retried, error = %error_chain(&err), "Store failed; record reported for retry with the rest of the batch.");
                    response.add_failure(id);
                }
                None => {
                    result = Err(LambdaError::Unidentifiable {
                        field: by.field(),
                        source: err,
                    });
                }
            }
            break;
        }
        // Safe to log: an excerpt keeps no string but a few identifying fields. Logged
        // batch by batch; a warm container forgets them once it holds many.
        let kept = engine.quarantined();
        for q in &kept[quarantine_before.min(kept.len())..] {
            tracing::warn!(reason = %q.reason, excerpt = %q.excerpt, "Quarantined a record.");
        }
        if kept.len() >= QUARANTINE_LOGGED_KEPT {
            engine.take_quarantined();
        }
        let after = engine.stats();
        let mut metrics = vec![
            Metric::count(
                "RecordsIn",
                u64::try_from(records.len()).unwrap_or(u64::MAX),
            ),
            Metric::count("EventsMatched", after.matched - before.matched),
            Metric::count("StoreRejected", rejected),
            Metric::count("RecordsRetried", retried),
        ];
        metrics.extend(engine_metrics(&before, &after));
        self.emit(engine.clock.now(), &metrics);
        tracing::info!(
            records = records.len(),
            matched = after.matched - before.matched,
            quarantined = after.quarantined - before.quarantined,
            failures = response.batch_item_failures.len(),
            "Batch ingested."
        );
        result.map(|()| Response::Batch(response))
    }

    async fn tick(&self, budget: Option<Duration>) -> Result<Response, LambdaError> {
        // The budget runs from the start of the invocation, the refresh included.
        let deadline = budget.map(|b| tokio::time::Instant::now() + b);
        let mut engine = self.engine.lock().await;
        self.refresh_organization(&mut engine).await;
        let before = engine.stats();
        let started = Instant::now();
        engine.set_deadline(deadline);
        let flushed = engine.flush_due().await.map_err(LambdaError::Flush);
        engine.set_deadline(None);
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let after = engine.stats();
        let mut metrics = vec![
            Metric::millis("FlushLatency", elapsed),
            // A gauge: the tick runs every minute, so no data means no tick.
            Metric::count("SilentSources", after.silent_sources),
        ];
        metrics.extend(engine_metrics(&before, &after));
        self.emit(engine.clock.now(), &metrics);
        let flushed = flushed?;
        tracing::info!(batches = flushed, millis = elapsed, "Due windows flushed.");
        Ok(Response::Tick { flushed })
    }

    fn emit(&self, now: chrono::DateTime<chrono::Utc>, metrics: &[Metric]) {
        let mut line = emf_line(now, metrics);
        line.push('\n');
        let mut out = self
            .metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(err) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            // Metrics are best effort: a closed stdout must not fail the batch.
            tracing::warn!(error = %err, "Cannot write metrics.");
        }
    }
}

/// The production handler until the DynamoDB store and the Slack notifier are wired in.
/// The summarizer the configuration chose.
pub type AnySummarizer = Either<OfflineSummarizer, BedrockSummarizer>;
/// Slack when a secret is configured, else JSON lines on standard output.
pub type AnyNotifier = Either<RefreshingSlack, StdoutNotifier>;
/// The handler the Lambda runs.
pub type DefaultHandler = Handler<DynamoStore, AnySummarizer, AnyNotifier, SystemClock>;

/// Build the handler from the environment (see [`crate::config::env`]), once per instance:
/// settings, rules, and the AWS clients (DynamoDB, Secrets Manager, Bedrock).
pub async fn from_env(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<DefaultHandler> {
    let config = var(env::CONFIG).map(PathBuf::from);
    let settings = Settings::load(config.as_deref(), var)?;
    let rules = super::load_rules(
        var(env::RULES).as_deref().map(Path::new),
        &settings.rules.packs(),
    )?;
    let table = var(env::TABLE)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: expected the DynamoDB table name, found nothing",
                env::TABLE
            )
        })?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        DynamoSettings::new(table.trim(), settings.window),
    );
    let summarizer = match settings.summary.summarizer {
        SummarizerKind::Offline => Either::Left(OfflineSummarizer),
        SummarizerKind::Bedrock => Either::Right(
            BedrockSummarizer::from_environment(BedrockConfig::from_settings(&settings.summary))
                .await,
        ),
    };
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let notifier =
        if let Some(slack) = super::lambda_slack_notifier(&secrets, &settings, var).await? {
            Either::Left(slack)
        } else {
            tracing::warn!("No Slack secret configured: deliveries go to standard output.");
            Either::Right(StdoutNotifier::stdout())
        };
    let refresh = settings.rules.refresh();
    let engine = Engine::new(rules, settings, store, summarizer, notifier, SystemClock);
    let handler = Handler::new(engine);
    Ok(match refresh {
        Some(every) => handler.with_directory(
            crate::adapters::organizations::Organizations::new(aws_sdk_organizations::Client::new(
                &aws,
            )),
            every,
        ),
        None => handler,
    })
}

/// Time a tick keeps back from the invocation's deadline: for the metrics and the answer,
/// and for a DynamoDB write already started when the budget ran out.
pub const TICK_MARGIN: Duration = Duration::from_secs(10);

/// The time budget of an invocation whose deadline is `deadline_ms` (epoch milliseconds, as
/// the Lambda runtime API's `Lambda-Runtime-Deadline-Ms` gives it) at `now_ms`: what is left
/// less [`TICK_MARGIN`], at least one second.
pub fn budget(deadline_ms: u64, now_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        .saturating_sub(TICK_MARGIN)
        .max(Duration::from_secs(1))
}

/// Serve invocations until the runtime stops.
pub async fn serve(handler: DefaultHandler) -> Result<(), lambda_runtime::Error> {
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Box<RawValue>>| async move {
            let now_ms = u64::try_from(SystemClock.now().timestamp_millis()).unwrap_or(0);
            let budget = budget(event.context.deadline, now_ms);
            // Boxed: the whole engine's state machine lives in this future.
            Box::pin(handler.handle_within(event.payload.get().as_bytes(), Some(budget))).await
        },
    ))
    .await
}
