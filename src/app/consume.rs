//! `trailwatch consume`: read every shard of a Kinesis stream into the engine, outside Lambda.
//!
//! Each shard resumes after its checkpoint (or at TRIM_HORIZON); after each processed page the
//! checkpoint moves to the page's last record, so a crash re-reads at most one page per shard
//! (its events are dropped as duplicates). Due windows are flushed after every round.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{ConsumeArgs, load_rules};
use crate::adapters::dynamo::{DynamoSettings, DynamoStore};
use crate::adapters::kinesis::Kinesis;
use crate::adapters::stdout::StdoutNotifier;
use crate::adapters::system_clock::SystemClock;
use crate::config::Settings;
use crate::engine::Engine;
use crate::ports::{Checkpoints, Clock, Notifier, Retryable, Store, Summarizer};
use crate::summary::OfflineSummarizer;

/// Records asked for per GetRecords call.
const PAGE: i32 = 1000;
/// Pause between rounds that found nothing (GetRecords allows 5 calls per shard per second).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Attempts for a retryable Kinesis failure within one round.
const ATTEMPTS: u32 = 6;

/// How to consume.
#[derive(Debug, Clone)]
pub struct Options {
    pub stream: String,
    /// Stop once no record arrived for this long; `None`: run until the shards close.
    pub until_idle: Option<Duration>,
}

/// What a consume run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub shards: usize,
    pub records: u64,
    pub pages: u64,
}

struct Cursor {
    shard: String,
    iterator: Option<String>,
}

/// Consume `options.stream` into `engine`; checkpoints live in the engine's store.
pub async fn consume<S, M, N, C>(
    engine: &mut Engine<S, M, N, C>,
    kinesis: &Kinesis,
    options: &Options,
) -> anyhow::Result<Report>
where
    S: Store + Checkpoints + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    let stream = options.stream.as_str();
    let mut cursors = Vec::new();
    for shard in kinesis.shards(stream).await? {
        let after = engine
            .store
            .checkpoint(stream, &shard)
            .await
            .with_context(|| format!("reading the checkpoint of {shard}"))?;
        let iterator = kinesis
            .shard_iterator(stream, &shard, after.as_deref())
            .await?;
        cursors.push(Cursor { shard, iterator });
    }
    let mut report = Report {
        shards: cursors.len(),
        ..Report::default()
    };
    let mut last_record = Instant::now();
    while cursors.iter().any(|c| c.iterator.is_some()) {
        let mut round = 0_u64;
        for cursor in &mut cursors {
            round += read_page(engine, kinesis, stream, cursor, &mut report).await?;
        }
        engine.flush_due().await?;
        if round > 0 {
            last_record = Instant::now();
        } else if options
            .until_idle
            .is_some_and(|idle| last_record.elapsed() >= idle)
        {
            break;
        } else {
            tokio::time::sleep(IDLE_POLL).await;
        }
    }
    Ok(report)
}

async fn read_page<S, M, N, C>(
    engine: &mut Engine<S, M, N, C>,
    kinesis: &Kinesis,
    stream: &str,
    cursor: &mut Cursor,
    report: &mut Report,
) -> anyhow::Result<u64>
where
    S: Store + Checkpoints + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    let Some(iterator) = cursor.iterator.as_deref() else {
        return Ok(0);
    };
    let mut attempt = 0;
    let page = loop {
        match kinesis.get_records(iterator, PAGE).await {
            Ok(page) => break page,
            Err(err) if err.is_retryable() && attempt + 1 < ATTEMPTS => {
                tracing::warn!(shard = %cursor.shard, attempt, error = %err, "GetRecords failed; retrying.");
                kinesis.read_backoff(attempt + 1).await;
                attempt += 1;
            }
            Err(err) => return Err(err.into()),
        }
    };
    for record in &page.records {
        let events = engine.decode(&record.data);
        engine.ingest(events).await?;
    }
    if let Some(last) = page.records.last() {
        engine
            .store
            .set_checkpoint(stream, &cursor.shard, &last.sequence_number)
            .await
            .with_context(|| format!("checkpointing {}", cursor.shard))?;
        report.pages += 1;
    }
    let count = u64::try_from(page.records.len()).unwrap_or(u64::MAX);
    report.records += count;
    cursor.iterator = page.next_iterator;
    Ok(count)
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref(), &|key| std::env::var(key).ok())?;
    let rules = load_rules(args.rules.as_deref(), &settings.rules.packs())?;
    let store = DynamoStore::new(
        DynamoStore::client_from_env().await,
        DynamoSettings::new(args.table.clone(), settings.window),
    );
    let mut engine = Engine::new(
        rules,
        settings,
        store,
        OfflineSummarizer,
        StdoutNotifier::stdout(),
        SystemClock,
    )
    .with_flush_on_ingest(false);
    let kinesis = Kinesis::from_env().await;
    let options = Options {
        stream: args.stream.clone(),
        until_idle: args.until_idle.map(Duration::from_secs),
    };
    let started = Instant::now();
    let report = consume(&mut engine, &kinesis, &options)
        .await
        .with_context(|| format!("consuming stream {}", args.stream))?;
    eprintln!(
        "consume: shards={} records={} pages={} {}",
        report.shards,
        report.records,
        report.pages,
        super::stats_line(&engine.stats(), started.elapsed().as_secs_f64())
            .trim_start_matches("replay: ")
    );
    Ok(())
}
