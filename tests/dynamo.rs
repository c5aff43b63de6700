//! The DynamoDB store against moto server (`bash .ci/test` starts one and sets
//! `AWS_ENDPOINT_URL`); the SDK's error handling against an in-process fake.
//!
//! Without `AWS_ENDPOINT_URL` the moto tests say so and return, unless `TRAILWATCH_MOTO` is
//! set (as `.ci/test` does), in which case they fail: under CI they must run.
#![cfg(feature = "cloud")]

mod common;

use common::faulty::{Fault, FaultyStore, Step};
mod fake_slack;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeDelta, Utc};
use fake_slack::{FakeSlack, TOKEN};
use trailwatch::adapters::dynamo::{
    AddStep, DynamoError, DynamoSettings, DynamoStore, TTL_ATTRIBUTE, create_table,
};
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::adapters::retry::ManualSleeper;
use trailwatch::adapters::slack::{Credential, RetryPolicy, SlackNotifier};
use trailwatch::config::{Settings, SlackRoutes};
use trailwatch::delivery::{AuditLine, PostedAs};
use trailwatch::engine::{Engine, Stats};
use trailwatch::incident::{Incident, IncidentKey};
use trailwatch::ports::{Delivery, Notifier, Receipt, Retryable, Store};
use trailwatch::rules::RulePack;
use trailwatch::secret::Secret;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::{Added, BatchEvent, BatchId, Clock as _, ManualClock};

const FIXTURES: [&str; 8] = [
    "duplicates.jsonl",
    "hostile-text.jsonl",
    "late-event.jsonl",
    "malformed.jsonl",
    "multi-account.jsonl",
    "root-login-no-mfa.jsonl",
    "secrets.jsonl",
    "terraform-burst.jsonl",
];

static TABLES: AtomicUsize = AtomicUsize::new(0);

/// A client for moto, or `None` (with a message) when no moto server is configured.
async fn moto() -> Option<Client> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(
            std::env::var_os("TRAILWATCH_MOTO").is_none(),
            "TRAILWATCH_MOTO is set but AWS_ENDPOINT_URL is not: the moto tests must run"
        );
        eprintln!("skipped: AWS_ENDPOINT_URL is unset (run `bash .ci/test` to start moto)");
        return None;
    }
    Some(DynamoStore::client_from_env().await)
}

/// A fresh table with a name of its own, so tests run in parallel.
async fn table(client: &Client, name: &str) -> String {
    let table = format!(
        "tw-{name}-{}-{}",
        std::process::id(),
        TABLES.fetch_add(1, Ordering::Relaxed)
    );
    create_table(client, &table)
        .await
        .unwrap_or_else(|err| panic!("create table {table}: {err:?}"));
    table
}

fn settings() -> Settings {
    common::settings(Lang::En, chrono_tz::UTC)
}

fn dynamo(client: &Client, table: &str) -> DynamoStore {
    DynamoStore::new(
        client.clone(),
        DynamoSettings::new(table, settings().window),
    )
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_default()
}

type TestEngine<S, N = CollectingNotifier> = Engine<S, OfflineSummarizer, N, ManualClock>;

fn engine<S: Store + Sync, N: Notifier>(
    store: S,
    notifier: N,
    now: DateTime<Utc>,
) -> TestEngine<S, N> {
    Engine::new(
        RulePack::builtin(),
        settings(),
        store,
        OfflineSummarizer,
        notifier,
        ManualClock::new(now),
    )
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// Feed events one at a time with the manual clock following event time (never back), as a
/// stream consumer sees them; then let time run an hour past the last event and flush.
async fn drive<S: Store + Sync, N: Notifier>(
    engine: &mut TestEngine<S, N>,
    events: Vec<BatchEvent>,
) {
    for event in events {
        if event.event.time > engine.clock.now() {
            engine.clock.set(event.event.time);
        }
        engine
            .ingest(vec![event])
            .await
            .unwrap_or_else(|err| panic!("ingest: {err:?}"));
    }
}

async fn finish<S: Store + Sync, N: Notifier>(engine: &mut TestEngine<S, N>) -> usize {
    engine.clock.advance(TimeDelta::hours(1));
    engine
        .flush_due()
        .await
        .unwrap_or_else(|err| panic!("flush: {err:?}"))
}

/// Delivery key (digest, reply, reminder, immediate alert) -> event ids, in delivery order
/// per key.
fn batches(deliveries: &[Delivery]) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for d in deliveries {
        out.entry(d.key()).or_default().push(
            d.batch
                .events
                .iter()
                .map(|e| e.event.id.to_string())
                .collect(),
        );
    }
    out
}

async fn run_fixture<S: Store + Sync>(store: S, name: &str) -> (Vec<Delivery>, Stats, S) {
    let mut engine = engine(
        store,
        CollectingNotifier::default(),
        at("2026-11-02T00:00:00Z"),
    );
    let events = engine.decode(&read(name));
    drive(&mut engine, events).await;
    finish(&mut engine).await;
    (engine.notifier.deliveries(), engine.stats(), engine.store)
}

/// (a) Every fixture through the engine with DynamoDB: the same batches as the in-memory
/// store, one delivery per batch, every matched event in exactly one window batch, and an
/// audit item per delivery that says what went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_through_dynamodb_match_memory_and_are_audited() {
    let Some(client) = moto().await else { return };
    for name in FIXTURES {
        let table = table(&client, "fixtures").await;
        let (memory, memory_stats, _) =
            run_fixture(MemoryStore::new(settings().window), name).await;
        let (deliveries, stats, store) = Box::pin(run_fixture(dynamo(&client, &table), name)).await;
        assert_eq!(stats, memory_stats, "{name}: stats");
        assert_eq!(batches(&deliveries), batches(&memory), "{name}: batches");

        let keys = batches(&deliveries);
        assert!(
            keys.values().all(|v| v.len() == 1),
            "{name}: a batch sent twice"
        );
        let mut seen = BTreeSet::new();
        for delivery in &deliveries {
            for event in &delivery.batch.events {
                assert!(seen.insert(event.event.id.to_string()), "{name}: twice");
            }
        }
        assert_eq!(
            u64::try_from(seen.len()).unwrap_or(0),
            stats.matched,
            "{name}: every matched event in exactly one delivery"
        );

        let audit = store
            .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
            .await
            .unwrap_or_else(|err| panic!("audit: {err:?}"));
        // One audit item per flushed window batch and per immediate alert; a batch's item
        // holds the events of all its parts (digest, reminders, replies).
        assert_eq!(
            u64::try_from(audit.len()).unwrap_or(0),
            stats.batches,
            "{name}: one audit item per batch"
        );
        for delivery in &deliveries {
            let key = delivery.batch.id.key();
            let record = audit
                .iter()
                .find(|r| r.line.batch_id == key)
                .unwrap_or_else(|| panic!("{name}: no audit item for {key}"));
            let audited: Vec<String> = record.line.events.iter().map(|e| e.id.clone()).collect();
            for event in &delivery.batch.events {
                assert!(
                    audited.contains(&event.event.id.to_string()),
                    "{name}: {key} lacks {}",
                    event.event.id
                );
            }
            assert_eq!(record.event_count, audited.len());
            assert_eq!(record.line.account, delivery.batch.id.account.to_string());
            assert_eq!(record.line.kind, delivery.batch.kind);
            let statuses: Vec<&str> = record.history.iter().map(|h| h.status.as_str()).collect();
            if delivery.batch.id.event.is_none() {
                assert_eq!(statuses, ["prepared", "sent"], "{name}: {key}");
                assert!(record.flush_ms.is_some_and(|ms| ms >= 0));
            } else {
                assert_eq!(statuses, ["sent"], "{name}: {key}");
            }
            assert!(
                record.line.severity >= delivery.batch.rule_severity(),
                "{name}: severity"
            );
        }
    }
}

/// (b) The same records again, in order and reversed, in a new invocation: no new event,
/// no new message, no new audit item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_adds_nothing() {
    let Some(client) = moto().await else { return };
    for name in [
        "multi-account.jsonl",
        "late-event.jsonl",
        "duplicates.jsonl",
    ] {
        let table = table(&client, "redelivery").await;
        let (first, stats, store) = Box::pin(run_fixture(dynamo(&client, &table), name)).await;
        assert!(!first.is_empty(), "{name}");
        let later = at("2026-11-02T06:00:00Z");
        for reverse in [false, true] {
            let mut again = engine(store.clone(), CollectingNotifier::default(), later);
            let mut events = again.decode(&read(name));
            if reverse {
                events.reverse();
            }
            drive(&mut again, events).await;
            finish(&mut again).await;
            assert!(again.notifier.deliveries().is_empty(), "{name}: resent");
            assert_eq!(again.stats().matched, 0, "{name}: an event added twice");
            assert_eq!(
                again.stats().duplicates,
                stats.matched + stats.duplicates,
                "{name}"
            );
        }
        let audit = store
            .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
            .await
            .unwrap_or_default();
        assert_eq!(
            u64::try_from(audit.len()).unwrap_or(0),
            stats.batches,
            "{name}: audit items"
        );
    }
}

/// DynamoDB's TTL sweep as it would have run by `cutoff`: every item whose `expires_at` (epoch
/// seconds) has passed is deleted (moto does not sweep).
async fn sweep_expired(client: &Client, table: &str, cutoff: DateTime<Utc>) -> usize {
    let mut swept = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|err| panic!("scan: {err:?}"));
        for item in page.items() {
            let expires = item
                .get(TTL_ATTRIBUTE)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok());
            if expires.is_some_and(|at| at < cutoff.timestamp()) {
                let key = ["pk", "sk"]
                    .into_iter()
                    .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
                    .collect();
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .unwrap_or_else(|err| panic!("delete: {err:?}"));
                swept += 1;
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return swept;
        }
    }
}

/// Past the TTL of windows, events and incidents (7 days: longer than the stream's retention, so
/// Kinesis cannot redeliver then, but an operator could replay), the same records are taken as
/// new: the dedupe horizon is the TTL. Their windows are long due, so each goes out with its
/// first events under the id it had (the audit, kept 90 days, keeps the earlier item for it, and
/// a bot transport finds the earlier message by that id) and the rest follow as late batches;
/// a destination without history (here, and a webhook) gets every event again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_the_ttl_is_taken_as_new_and_sent_once_more() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "redeliver-ttl").await;
    let name = "multi-account.jsonl";
    let (first, stats, store) = Box::pin(run_fixture(dynamo(&client, &table), name)).await;
    assert!(stats.matched > 0 && !first.is_empty());
    // Within the TTL nothing has expired.
    let later = at("2026-11-10T06:00:00Z");
    assert_eq!(
        sweep_expired(&client, &table, at("2026-11-03T00:00:00Z")).await,
        0
    );
    assert!(
        sweep_expired(&client, &table, later).await > 0,
        "nothing expired"
    );
    let mut again = engine(store.clone(), CollectingNotifier::default(), later);
    let events = again.decode(&read(name));
    drive(&mut again, events).await;
    finish(&mut again).await;
    assert_eq!(again.stats().matched, stats.matched, "taken as new");
    assert_eq!(again.stats().duplicates, stats.duplicates);
    let second = again.notifier.deliveries();
    assert_eq!(
        window_ids(&second),
        window_ids(&first),
        "the same events in windows"
    );
    let batch_keys = |deliveries: &[Delivery]| -> BTreeSet<String> {
        deliveries
            .iter()
            .filter(|d| d.batch.id.event.is_none())
            .map(|d| d.batch.id.key())
            .collect()
    };
    let (before, after) = (batch_keys(&first), batch_keys(&second));
    let reused: BTreeSet<&String> = after.iter().filter(|k| k.ends_with("/0")).collect();
    assert_eq!(
        reused,
        before.iter().collect(),
        "each window's first batch under its old id"
    );
    let mut ids: Vec<String> = second
        .iter()
        .filter(|d| d.batch.kind != trailwatch::window::BatchKind::Immediate)
        .flat_map(|d| d.batch.events.iter().map(|e| e.event.id.to_string()))
        .collect();
    let listed = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), listed, "an event in two batches");
    let audit = store
        .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_default();
    let audited: BTreeSet<String> = audit.iter().map(|r| r.line.batch_id.clone()).collect();
    assert_eq!(audit.len(), audited.len(), "one audit item per batch id");
    let immediate = first.iter().filter(|d| d.batch.id.event.is_some()).count();
    assert_eq!(
        audited.len(),
        before.union(&after).count() + immediate,
        "the earlier items kept, the late batches added"
    );
}

/// The same records again while their windows are still open (stored, not due), and again
/// while the first window is being flushed (claimed, its post stalled): each time every record
/// is a duplicate and nothing is added; the flush then sends every event once, one audit item
/// per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_while_open_or_being_flushed_adds_nothing() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "redeliver-open").await;
    let store = dynamo(&client, &table);
    let bytes = read("terraform-burst.jsonl");
    let matched = ingest_only(&store, "terraform-burst.jsonl").await;
    // Open: nothing is due yet.
    let redeliver = |now: DateTime<Utc>| {
        let store = store.clone();
        let bytes = bytes.clone();
        async move {
            let mut again =
                engine(store, CollectingNotifier::default(), now).with_flush_on_ingest(false);
            let events = again.decode(&bytes);
            let records = u64::try_from(events.len()).unwrap_or(0);
            Box::pin(again.ingest(events))
                .await
                .unwrap_or_else(|e| panic!("ingest: {e:?}"));
            (again.stats(), records, again.notifier.deliveries().len())
        }
    };
    let (stats, records, posted) = redeliver(at("2026-11-02T03:06:00Z")).await;
    assert_eq!(
        (stats.matched, stats.duplicates, posted),
        (0, records, 0),
        "while open"
    );

    // Being flushed: the first window is claimed and its post stalls.
    let due_at = at("2026-11-02T04:00:00Z");
    let (stalling, reached, release) = Stalling::new();
    let mut flusher = engine(store.clone(), stalling, due_at);
    let flushing = tokio::spawn(async move {
        flusher
            .flush_due()
            .await
            .unwrap_or_else(|e| panic!("flush: {e:?}"));
        flusher
    });
    reached.notified().await;
    let (stats, records, posted) = redeliver(due_at).await;
    assert_eq!(
        (stats.matched, stats.duplicates, posted),
        (0, records, 0),
        "while flushed"
    );
    release.notify_one();
    let mut flusher = flushing.await.unwrap_or_else(|e| panic!("join: {e}"));
    // A later tick sends what waited for the incident's first message.
    flusher.clock.advance(TimeDelta::minutes(10));
    flusher
        .flush_due()
        .await
        .unwrap_or_else(|e| panic!("flush: {e:?}"));
    // Everything the flusher posted, both ticks.
    let all = flusher.notifier.inner.deliveries();
    let mut ids = window_ids(&all);
    let listed = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), listed, "an event in two batches");
    assert_eq!(u64::try_from(ids.len()).unwrap_or(0), matched);
    assert!(batches(&all).values().all(|sends| sends.len() == 1));
    assert_eq!(window_audit_items(&store).await, window_batches(&all));
}

/// Where a flush is made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// The claim succeeded, then the process died.
    AfterClaim,
    /// Notified, then died before marking the batch sent.
    BeforeMarkSent,
    /// Marked sent, then died before the engine heard back.
    AfterMarkSent,
    /// Died at the first incident write (for a batch of replies only: after they went out,
    /// before the incident recorded them).
    BeforeSaveIncident,
    /// Wrote the account's held events, then died (before the batch was marked sent).
    AfterSaveHeld,
}

#[derive(Debug, thiserror::Error)]
#[error("injected failure")]
struct Injected {
    retryable: bool,
}

impl Retryable for Injected {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// A store that fails once at the chosen step (the shared [`FaultyStore`]).
fn crashing<S>(inner: S, at: Crash) -> FaultyStore<S> {
    let (step, fault) = match at {
        Crash::AfterClaim => (Step::Claim, Fault::CrashAfterEffect),
        Crash::BeforeMarkSent => (Step::MarkSent, Fault::Fail { retryable: false }),
        Crash::AfterMarkSent => (Step::MarkSent, Fault::CrashAfter),
        Crash::BeforeSaveIncident => (Step::SaveIncident, Fault::Fail { retryable: false }),
        Crash::AfterSaveHeld => (Step::SaveHeld, Fault::CrashAfterEffect),
    };
    FaultyStore::new(inner).at(step, 1, fault)
}

/// A notifier that posts, then reports a failure once (the post went out, the answer was
/// lost): the engine releases the batch and it is sent again later.
#[derive(Default)]
struct LostAck {
    inner: CollectingNotifier,
    failed: AtomicBool,
}

impl Notifier for LostAck {
    type Error = Injected;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, Injected> {
        let receipt = self
            .inner
            .deliver(delivery)
            .await
            .unwrap_or_else(|never| match never {});
        if self.failed.swap(true, Ordering::SeqCst) {
            Ok(receipt)
        } else {
            Err(Injected { retryable: true })
        }
    }
}

/// Ingest a fixture with the clock before any window is due (nothing flushes but immediate
/// alerts). Returns the matched events left for the windows.
async fn ingest_only(store: &DynamoStore, name: &str) -> u64 {
    ingest_bytes_only(store, &read(name)).await
}

/// Ingest records with the clock before any window is due (nothing flushes).
async fn ingest_bytes_only(store: &DynamoStore, bytes: &[u8]) -> u64 {
    let mut engine = engine(
        store.clone(),
        CollectingNotifier::default(),
        at("2026-11-02T00:00:00Z"),
    );
    let events = engine.decode(bytes);
    engine
        .ingest(events)
        .await
        .unwrap_or_else(|err| panic!("ingest: {err:?}"));
    // Only immediate alerts go out while no window is due.
    let alerts = engine.notifier.deliveries();
    assert!(alerts.iter().all(|d| d.batch.id.event.is_some()));
    // Their events are not listed again by the windows.
    let alerted: usize = alerts.iter().map(|d| d.batch.events.len()).sum();
    engine.stats().matched - u64::try_from(alerted).unwrap_or(0)
}

fn window_ids(deliveries: &[Delivery]) -> Vec<String> {
    let mut ids: Vec<String> = deliveries
        .iter()
        .filter(|d| d.batch.id.event.is_none())
        .flat_map(|d| d.batch.events.iter().map(|e| e.event.id.to_string()))
        .collect();
    ids.sort();
    ids
}

/// Throttling (a retryable failure) at each write step of the durable path, once: the engine
/// reports it as retryable (the Pipe redelivers the records; the next tick flushes again), and
/// after the retry every matched event is in exactly one sent batch, every batch has one audit
/// item, and a batch is posted twice only where the throttled step came after its post (mark
/// sent; release after a post whose answer was lost): the bot transport's idempotency check
/// (tests/slack.rs) then finds the first post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_at_each_step_is_retryable_and_loses_nothing() {
    let Some(client) = moto().await else { return };
    let throttled = Fault::Fail { retryable: true };
    for step in [Step::Add, Step::Claim, Step::MarkSent, Step::Release] {
        let table = table(&client, "throttle").await;
        let store = dynamo(&client, &table);
        let bytes = read("multi-account.jsonl");
        let due_at = at("2026-11-02T04:00:00Z");
        let mut posted = Vec::new();
        let matched = if step == Step::Add {
            // The third add is throttled: the call fails, retryable; the redelivered records
            // find the first two stored (duplicates) and store the rest.
            let mut first = engine(
                FaultyStore::new(store.clone()).at(Step::Add, 3, throttled),
                CollectingNotifier::default(),
                at("2026-11-02T00:00:00Z"),
            );
            let events = first.decode(&bytes);
            let err = first.ingest(events).await.err();
            assert!(err.is_some_and(|e| e.is_retryable()), "{step:?}");
            posted.extend(first.notifier.deliveries());
            let mut again = engine(
                store.clone(),
                CollectingNotifier::default(),
                at("2026-11-02T00:00:00Z"),
            );
            let events = again.decode(&bytes);
            again
                .ingest(events)
                .await
                .unwrap_or_else(|e| panic!("{step:?}: {e:?}"));
            assert!(again.stats().duplicates >= 2, "{step:?}");
            posted.extend(again.notifier.deliveries());
            let alerted: usize = posted.iter().map(|d| d.batch.events.len()).sum();
            first.stats().matched + again.stats().matched - u64::try_from(alerted).unwrap_or(0)
        } else {
            ingest_only(&store, "multi-account.jsonl").await
        };
        let faulty = FaultyStore::new(store.clone()).at(step, 1, throttled);
        let flushed = if step == Step::Release {
            // Release runs when a delivery fails: the first post's answer is lost.
            let mut flusher = engine(faulty, LostAck::default(), due_at);
            let err = flusher.flush_due().await.err();
            assert!(err.is_some_and(|e| e.is_retryable()), "{step:?}");
            flusher.notifier.inner.deliveries()
        } else {
            let mut flusher = engine(faulty, CollectingNotifier::default(), due_at);
            let result = flusher.flush_due().await;
            if step != Step::Add {
                assert!(
                    result.as_ref().is_err_and(Retryable::is_retryable),
                    "{step:?}: {result:?}"
                );
            }
            flusher.notifier.deliveries()
        };
        let before_retry = flushed.len();
        posted.extend(flushed);
        // The next ticks, ten minutes apart: after the lease, any retry delay, and the wait of
        // a batch whose incident's first message was being posted when the step failed.
        for tick in 1..=6 {
            let mut next = engine(
                store.clone(),
                CollectingNotifier::default(),
                due_at + TimeDelta::minutes(10 * tick),
            );
            next.flush_due()
                .await
                .unwrap_or_else(|e| panic!("{step:?}: {e:?}"));
            posted.extend(next.notifier.deliveries());
        }
        let mut ids = window_ids(&posted);
        ids.dedup();
        assert_eq!(u64::try_from(ids.len()).unwrap_or(0), matched, "{step:?}");
        let twice: Vec<_> = batches(&posted)
            .into_iter()
            .filter(|(_, sends)| sends.len() > 1)
            .collect();
        match step {
            Step::Add | Step::Claim => {
                assert!(twice.is_empty(), "{step:?}: {twice:?}");
            }
            _ => {
                // Only the batch posted before its step was throttled goes out again (its
                // digest and any replies), once more.
                assert!(before_retry >= 1, "{step:?}");
                let again: BTreeSet<&str> = twice
                    .iter()
                    .map(|(key, _)| key.split("/reply/").next().unwrap_or(key))
                    .collect();
                assert_eq!(again.len(), 1, "{step:?}: {twice:?}");
                assert!(twice.iter().all(|(_, sends)| sends.len() == 2), "{step:?}");
            }
        }
        assert_eq!(
            window_audit_items(&store).await,
            window_batches(&posted),
            "{step:?}: audit items"
        );
    }
}

/// Audit items of window batches (not immediate alerts) in `store`.
async fn window_audit_items(store: &DynamoStore) -> usize {
    store
        .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.line.kind != trailwatch::window::BatchKind::Immediate)
        .count()
}

/// Distinct window batches among `posted`.
fn window_batches(posted: &[Delivery]) -> usize {
    posted
        .iter()
        .filter(|d| d.batch.id.event.is_none())
        .map(|d| d.batch.id.key())
        .collect::<BTreeSet<_>>()
        .len()
}

/// A notifier whose first post stalls: it says when it got there (`reached`), waits for
/// `release`, then posts. Every later post goes through at once.
struct Stalling {
    inner: CollectingNotifier,
    stalled: AtomicBool,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl Stalling {
    /// The notifier, and the signals it says `reached` on and waits for `release` on.
    fn new() -> (Self, Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) {
        let reached = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Notify::new());
        let stalling = Self {
            inner: CollectingNotifier::default(),
            stalled: AtomicBool::new(false),
            reached: Arc::clone(&reached),
            release: Arc::clone(&release),
        };
        (stalling, reached, release)
    }
}

impl Notifier for Stalling {
    type Error = std::convert::Infallible;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, Self::Error> {
        if !self.stalled.swap(true, Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.inner.deliver(delivery).await
    }
}

/// A flusher stalls in its post past its lease; another takes the batch over and posts it; the
/// first then finishes its post (a second message: the webhook case, or a bot whose history
/// read came before the other's post) and learns at mark sent that the batch is no longer its
/// own: a non-retryable conflict, nothing recorded twice. The batch has one audit item, with the
/// takeover in its history, and every event is in it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flusher_that_outlives_its_lease_posts_again_and_then_conflicts() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "takeover").await;
    let store = dynamo(&client, &table);
    let matched = ingest_only(&store, "terraform-burst.jsonl").await;
    let due_at = at("2026-11-02T04:00:00Z");
    let (stalling, reached, release) = Stalling::new();
    let mut slow = engine(store.clone(), stalling, due_at);
    let first = tokio::spawn(async move {
        let result = slow.flush_due().await;
        (result, slow.notifier.inner.deliveries())
    });
    reached.notified().await;
    // The lease (5 minutes) ends; the next tick takes the batch over and sends everything.
    let mut takeover = engine(
        store.clone(),
        CollectingNotifier::default(),
        due_at + TimeDelta::minutes(10),
    );
    takeover
        .flush_due()
        .await
        .unwrap_or_else(|e| panic!("takeover: {e:?}"));
    let mut taken = takeover.notifier.deliveries();
    assert!(!taken.is_empty());
    release.notify_one();
    let (result, late) = first.await.unwrap_or_else(|e| panic!("join: {e}"));
    // Later ticks send what waited for the incident's first message.
    for tick in 2..=4 {
        let mut next = engine(
            store.clone(),
            CollectingNotifier::default(),
            due_at + TimeDelta::minutes(10 * tick),
        );
        next.flush_due()
            .await
            .unwrap_or_else(|e| panic!("tick {tick}: {e:?}"));
        taken.extend(next.notifier.deliveries());
    }
    let err = result
        .err()
        .unwrap_or_else(|| panic!("the stalled flusher did not conflict"));
    assert!(!err.is_retryable(), "{err:?}");
    assert!(format!("{err:?}").contains("no longer held"), "{err:?}");
    // Its post went out (the second message of that batch), then it stopped.
    assert_eq!(late.len(), 1);
    let late_key = late[0].key();
    assert_eq!(
        taken.iter().filter(|d| d.key() == late_key).count(),
        1,
        "the takeover posted the same batch"
    );
    let mut ids = window_ids(&taken);
    let listed = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), listed);
    assert_eq!(u64::try_from(ids.len()).unwrap_or(0), matched);
    assert_eq!(window_audit_items(&store).await, window_batches(&taken));
    let audit = store
        .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_default();
    let record = audit
        .iter()
        .find(|r| late_key.starts_with(&r.line.batch_id))
        .unwrap_or_else(|| panic!("no audit item for {late_key}"));
    assert!(
        record.history.iter().any(|h| h.status == "lease_expired"),
        "{:?}",
        record.history
    );
}

/// (c) A flush dies at each step; a rerun after the lease ends sends what was not sent. No
/// event is lost; a batch already posted is posted again at most once (exactly once needs
/// the notifier to confirm an earlier post: the Slack idempotency check of a later issue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_each_flush_step_loses_nothing() {
    let Some(client) = moto().await else { return };
    let name = "multi-account.jsonl";
    let due_at = at("2026-11-02T04:00:00Z");
    for step in [
        Crash::AfterClaim,
        Crash::BeforeMarkSent,
        Crash::AfterMarkSent,
    ] {
        let table = table(&client, "crash").await;
        let store = dynamo(&client, &table);
        let matched = ingest_only(&store, name).await;

        let crashing = crashing(store.clone(), step);
        let mut first = engine(crashing, CollectingNotifier::default(), due_at);
        let err = first.flush_due().await.err();
        assert!(
            err.as_ref().is_some_and(|e| !e.is_retryable()),
            "{step:?}: the crash surfaces"
        );
        let posted_before = first.notifier.deliveries();
        assert_eq!(
            posted_before.len(),
            usize::from(step != Crash::AfterClaim),
            "{step:?}"
        );

        // Before the lease ends, a rerun cannot take the crashed batch.
        let mut early = engine(store.clone(), CollectingNotifier::default(), due_at);
        early.flush_due().await.unwrap_or_else(|e| panic!("{e:?}"));
        let early_ids: BTreeSet<String> = early
            .notifier
            .deliveries()
            .iter()
            .map(|d| d.batch.id.key())
            .collect();
        let crashed_key = posted_before.first().map(|d| d.batch.id.key());
        if let Some(key) = &crashed_key {
            assert!(
                step == Crash::AfterMarkSent || !early_ids.contains(key),
                "{step:?}: taken while leased"
            );
        }

        let mut rerun = engine(
            store.clone(),
            CollectingNotifier::default(),
            due_at + TimeDelta::minutes(10),
        );
        rerun.flush_due().await.unwrap_or_else(|e| panic!("{e:?}"));
        let mut all = posted_before.clone();
        all.extend(early.notifier.deliveries());
        all.extend(rerun.notifier.deliveries());
        let mut unique = window_ids(&all);
        unique.dedup();
        assert_eq!(
            u64::try_from(unique.len()).unwrap_or(0),
            matched,
            "{step:?}: an event was lost"
        );
        let per_batch = batches(&all);
        for (key, sends) in &per_batch {
            // A reply's key is its window batch's key and `/reply/…`.
            let batch_key = key.split("/reply/").next().unwrap_or(key);
            let allowed =
                if step == Crash::BeforeMarkSent && crashed_key.as_deref() == Some(batch_key) {
                    2
                } else {
                    1
                };
            assert_eq!(
                sends.len(),
                allowed,
                "{step:?}: {key} sent {} times",
                sends.len()
            );
            assert!(
                sends.windows(2).all(|w| w[0] == w[1]),
                "{step:?}: {key} changed"
            );
        }
        let window_batches: BTreeSet<String> = all
            .iter()
            .filter(|d| d.batch.id.event.is_none())
            .map(|d| d.batch.id.key())
            .collect();
        check_crash_audit(&store, step, crashed_key, window_batches.len()).await;
    }
}

/// One audit item per window batch; a takeover after a crash shows in its history.
async fn check_crash_audit(
    store: &DynamoStore,
    step: Crash,
    crashed_key: Option<String>,
    batches: usize,
) {
    let audit = store
        .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_default();
    let window_audit = audit
        .iter()
        .filter(|r| r.line.kind != trailwatch::window::BatchKind::Immediate)
        .count();
    assert_eq!(window_audit, batches, "{step:?}: one audit item per batch");
    if step == Crash::AfterClaim || step == Crash::BeforeMarkSent {
        let key = crashed_key.clone().or_else(|| {
            audit
                .iter()
                .find(|r| r.history.iter().any(|h| h.status == "lease_expired"))
                .map(|r| r.line.batch_id.clone())
        });
        let record = audit
            .iter()
            .find(|r| Some(&r.line.batch_id) == key.as_ref());
        assert!(
            record.is_some_and(|r| r
                .history
                .first()
                .is_some_and(|h| h.status == "lease_expired")),
            "{step:?}: the takeover is in the history: {record:?}"
        );
    }
}

/// (c) The post went out but its answer was lost: the batch is released and posted once more,
/// with nothing lost and the failure in the audit history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_delivery_answer_resends_once() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "lostack").await;
    let store = dynamo(&client, &table);
    let matched = ingest_only(&store, "root-login-no-mfa.jsonl").await;
    let due_at = at("2026-11-02T04:00:00Z");
    let mut flusher = engine(store.clone(), LostAck::default(), due_at);
    flusher
        .flush_due()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(flusher.stats().send_failures, 1);
    flusher.clock.advance(TimeDelta::minutes(5));
    flusher
        .flush_due()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let all = flusher.notifier.inner.deliveries();
    let per_batch = batches(&all);
    assert_eq!(per_batch.values().filter(|v| v.len() == 2).count(), 1);
    assert!(per_batch.values().all(|v| v.len() <= 2));
    let mut ids = window_ids(&all);
    ids.dedup();
    assert_eq!(u64::try_from(ids.len()).unwrap_or(0), matched);
    let audit = store
        .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_default();
    assert!(audit.iter().any(|r| {
        r.history
            .iter()
            .any(|h| h.status == "failed" && h.reason.as_deref() == Some("injected failure"))
    }));
}

/// (d) Flushers racing on the same due windows, as concurrent tasks: each batch goes out
/// exactly once, whichever flusher wins it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_flushers_send_each_batch_once() {
    let Some(client) = moto().await else { return };
    for round in 0..3 {
        let table = table(&client, "race").await;
        let store = dynamo(&client, &table);
        let matched = ingest_only(&store, "multi-account.jsonl").await;
        let due_at = at("2026-11-02T04:00:00Z");
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let mut flusher = engine(store.clone(), CollectingNotifier::default(), due_at);
                tokio::spawn(
                    async move { flusher.flush_due().await.map(|_| flusher.notifier.take()) },
                )
            })
            .collect();
        let mut all = Vec::new();
        let mut winners = 0;
        for task in tasks {
            let sent = task
                .await
                .unwrap_or_else(|e| panic!("join: {e}"))
                .unwrap_or_else(|e| panic!("flush: {e:?}"));
            winners += usize::from(!sent.is_empty());
            all.extend(sent);
        }
        // A batch that lost a race on an incident's first message was given back; the next
        // tick sends it.
        let mut next = engine(
            store.clone(),
            CollectingNotifier::default(),
            due_at + TimeDelta::minutes(10),
        );
        next.flush_due().await.unwrap_or_else(|e| panic!("{e:?}"));
        all.extend(next.notifier.take());
        let per_batch = batches(&all);
        assert!(
            per_batch.values().all(|v| v.len() == 1),
            "round {round}: a batch sent twice: {:?}",
            per_batch
                .iter()
                .filter(|(_, v)| v.len() > 1)
                .collect::<Vec<_>>()
        );
        let ids = window_ids(&all);
        assert_eq!(
            u64::try_from(ids.len()).unwrap_or(0),
            matched,
            "round {round}"
        );
        assert!(winners >= 1);
    }
}

/// (d) Two claims on one window at the same instant: exactly one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_on_one_window_have_one_winner() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "claim").await;
    let store = dynamo(&client, &table);
    ingest_only(&store, "root-login-no-mfa.jsonl").await;
    let now = at("2026-11-02T04:00:00Z");
    let due = store.due(now).await.unwrap_or_default();
    let id = due
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("nothing due"));
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move { store.claim(&id, now).await })
        })
        .collect();
    let mut won = 0;
    for claim in claims {
        let claimed = claim.await.unwrap_or_else(|e| panic!("{e}"));
        won += usize::from(claimed.unwrap_or_else(|e| panic!("{e:?}")).is_some());
    }
    assert_eq!(won, 1);
    // The holder's lease keeps anyone else from claiming it until it ends (`due` may still
    // list it: the index does not carry the lease); then it is due and taken over.
    for listed in store.due(now).await.unwrap_or_default() {
        assert!(matches!(store.claim(&listed, now).await, Ok(None)));
    }
    let after = now + TimeDelta::minutes(6);
    assert_eq!(store.due(after).await.unwrap_or_default(), vec![id.clone()]);
    assert!(matches!(store.claim(&id, after).await, Ok(Some(_))));
}

/// The least audit line a store-level `mark_sent` takes.
fn audit_line(id: &BatchId) -> AuditLine {
    AuditLine {
        batch_id: id.key(),
        kind: trailwatch::window::BatchKind::Window,
        account: id.account.to_string(),
        account_name: None,
        window_start: String::new(),
        late: false,
        severity: trailwatch::Severity::Green,
        summary_by: trailwatch::delivery::SummaryBy::Offline,
        posted: trailwatch::delivery::PostedAs::Top,
        incident: None,
        events: Vec::new(),
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
        channel: None,
        ts: None,
    }
}

/// Add one event, claim it, add the rest while in flight, mark sent, claim the follow-up.
async fn steps<S: Store + Sync>(
    store: &S,
    first: &BatchEvent,
    rest: &[BatchEvent],
    now: DateTime<Utc>,
) -> Vec<(Added, Vec<String>)> {
    let mut out = Vec::new();
    let added = store
        .add(first.clone(), now)
        .await
        .ok()
        .unwrap_or(Added::Duplicate);
    let id = store.due(now).await.ok().unwrap_or_default().remove(0);
    let claimed = store
        .claim(&id, now)
        .await
        .ok()
        .flatten()
        .map(|c| c.events.len());
    assert_eq!(claimed, Some(1));
    out.push((added, Vec::new()));
    for event in rest {
        let added = store
            .add(event.clone(), now)
            .await
            .ok()
            .unwrap_or(Added::Duplicate);
        out.push((added, Vec::new()));
    }
    for listed in store.due(now).await.ok().unwrap_or_default() {
        assert!(
            matches!(store.claim(&listed, now).await, Ok(None)),
            "in flight: {listed:?}"
        );
    }
    let audit = audit_line(&id);
    store.mark_sent(&id, &audit, now).await.ok();
    let later = now + TimeDelta::minutes(3);
    let due = store.due(later).await.ok().unwrap_or_default();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].seq, 1);
    let claimed = store.claim(&due[0], later).await.ok().flatten();
    let ids = claimed
        .map(|c| c.events.iter().map(|e| e.event.id.to_string()).collect())
        .unwrap_or_default();
    out.push((Added::Duplicate, ids));
    out
}

/// Events added while a batch is in flight form the late follow-up, due once it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_added_during_a_flush_go_to_the_next_batch() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "inflight").await;
    let store = dynamo(&client, &table);
    let memory = MemoryStore::with_lease(settings().window, TimeDelta::minutes(5));
    let mut decoder = engine(
        MemoryStore::default(),
        CollectingNotifier::default(),
        at("2026-11-02T00:00:00Z"),
    );
    let mut events = decoder.decode(&read("late-event.jsonl"));
    events.sort_by_key(|e| e.event.time);
    let (first, rest) = events.split_at(1);
    let start = settings().window.start_of(first[0].event.time);
    let rest: Vec<BatchEvent> = rest
        .iter()
        .filter(|e| settings().window.start_of(e.event.time) == start)
        .cloned()
        .collect();
    assert!(!rest.is_empty());
    let now = at("2026-11-02T05:00:00Z");
    // Both stores, step by step: add one, claim, add the rest while in flight, send.
    let from_dynamo = steps(&store, &first[0], &rest, now).await;
    let from_memory = steps(&memory, &first[0], &rest, now).await;
    assert_eq!(from_dynamo, from_memory);
    let last = from_dynamo.last().map(|(_, ids)| ids.len());
    assert_eq!(last, Some(rest.len()));
}

/// Checkpoints never move backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_only_move_forward() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "ckpt").await;
    let store = dynamo(&client, &table);
    let ok = |r: Result<bool, DynamoError>| r.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(store.checkpoint("s", "shard-1").await.ok().flatten(), None);
    assert!(ok(store
        .set_checkpoint(
            "s",
            "shard-1",
            "49590338271490256608559692538361571095921575989136588898"
        )
        .await));
    assert!(!ok(store
        .set_checkpoint(
            "s",
            "shard-1",
            "49590338271490256608559692538361571095921575989136588897"
        )
        .await));
    assert!(!ok(store.set_checkpoint("s", "shard-1", "9").await));
    assert!(ok(store
        .set_checkpoint(
            "s",
            "shard-1",
            "49590338271490256608559692538361571095921575989136588898"
        )
        .await));
    assert!(ok(store
        .set_checkpoint(
            "s",
            "shard-1",
            "149590338271490256608559692538361571095921575989136588898"
        )
        .await));
    assert_eq!(
        store
            .checkpoint("s", "shard-1")
            .await
            .ok()
            .flatten()
            .as_deref(),
        Some("149590338271490256608559692538361571095921575989136588898")
    );
    assert_eq!(store.checkpoint("s", "shard-2").await.ok().flatten(), None);
    assert!(store.set_checkpoint("s", "shard-1", "12a").await.is_err());
}

/// Events through the Lambda's write path, on DynamoDB: they arrive in Pipe batches (at most
/// 500 records, `batching` of event time each: the Pipe's batching window), each ingested in
/// one call without flushing, and a tick flushes after each batch and an hour after the last.
/// Returns the deliveries, the engine's counts and the store.
async fn like_the_lambda(
    store: DynamoStore,
    inputs: &[Vec<u8>],
    batching: TimeDelta,
) -> (Vec<Delivery>, Stats, DynamoStore) {
    let mut engine = engine(
        store,
        CollectingNotifier::default(),
        at("2000-01-01T00:00:00Z"),
    )
    .with_flush_on_ingest(false);
    let mut events: Vec<BatchEvent> = inputs.iter().flat_map(|b| engine.decode(b)).collect();
    events.sort_by_key(|e| e.event.time);
    let mut rest = events.as_slice();
    while let Some(first) = rest.first() {
        let until = first.event.time + batching;
        let take = rest
            .iter()
            .take(500)
            .take_while(|e| e.event.time < until)
            .count();
        let (batch, after) = rest.split_at(take.max(1));
        rest = after;
        let last = batch.last().map_or(until, |e| e.event.time);
        engine.clock.set(last.max(engine.clock.now()));
        Box::pin(engine.ingest(batch.to_vec()))
            .await
            .unwrap_or_else(|err| panic!("ingest: {err:?}"));
        Box::pin(engine.flush_due())
            .await
            .unwrap_or_else(|err| panic!("flush: {err:?}"));
    }
    Box::pin(finish(&mut engine)).await;
    (engine.notifier.deliveries(), engine.stats(), engine.store)
}

/// Log files of sans-lab this test reads: all 1,477 (the README's figures; about two minutes on
/// moto), or the first `TRAILWATCH_WCU_FILES` of them.
fn sans_lab_files() -> usize {
    std::env::var("TRAILWATCH_WCU_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// (f) Write units per matched event on the Lambda's write path (README "State (DynamoDB)"),
/// with the Pipe's default batching window (5 s): the Terraform burst and one account's
/// everyday traffic (sans-lab), every matched event in exactly one delivery. The running-cost
/// issue asks for at most 3; this asserts 2.2, a little over what the commit-token writes give
/// (README: 1.69 and 1.99), so that a regression shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_units_per_event_on_the_lambdas_write_path() {
    let Some(client) = moto().await else { return };
    let mut inputs = vec![("terraform-burst", vec![read("terraform-burst.jsonl")])];
    if let Some(corpus) = common::corpus() {
        let mut files: Vec<_> = std::fs::read_dir(corpus.join("sans-lab"))
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.truncate(sans_lab_files());
        let bytes = files
            .iter()
            .map(|f| std::fs::read(f).unwrap_or_else(|err| panic!("{}: {err}", f.display())))
            .collect();
        inputs.push(("sans-lab", bytes));
    }
    for (name, bytes) in inputs {
        let table = table(&client, "wcu").await;
        let (deliveries, stats, store) = Box::pin(like_the_lambda(
            dynamo(&client, &table),
            &bytes,
            TimeDelta::seconds(5),
        ))
        .await;
        let writes = store.writes();
        #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
        let per_event = writes.units as f64 / stats.matched as f64;
        eprintln!(
            "{name}: matched={} deliveries={} write requests={} items={} units={} units/event={per_event:.2}",
            stats.matched,
            deliveries.len(),
            writes.requests,
            writes.items,
            writes.units
        );
        for (op, counts) in store.writes_by_op() {
            eprintln!("  {op}: {counts:?}");
        }
        let mut ids: Vec<String> = deliveries
            .iter()
            .filter(|d| d.batch.kind != trailwatch::window::BatchKind::Immediate)
            .flat_map(|d| d.batch.events.iter().map(|e| e.event.id.to_string()))
            .collect();
        let listed = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), listed, "{name}: an event in two deliveries");
        assert_eq!(
            u64::try_from(ids.len()).unwrap_or(0),
            stats.matched,
            "{name}"
        );
        assert!(stats.matched > 100, "{name}: {}", stats.matched);
        assert!(
            per_event <= 2.2,
            "{name}: {per_event:.2} write units per event"
        );
    }
}

/// `trailwatch audit --table T --since ...` lists the sent batches as JSON Lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_command_lists_sent_batches() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "cli").await;
    let (_, stats, _) = Box::pin(run_fixture(dynamo(&client, &table), "multi-account.jsonl")).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args([
            "audit",
            "--table",
            &table,
            "--since",
            "2026-11-02T00:00:00Z",
        ])
        .output()
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    // One line per flushed batch and per immediate alert.
    assert_eq!(u64::try_from(lines.len()).unwrap_or(0), stats.batches);
    assert!(
        lines
            .iter()
            .all(|l| l["batch_id"].is_string() && l["history"].is_array())
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args([
            "audit",
            "--table",
            &table,
            "--since",
            "2026-11-02T04:00:00Z",
        ])
        .output()
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "windows before --since are left out");
}

/// An HTTP server on 127.0.0.1 that answers every request with one canned DynamoDB error
/// and counts the requests.
async fn fake_dynamodb(status: u16, error_type: &'static str) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < end + 4 + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buffer.drain(..end + 4 + length);
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = format!(
                        "{{\"__type\":\"com.amazonaws.dynamodb.v20120810#{error_type}\",\"message\":\"injected\"}}"
                    );
                    let response = format!(
                        "HTTP/1.1 {status} Injected\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: fake\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

fn fake_client(endpoint: &str, attempts: u32) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "fake",
        ))
        .retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(std::time::Duration::from_millis(5)),
        )
        .build();
    Client::from_conf(config)
}

/// (e) Throttling and 5xx are retried by the client with backoff (every attempt reaches the
/// server) and then reported as retryable; an unexpected ConditionalCheckFailed and a
/// validation error are tried once and reported as not retryable. The engine passes the
/// verdict on, so the Lambda reports only retryable failures back to the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_client_errors_are_retried_only_when_retryable() {
    let cases = [
        (400, "ThrottlingException", true),
        (400, "ProvisionedThroughputExceededException", true),
        (500, "InternalServerError", true),
        (503, "ServiceUnavailable", true),
        (400, "ConditionalCheckFailedException", false),
        (400, "ValidationException", false),
    ];
    for (status, error_type, retryable) in cases {
        let (endpoint, count) = fake_dynamodb(status, error_type).await;
        let store = DynamoStore::new(
            fake_client(&endpoint, 3),
            DynamoSettings::new("t", settings().window),
        );
        let now = at("2026-11-02T04:00:00Z");
        let err = store
            .due(now)
            .await
            .err()
            .unwrap_or_else(|| panic!("{error_type}: no error"));
        assert_eq!(err.is_retryable(), retryable, "{error_type}: {err:?}");
        let attempts = count.swap(0, Ordering::SeqCst);
        assert_eq!(attempts, if retryable { 3 } else { 1 }, "{error_type}");
        if error_type == "ConditionalCheckFailedException" {
            assert!(matches!(err, DynamoError::Conflict { .. }), "{err:?}");
        }

        // Through the engine: the flush fails with the same verdict.
        let mut flusher = engine(store, CollectingNotifier::default(), now);
        let err = flusher
            .flush_due()
            .await
            .err()
            .unwrap_or_else(|| panic!("{error_type}: the engine hid the failure"));
        assert_eq!(err.is_retryable(), retryable, "{error_type}");
        assert!(!err.to_string().contains("injected"), "{err}");
    }
}

/// (e) A store wrapper that fails with a retryable error, then a non-retryable one: the
/// engine stops and says which, and nothing is sent or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_store_wrapper_surfaces_the_verdict() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "failing").await;
    let store = dynamo(&client, &table);
    let matched = ingest_only(&store, "late-event.jsonl").await;
    for retryable in [true, false] {
        // Every `due` fails.
        let failing = FaultyStore::new(store.clone()).always(Step::Due, Fault::Fail { retryable });
        let mut flusher = engine(
            failing,
            CollectingNotifier::default(),
            at("2026-11-02T05:00:00Z"),
        );
        let err = Box::pin(flusher.flush_due()).await.err();
        assert_eq!(err.map(|e| e.is_retryable()), Some(retryable));
        assert!(flusher.notifier.deliveries().is_empty());
    }
    let mut flusher = engine(
        store,
        CollectingNotifier::default(),
        at("2026-11-02T05:00:00Z"),
    );
    flusher
        .flush_due()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let ids = window_ids(&flusher.notifier.deliveries());
    assert_eq!(u64::try_from(ids.len()).unwrap_or(0), matched);
}

/// Fails every immediate alert when `fail_alerts`; window batches go through.
#[derive(Default)]
struct AlertOutage {
    inner: CollectingNotifier,
    fail_alerts: bool,
}

impl Notifier for AlertOutage {
    type Error = Injected;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, Injected> {
        if self.fail_alerts && delivery.batch.id.event.is_some() {
            return Err(Injected { retryable: true });
        }
        self.inner
            .deliver(delivery)
            .await
            .map_err(|never| match never {})
    }
}

/// The root-login fixture (every event is `immediate`), with immediate alerts going out or
/// failing: how many alerts went out, and the digest's `already_alerted` flag of each event.
async fn digest_flags<S: Store + Sync>(store: S, fail_alerts: bool) -> (usize, Vec<bool>) {
    let notifier = AlertOutage {
        fail_alerts,
        ..AlertOutage::default()
    };
    let mut engine = engine(store, notifier, at("2026-11-02T00:00:00Z"));
    let events = engine.decode(&read("root-login-no-mfa.jsonl"));
    drive(&mut engine, events).await;
    finish(&mut engine).await;
    let deliveries = engine.notifier.inner.deliveries();
    let alerts = deliveries
        .iter()
        .filter(|d| d.batch.id.event.is_some())
        .count();
    let flags = deliveries
        .iter()
        .filter(|d| d.batch.id.event.is_none())
        .flat_map(|d| d.batch.events.iter().map(|e| e.already_alerted))
        .collect();
    (alerts, flags)
}

/// A window leaves an event out only when its immediate alert went out: a failed alert
/// leaves it to its window (where people then see it first), on both stores. The fixture's
/// three root events are two incidents (the sign-in, and root use): two alerts, and the third
/// event goes with its window, in the root-use incident's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_leave_out_only_the_immediate_alerts_that_went_out() {
    let Some(client) = moto().await else { return };
    for alerts_fail in [false, true] {
        let memory = digest_flags(MemoryStore::default(), alerts_fail).await;
        let table = table(&client, "alerted").await;
        let dynamodb = Box::pin(digest_flags(dynamo(&client, &table), alerts_fail)).await;
        for (store, (alerts, flags)) in [("memory", memory), ("dynamodb", dynamodb)] {
            let expected_alerts = if alerts_fail { 0 } else { 2 };
            assert_eq!(alerts, expected_alerts, "{store}");
            assert_eq!(
                flags.len(),
                3 - alerts,
                "{store}: every other event with its window"
            );
            assert!(flags.iter().all(|f| !f), "{store}: {flags:?}");
        }
    }
}

// ---- Incidents (issue 14) on DynamoDB, posted by the bot to the fake Slack ----

const CHANNEL: &str = "C_OPS";

/// Security-group changes by one SSO session of one account (one incident), as
/// `(time, event name)`. The names all differ, so each event can be found in what Slack got.
const FIRST_WINDOW: [(&str, &str); 2] = [
    ("2026-11-02T03:00:20Z", "AuthorizeSecurityGroupIngress"),
    ("2026-11-02T03:01:10Z", "RevokeSecurityGroupIngress"),
];
const SECOND_WINDOW: [(&str, &str); 2] = [
    ("2026-11-02T03:05:30Z", "AuthorizeSecurityGroupEgress"),
    ("2026-11-02T03:06:40Z", "RevokeSecurityGroupEgress"),
];

/// The first record of multi-account.jsonl, once per change, with its time, name and ids.
fn sg_changes(changes: &[(&str, &str)]) -> Vec<u8> {
    let text = String::from_utf8(read("multi-account.jsonl")).unwrap_or_default();
    let line = text.lines().next().unwrap_or_default();
    let template: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|err| panic!("template record: {err:?}"));
    let mut out = String::new();
    for (time, name) in changes {
        let mut record = template.clone();
        record["id"] = format!("envelope-{name}").into();
        record["time"] = (*time).into();
        record["detail"]["eventTime"] = (*time).into();
        record["detail"]["eventName"] = (*name).into();
        record["detail"]["eventID"] = format!("event-{name}").into();
        out.push_str(&record.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

fn both_windows() -> Vec<u8> {
    [sg_changes(&FIRST_WINDOW), sg_changes(&SECOND_WINDOW)].concat()
}

fn bot(fake: &FakeSlack) -> SlackNotifier<Arc<ManualSleeper>> {
    let routes = SlackRoutes {
        default_channel: Some(CHANNEL.to_owned()),
        ..SlackRoutes::default()
    };
    fake.bot(TOKEN, routes, RetryPolicy::default())
}

/// Slack's top-level messages and thread replies.
fn top_and_replies(fake: &FakeSlack) -> (Vec<fake_slack::Posted>, Vec<fake_slack::Posted>) {
    fake.posts()
        .into_iter()
        .partition(|p| p.thread_ts.is_none())
}

/// The one message of `posts` naming each event of `changes`, by event name (every name in
/// exactly one message).
fn message_of(posts: &[fake_slack::Posted], changes: &[(&str, &str)]) -> Vec<String> {
    changes
        .iter()
        .map(|(_, name)| {
            let holders: Vec<&fake_slack::Posted> = posts
                .iter()
                .filter(|p| p.body.to_string().contains(name))
                .collect();
            assert_eq!(holders.len(), 1, "{name} in {} messages", holders.len());
            holders[0].ts.clone()
        })
        .collect()
}

/// The incident of [`FIRST_WINDOW`] and [`SECOND_WINDOW`].
fn incident_key() -> IncidentKey {
    let mut decoder = engine(
        MemoryStore::default(),
        CollectingNotifier::default(),
        at("2026-11-02T00:00:00Z"),
    );
    let events = decoder.decode(&sg_changes(&FIRST_WINDOW));
    IncidentKey::of(&events[0])
}

async fn stored_incident(store: &DynamoStore) -> Incident {
    let mut found = store
        .incidents(&[incident_key()])
        .await
        .unwrap_or_else(|err| panic!("incidents: {err:?}"));
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// The audit item of the window batch that the delivery key `key` (a digest's, or a
/// reply's `…/reply/…`) belongs to: one item per flushed batch, holding all its parts.
async fn window_audit(store: &DynamoStore, key: &str) -> trailwatch::adapters::dynamo::AuditRecord {
    let key = key.split("/reply/").next().unwrap_or(key);
    let audit = store
        .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_else(|err| panic!("audit: {err:?}"));
    audit
        .into_iter()
        .find(|r| r.line.batch_id == key)
        .unwrap_or_else(|| panic!("no audit item for {key}"))
}

/// Two engines, each with its own `DynamoStore` on one table and its own bot, flush the two
/// windows of one incident at once. A gate holds each one's claim of the incident until both
/// planned to open it, so the race is real: one claim wins and posts the only top-level
/// message; the other batch is released ("another flusher opened the same incident") and,
/// retried, goes as a reply in that message's thread. Each event is in exactly one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_engines_open_an_incident_once_and_the_other_replies_in_its_thread() {
    let Some(client) = moto().await else { return };
    let fake = FakeSlack::start(&[CHANNEL]).await;
    let table = table(&client, "incrace").await;
    assert_eq!(
        ingest_bytes_only(&dynamo(&client, &table), &both_windows()).await,
        4
    );
    let due_at = at("2026-11-02T04:00:00Z");
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    let store = |gate| FaultyStore::gated(dynamo(&client, &table), gate);
    let mut one = engine(store(Arc::clone(&gate)), bot(&fake), due_at);
    let mut two = engine(store(gate), bot(&fake), due_at);
    let (first, second) = tokio::time::timeout(
        Duration::from_mins(1),
        Box::pin(async { tokio::join!(one.flush_due(), two.flush_due()) }),
    )
    .await
    .unwrap_or_else(|err| panic!("both flushers try to open the incident: {err:?}"));
    first.unwrap_or_else(|err| panic!("flush one: {err:?}"));
    second.unwrap_or_else(|err| panic!("flush two: {err:?}"));
    let mut claims = [one.store.claims(), two.store.claims()].concat();
    claims.sort_unstable();
    assert_eq!(claims, [false, true], "both tried to open it, one won");

    // The loser's batch is due again a grace period later.
    for flusher in [&mut one, &mut two] {
        flusher.clock.advance(TimeDelta::minutes(10));
        flusher
            .flush_due()
            .await
            .unwrap_or_else(|err| panic!("retry: {err:?}"));
    }
    let (top, replies) = top_and_replies(&fake);
    assert_eq!(top.len(), 1, "one top-level message: {top:#?}");
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0].thread_ts.as_deref(), Some(top[0].ts.as_str()));
    let opener = top[0].batch_id().unwrap_or_else(|| panic!("batch id"));
    let (opening, continuing) = if opener.contains("T0300Z") {
        (FIRST_WINDOW, SECOND_WINDOW)
    } else {
        (SECOND_WINDOW, FIRST_WINDOW)
    };
    let posts = fake.posts();
    assert_eq!(
        message_of(&posts, &opening),
        [top[0].ts.clone(), top[0].ts.clone()]
    );
    assert_eq!(
        message_of(&posts, &continuing),
        [replies[0].ts.clone(), replies[0].ts.clone()]
    );
    let stats = [one.stats(), two.stats()];
    assert_eq!(stats.iter().map(|s| s.top_level).sum::<u64>(), 1);
    assert_eq!(stats.iter().map(|s| s.replies).sum::<u64>(), 1);

    let reply_key = replies[0].batch_id().unwrap_or_else(|| panic!("batch id"));
    let (loser, _) = reply_key
        .split_once("/reply/")
        .unwrap_or_else(|| panic!("a reply's key"));
    assert_ne!(loser, opener);
    // A batch of replies only is audited under its reply's key.
    let record = window_audit(&dynamo(&client, &table), &reply_key).await;
    assert!(
        record.history.iter().any(|h| h.status == "failed"
            && h.reason.as_deref() == Some("another flusher opened the same incident")),
        "{:?}",
        record.history
    );
    assert_eq!(record.line.posted, PostedAs::Reply);
}

/// The process dies after a thread reply went out and before it was recorded (the incident
/// write or marking the batch sent fails). Retried after its lease by a fresh engine and bot,
/// the batch finds the reply in the thread (`conversations.replies`) and posts nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_posted_before_a_crash_is_not_posted_again() {
    let Some(client) = moto().await else { return };
    for step in [Crash::BeforeSaveIncident, Crash::BeforeMarkSent] {
        let fake = FakeSlack::start(&[CHANNEL]).await;
        let table = table(&client, "increply").await;
        let store = dynamo(&client, &table);
        ingest_bytes_only(&store, &both_windows()).await;
        // The first window (due 03:07) opens the incident.
        let mut opener = engine(store.clone(), bot(&fake), at("2026-11-02T03:08:00Z"));
        assert_eq!(
            opener
                .flush_due()
                .await
                .unwrap_or_else(|err| panic!("flush: {err:?}")),
            1,
            "{step:?}"
        );

        // The second (due 03:12) only replies; the flusher dies after posting.
        let mut crashing = engine(
            crashing(store.clone(), step),
            bot(&fake),
            at("2026-11-02T03:13:00Z"),
        );
        let err = crashing.flush_due().await.err();
        assert!(
            err.is_some_and(|e| !e.is_retryable()),
            "{step:?}: the crash surfaces"
        );
        assert_eq!(top_and_replies(&fake).1.len(), 1, "{step:?}: replied");

        let mut rerun = engine(store.clone(), bot(&fake), at("2026-11-02T03:25:00Z"));
        rerun
            .flush_due()
            .await
            .unwrap_or_else(|err| panic!("rerun: {err:?}"));
        assert_eq!(rerun.stats().batches, 1, "{step:?}: the batch was retried");
        assert_eq!(rerun.stats().replies, 1, "{step:?}");

        let (top, replies) = top_and_replies(&fake);
        assert_eq!(top.len(), 1, "{step:?}");
        assert_eq!(replies.len(), 1, "{step:?}: the reply posted again");
        let posts = fake.posts();
        message_of(&posts, &[FIRST_WINDOW, SECOND_WINDOW].concat());
        let looked = fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("conversations.replies"))
            .count();
        assert_eq!(looked, 2, "{step:?}: each attempt looked in the thread");

        let reply_key = replies[0].batch_id().unwrap_or_else(|| panic!("batch id"));
        let record = window_audit(&store, &reply_key).await;
        assert_eq!(record.line.posted, PostedAs::Reply, "{step:?}");
        assert_eq!(record.event_count, 2, "{step:?}");
        let incident = stored_incident(&store).await;
        assert_eq!(incident.events, 4, "{step:?}: every event counted once");
        assert_eq!(incident.last_event, at(SECOND_WINDOW[1].0), "{step:?}");
    }
}

/// The records of a continuing incident are delivered again (a Kinesis retry: same event
/// ids), in order and reversed, after its reply went out: no new message, no new audit item.
/// On the way: the window whose events all continue the open incident posts nothing top
/// level (its audit says reply, in the first message's thread), and the incident item reads
/// back as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_of_a_continuing_incident_add_no_reply() {
    let Some(client) = moto().await else { return };
    let fake = FakeSlack::start(&[CHANNEL]).await;
    let table = table(&client, "incredeliver").await;
    let store = dynamo(&client, &table);
    let mut first = engine(store.clone(), bot(&fake), at("2026-11-02T00:00:00Z"));
    let events = first.decode(&both_windows());
    drive(&mut first, events).await;
    finish(&mut first).await;
    assert_eq!((first.stats().top_level, first.stats().replies), (1, 1));

    // All replies: nothing of the second window is top level.
    let (top, replies) = top_and_replies(&fake);
    assert_eq!((top.len(), replies.len()), (1, 1));
    let opener = top[0].batch_id().unwrap_or_else(|| panic!("batch id"));
    assert!(opener.contains("T0300Z"), "{opener}");
    let reply_key = replies[0].batch_id().unwrap_or_else(|| panic!("batch id"));
    let (second, _) = reply_key
        .split_once("/reply/")
        .unwrap_or_else(|| panic!("a reply's key"));
    assert!(second.contains("T0305Z"), "{reply_key}");
    assert!(
        fake.posts()
            .iter()
            .all(|p| p.batch_id().as_deref() != Some(second))
    );
    let record = window_audit(&store, &reply_key).await;
    assert_eq!(record.line.posted, PostedAs::Reply);
    assert_eq!(record.line.channel.as_deref(), Some(CHANNEL));
    assert_eq!(record.line.ts.as_deref(), Some(top[0].ts.as_str()));
    let ids: Vec<&str> = record.line.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "event-AuthorizeSecurityGroupEgress",
            "event-RevokeSecurityGroupEgress"
        ]
    );

    let read_back = incident_round_trip(&client, &table, &top[0], &opener, second).await;

    let posted = fake.posts();
    for (name, records) in [
        ("continuing", sg_changes(&SECOND_WINDOW)),
        ("all", both_windows()),
    ] {
        for reverse in [false, true] {
            let mut again = engine(store.clone(), bot(&fake), at("2026-11-02T06:00:00Z"));
            let mut events = again.decode(&records);
            if reverse {
                events.reverse();
            }
            let delivered = events.len() as u64;
            drive(&mut again, events).await;
            finish(&mut again).await;
            assert_eq!(again.stats().matched, 0, "{name}, reversed {reverse}");
            assert_eq!(again.stats().duplicates, delivered, "{name}");
            assert_eq!(
                fake.posts(),
                posted,
                "{name}, reversed {reverse}: posted again"
            );
        }
    }
    let audit = store
        .audit(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_else(|err| panic!("audit: {err:?}"));
    assert_eq!(audit.len(), 2, "one audit item per window");
    assert_eq!(
        stored_incident(&store).await,
        read_back,
        "nothing counted twice"
    );
}

/// The process dies after the digest that opened an incident went out and its state was
/// written, before the batch was marked sent. The retry posts nothing: not the digest again
/// (found in the channel), and not its own events as a reply under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_digest_posted_before_a_crash_is_not_repeated_in_its_thread() {
    let Some(client) = moto().await else { return };
    let fake = FakeSlack::start(&[CHANNEL]).await;
    let table = table(&client, "incopen").await;
    let store = dynamo(&client, &table);
    ingest_bytes_only(&store, &sg_changes(&FIRST_WINDOW)).await;
    let mut crashing = engine(
        crashing(store.clone(), Crash::BeforeMarkSent),
        bot(&fake),
        at("2026-11-02T03:08:00Z"),
    );
    let crashed = crashing.flush_due().await;
    assert!(
        crashed.is_err(),
        "the crash surfaces: {crashed:?} {:?}",
        crashing.stats()
    );
    assert!(
        stored_incident(&store).await.posted,
        "recorded before the crash"
    );

    let mut rerun = engine(store.clone(), bot(&fake), at("2026-11-02T03:20:00Z"));
    rerun
        .flush_due()
        .await
        .unwrap_or_else(|err| panic!("rerun: {err:?}"));
    assert_eq!(rerun.stats().batches, 1, "the batch was retried");
    let (top, replies) = top_and_replies(&fake);
    assert_eq!(top.len(), 1);
    assert!(
        replies.is_empty(),
        "its own events replied under it: {replies:#?}"
    );
    let incident = stored_incident(&store).await;
    assert_eq!(incident.events, 2, "every event counted once");
    assert_eq!(
        incident.parent.batch_key,
        top[0].batch_id().unwrap_or_else(|| panic!("batch id"))
    );
}

/// The incident item as stored after its first message `top` (batch `opener`) and one reply
/// (batch `second`);
/// then written over its version and read back by another store, one version on. Returns it.
async fn incident_round_trip(
    client: &Client,
    table: &str,
    top: &fake_slack::Posted,
    opener: &str,
    second: &str,
) -> Incident {
    let store = dynamo(client, table);
    let incident = stored_incident(&store).await;
    assert!(incident.posted);
    assert_eq!(incident.parent.batch_key, opener);
    assert_eq!(
        incident.parent.posts,
        [trailwatch::delivery::Posted {
            destination: CHANNEL.to_owned(),
            id: top.ts.clone(),
        }]
    );
    assert_eq!(incident.events, 4);
    let counted: Vec<(&str, bool)> = incident
        .counted
        .iter()
        .map(|c| (c.batch.as_str(), c.reminder))
        .collect();
    assert_eq!(counted, [(second, false)], "the reply's batch");
    assert_eq!(incident.opened_at, at(FIRST_WINDOW[0].0));
    assert_eq!(incident.last_event, at(SECOND_WINDOW[1].0));
    assert_eq!(incident.id, incident_key().incident_id(incident.opened_at));
    let now = at("2026-11-02T05:00:00Z");
    assert!(
        store
            .save_incident(&incident, now)
            .await
            .unwrap_or_else(|err| panic!("save: {err:?}"))
    );
    let read_back = stored_incident(&dynamo(client, table)).await;
    assert_eq!(
        read_back,
        Incident {
            version: incident.version + 1,
            ..incident.clone()
        }
    );
    assert!(
        !store
            .save_incident(&incident, now)
            .await
            .unwrap_or_else(|err| panic!("save: {err:?}")),
        "a write over a stale version is refused"
    );
    let other = IncidentKey {
        subject: "someone else".to_owned(),
        ..incident.key.clone()
    };
    assert_eq!(
        store
            .incidents(&[other])
            .await
            .unwrap_or_else(|err| panic!("incidents: {err:?}")),
        []
    );

    read_back
}

fn webhook(fake: &FakeSlack) -> SlackNotifier<Arc<ManualSleeper>> {
    SlackNotifier::new(
        Credential::Webhook(Secret::new(fake.webhook_url())),
        None,
        SlackRoutes::default(),
        RetryPolicy::default(),
        Arc::new(ManualSleeper::default()),
    )
    .unwrap_or_else(|err| panic!("webhook: {err}"))
}

/// An incoming webhook (no threads) on DynamoDB. The second window only continues the
/// incident the first opened: its events are held in the account's item, not posted. The
/// flusher dies after writing them, before marking the batch sent; the retry holds nothing
/// twice. Once the incident has been quiet for its dedup period, the held events go out in
/// one post of their own that names each once; the item is then empty and out of the due
/// index. Redelivering every record posts nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_held_events_once_in_a_post_of_their_own() {
    let Some(client) = moto().await else { return };
    let fake = FakeSlack::start(&[CHANNEL]).await;
    let table = table(&client, "held").await;
    let store = dynamo(&client, &table);
    ingest_bytes_only(&store, &both_windows()).await;
    let mut opener = engine(store.clone(), webhook(&fake), at("2026-11-02T03:08:00Z"));
    assert_eq!(
        opener.flush_due().await.unwrap_or_else(|e| panic!("{e:?}")),
        1
    );
    assert_eq!(fake.hooks().len(), 1, "the digest");

    let mut crashing = engine(
        crashing(store.clone(), Crash::AfterSaveHeld),
        webhook(&fake),
        at("2026-11-02T03:13:00Z"),
    );
    let crashed = crashing.flush_due().await;
    assert!(
        crashed.is_err(),
        "the crash surfaces: {crashed:?} {:?}",
        crashing.stats()
    );
    let mut rerun = engine(store.clone(), webhook(&fake), at("2026-11-02T03:25:00Z"));
    rerun
        .flush_due()
        .await
        .unwrap_or_else(|e| panic!("rerun: {e:?}"));
    assert_eq!((rerun.stats().batches, rerun.stats().held), (1, 1));
    assert_eq!(fake.hooks().len(), 1, "held, not posted");
    let account = trailwatch::event::AccountId::new("111111111111");
    let held = store
        .held(&account)
        .await
        .unwrap_or_else(|e| panic!("held: {e:?}"))
        .unwrap_or_else(|| panic!("nothing held"));
    assert_eq!(
        held.events(),
        2,
        "held once, though written twice: {held:?}"
    );
    let due = held.due_at.unwrap_or_else(|| panic!("no due time"));
    assert_eq!(due, at(SECOND_WINDOW[1].0) + TimeDelta::hours(1));
    let before = store.held_due(due - TimeDelta::seconds(1)).await;
    assert!(before.is_ok_and(|d| d.is_empty()), "due too early");

    let mut later = engine(store.clone(), webhook(&fake), due);
    assert_eq!(
        later.flush_due().await.unwrap_or_else(|e| panic!("{e:?}")),
        1
    );
    assert_eq!((later.stats().continuing, later.stats().top_level), (1, 1));
    let hooks = fake.hooks();
    assert_eq!(hooks.len(), 2);
    let text = hooks[1].to_string();
    for (_, name) in SECOND_WINDOW {
        assert_eq!(text.matches(name).count(), 1, "{name} in {text}");
    }
    assert!(text.contains("2 events"), "{text}");
    let left = store.held(&account).await.ok().flatten();
    assert!(left.is_some_and(|h| h.is_empty() && h.due_at.is_none()));
    let due_now = store.held_due(due + TimeDelta::days(1)).await;
    assert!(
        due_now.is_ok_and(|d| d.is_empty()),
        "still in the due index"
    );

    let mut again = engine(store.clone(), webhook(&fake), due + TimeDelta::hours(2));
    let events = again.decode(&both_windows());
    drive(&mut again, events).await;
    finish(&mut again).await;
    assert_eq!(again.stats().matched, 0);
    assert_eq!(fake.hooks().len(), 2, "posted again");
}

/// The held item's write is conditional on the version read, like an incident's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_events_are_written_only_over_the_version_read() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "heldcas").await;
    let store = dynamo(&client, &table);
    let account = trailwatch::event::AccountId::new("222222222222");
    let mut held = trailwatch::incident::Held::empty(account.clone());
    held.due_at = Some(at("2026-11-02T04:00:00Z"));
    let now = at("2026-11-02T03:00:00Z");
    assert!(
        store
            .save_held(&held, now)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
    );
    assert!(
        !store
            .save_held(&held, now)
            .await
            .unwrap_or_else(|e| panic!("{e:?}")),
        "a second write over version 0"
    );
    let read = store.held(&account).await.ok().flatten();
    assert_eq!(read.as_ref().map(|h| h.version), Some(1));
    let due = store
        .held_due(at("2026-11-02T04:00:00Z"))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(due, [account]);
    assert!(
        store
            .due(at("2027-01-01T00:00:00Z"))
            .await
            .is_ok_and(|d| d.is_empty()),
        "held items are not windows"
    );
}

/// Two flushers each take in a different first event of one immediate incident (two denied
/// `StopLogging` calls a few seconds apart, delivered to two Lambdas at once). A barrier makes
/// both reach their claim of the new incident before either writes it: one claim wins and
/// posts the immediate alert; the other's event is not alerted again but goes, with its
/// window, as a reply in the alert's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_immediate_alerts_of_one_incident_post_once() {
    let Some(client) = moto().await else { return };
    let fake = FakeSlack::start(&[CHANNEL]).await;
    let table = table(&client, "incimmediate").await;
    let store = dynamo(&client, &table);
    let bytes = std::fs::read(common::root().join("fixtures/incidents/stoplogging-denied.jsonl"))
        .unwrap_or_else(|err| panic!("fixture: {err}"));
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    let start = at("2026-11-02T03:00:00Z");
    let mut one = engine(
        FaultyStore::gated(store.clone(), Arc::clone(&gate)),
        bot(&fake),
        start,
    );
    let mut two = engine(FaultyStore::gated(store.clone(), gate), bot(&fake), start);
    let mut events = one.decode(&bytes);
    assert_eq!(events.len(), 3);
    let second = events.remove(1);
    let first = events.remove(0);
    for e in [&first, &second] {
        assert!(e.rule.immediate, "{}", e.rule.id);
    }
    let (a, b) = tokio::time::timeout(
        Duration::from_mins(1),
        Box::pin(async { tokio::join!(one.ingest(vec![first]), two.ingest(vec![second])) }),
    )
    .await
    .unwrap_or_else(|err| panic!("both alert at once: {err:?}"));
    a.unwrap_or_else(|err| panic!("one: {err:?}"));
    b.unwrap_or_else(|err| panic!("two: {err:?}"));
    let mut claims = [one.store.claims(), two.store.claims()].concat();
    claims.sort_unstable();
    assert_eq!(claims, [false, true], "both tried to open it, one won");
    let (top, replies) = top_and_replies(&fake);
    assert_eq!((top.len(), replies.len()), (1, 0), "one alert: {top:#?}");
    let stats = [one.stats(), two.stats()];
    assert_eq!(stats.iter().map(|s| s.immediate).sum::<u64>(), 1);
    assert_eq!(stats.iter().map(|s| s.immediate_in_thread).sum::<u64>(), 1);

    // The window (due 03:07) lists the event that was not alerted, in the alert's thread.
    let mut flusher = engine(store.clone(), bot(&fake), at("2026-11-02T03:10:00Z"));
    flusher
        .flush_due()
        .await
        .unwrap_or_else(|err| panic!("flush: {err:?}"));
    let (top, replies) = top_and_replies(&fake);
    assert_eq!((top.len(), replies.len()), (1, 1), "{replies:#?}");
    assert_eq!(replies[0].thread_ts.as_deref(), Some(top[0].ts.as_str()));
}

/// State items (pending alerts, heartbeats) are written only over the version read, and the
/// `due` index lists them by kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_items_are_versioned_and_due_by_kind() {
    use trailwatch::ports::{StateItem, StateKind};
    let Some(client) = moto().await else { return };
    let table = table(&client, "state").await;
    let store = dynamo(&client, &table);
    let now = at("2026-11-02T03:00:00Z");
    let source = StateItem {
        kind: StateKind::Source,
        key: "111111111111/us-east-1".to_owned(),
        body: r#"{"any":"json"}"#.to_owned(),
        due_at: Some(at("2026-11-02T03:15:00Z")),
        version: 0,
    };
    let alerts = StateItem {
        kind: StateKind::Alerts,
        key: "111111111111".to_owned(),
        body: "{}".to_owned(),
        due_at: Some(now),
        version: 0,
    };
    for item in [&source, &alerts] {
        assert!(
            store
                .save_state(item, now)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"))
        );
        assert!(
            !store
                .save_state(item, now)
                .await
                .unwrap_or_else(|e| panic!("{e:?}")),
            "a second write over version 0"
        );
    }
    let read = store
        .state(StateKind::Source, &source.key)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        read,
        Some(StateItem {
            version: 1,
            ..source.clone()
        })
    );
    let due = |kind, time| {
        let store = store.clone();
        async move {
            store
                .states_due(kind, at(time))
                .await
                .unwrap_or_else(|e| panic!("{e:?}"))
                .into_iter()
                .map(|s| s.key)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        due(StateKind::Source, "2026-11-02T03:14:59Z").await,
        Vec::<String>::new()
    );
    assert_eq!(
        due(StateKind::Source, "2026-11-02T03:15:00Z").await,
        [source.key.as_str()]
    );
    assert_eq!(
        due(StateKind::Alerts, "2026-11-02T03:00:00Z").await,
        [alerts.key.as_str()]
    );
    // Written away with no due time: out of the index.
    let cleared = StateItem {
        due_at: None,
        version: 1,
        ..alerts.clone()
    };
    assert!(
        store
            .save_state(&cleared, now)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
    );
    assert!(
        due(StateKind::Alerts, "2027-01-01T00:00:00Z")
            .await
            .is_empty()
    );
    assert!(
        store
            .due(at("2027-01-01T00:00:00Z"))
            .await
            .is_ok_and(|d| d.is_empty()),
        "state items are not windows"
    );
}

/// The Lambda handler on DynamoDB: ingest stores the immediate alert as pending and posts
/// nothing; the tick posts it before the windows; a source that stops beating gets one
/// notice, and one when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_on_dynamodb_defers_alerts_and_reports_silence_once() {
    use trailwatch::app::lambda::Handler;
    use trailwatch::delivery::Placement;
    let Some(client) = moto().await else { return };
    let table = table(&client, "lambda").await;
    let store = dynamo(&client, &table);
    let handler = Handler::new(engine(
        store.clone(),
        CollectingNotifier::default(),
        at("2026-11-02T03:20:00Z"),
    ))
    .with_metrics_output(Box::new(std::io::sink()));
    let fixture = std::fs::read(common::fixture("lambda").join("pipe-batch.json"))
        .unwrap_or_else(|err| panic!("{err}"));
    handler
        .handle(&fixture)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    handler
        .handle(&common::pipe(&[common::beat(
            "111111111111",
            "us-east-1",
            "2026-11-02T03:20:00Z",
        )]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        handler.engine().await.notifier.deliveries().is_empty(),
        "ingest posts nothing"
    );

    let tick = br#"{"trailwatch":"tick"}"#;
    handler.handle(tick).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = handler.engine().await.notifier.deliveries();
    assert_eq!(sent.len(), 3, "the alert, then both due windows");
    assert_eq!(sent[0].batch.kind, trailwatch::window::BatchKind::Immediate);

    for minute in ["03:36", "03:37"] {
        handler
            .engine()
            .await
            .clock
            .set(at(&format!("2026-11-02T{minute}:00Z")));
        handler.handle(tick).await.unwrap_or_else(|e| panic!("{e}"));
    }
    handler
        .handle(&common::pipe(&[common::beat(
            "111111111111",
            "us-east-1",
            "2026-11-02T03:38:00Z",
        )]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    handler.engine().await.clock.set(at("2026-11-02T03:38:30Z"));
    handler.handle(tick).await.unwrap_or_else(|e| panic!("{e}"));
    let notices: Vec<String> = handler
        .engine()
        .await
        .notifier
        .deliveries()
        .iter()
        .filter(|d| d.placement == Placement::Notice)
        .filter_map(|d| d.batch.id.event.clone())
        .collect();
    assert_eq!(notices, ["silent-us-east-1", "resumed-us-east-1"]);
}

/// DynamoDB JSON (as a scan answers, binary values in base64) as the SDK's value.
fn attribute(value: &serde_json::Value) -> aws_sdk_dynamodb::types::AttributeValue {
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    use base64::Engine as _;
    let (kind, inner) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .unwrap_or_else(|| panic!("not an attribute value: {value}"));
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let bytes = |v: &serde_json::Value| {
        aws_sdk_dynamodb::primitives::Blob::new(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_else(|err| panic!("base64: {err}")),
        )
    };
    let list = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
    match kind.as_str() {
        "S" => Av::S(text(inner)),
        "N" => Av::N(text(inner)),
        "B" => Av::B(bytes(inner)),
        "BOOL" => Av::Bool(inner.as_bool().unwrap_or_default()),
        "NULL" => Av::Null(true),
        "SS" => Av::Ss(list(inner).iter().map(text).collect()),
        "NS" => Av::Ns(list(inner).iter().map(text).collect()),
        "L" => Av::L(list(inner).iter().map(attribute).collect()),
        "M" => Av::M(
            inner
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
                .unwrap_or_default(),
        ),
        other => panic!("attribute type {other}"),
    }
}

/// Items an earlier release wrote are read by this one. `fixtures/dynamo/items-1579507.json`
/// holds every item commit 1579507 (the write path before the running-cost issue: version 1
/// event items as text, an id marker per event, incidents as plain JSON) wrote when its `send`
/// and `consume` ran on moto over two fixtures shifted to the wall clock
/// (`fixtures/dynamo/capture.py`): sent windows, their audit items and incidents, and one window
/// still open. Loaded into a table of this release, the open window's events go out once, every
/// matched event is then in exactly one audit item, and the same records redelivered add
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_written_by_the_previous_release_are_flushed_and_deduped() {
    let Some(client) = moto().await else { return };
    let table = table(&client, "previous").await;
    let text = std::fs::read_to_string(common::fixture("dynamo/items-1579507.json"))
        .unwrap_or_else(|err| panic!("{err}"));
    let capture: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let items = capture["items"].as_array().cloned().unwrap_or_default();
    assert!(items.len() > 100, "{} items", items.len());
    for item in &items {
        let item = item
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
            .unwrap_or_default();
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap_or_else(|err| panic!("put: {err:?}"));
    }
    let stored = items
        .iter()
        .filter(|i| i["sk"]["S"].as_str().is_some_and(|sk| sk.starts_with("E#")))
        .count();
    let captured = at(capture["captured_at"].as_str().unwrap_or_default());
    let store = dynamo(&client, &table);
    let mut engine = engine(store.clone(), CollectingNotifier::default(), captured);
    finish(&mut engine).await;
    let flushed = window_ids(&engine.notifier.deliveries());
    assert!(!flushed.is_empty(), "the open window went out");
    let open: BTreeSet<&str> = capture["open"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert!(flushed.iter().all(|id| open.contains(id.as_str())));
    // Every stored event in exactly one audit item: the earlier release's or this one's.
    let audit = store
        .audit(captured - TimeDelta::days(1), captured + TimeDelta::days(1))
        .await
        .unwrap_or_else(|err| panic!("audit: {err:?}"));
    let mut audited: Vec<&str> = audit
        .iter()
        .flat_map(|record| record.line.events.iter().map(|e| e.id.as_str()))
        .collect();
    let listed = audited.len();
    audited.sort_unstable();
    audited.dedup();
    assert_eq!(audited.len(), listed, "an event in two audit items");
    assert_eq!(audited.len(), stored, "every stored event audited");
    // The same records again: all duplicates (the earlier release's event items and markers).
    let records = common::fixture(&format!(
        "dynamo/{}",
        capture["records"].as_str().unwrap_or_default()
    ));
    let mut again = self::engine(
        store,
        CollectingNotifier::default(),
        captured + TimeDelta::hours(1),
    );
    let events = again.decode(&std::fs::read(records).unwrap_or_default());
    assert_eq!(events.len(), stored);
    drive(&mut again, events).await;
    finish(&mut again).await;
    assert_eq!(again.stats().matched, 0, "an event added twice");
    assert!(again.notifier.deliveries().is_empty(), "resent");
}

/// The terraform-burst fixture's matched events, decoded, in time order.
fn burst_events() -> Vec<BatchEvent> {
    let mut decoder = engine(
        MemoryStore::default(),
        CollectingNotifier::default(),
        at("2026-11-02T00:00:00Z"),
    );
    let mut events = decoder.decode(&read("terraform-burst.jsonl"));
    events.sort_by_key(|e| e.event.time);
    events
}

/// The first `count` events of the burst's first window, in time order.
fn first_window_events(count: usize) -> Vec<BatchEvent> {
    let all = burst_events();
    let start = settings().window.start_of(all[0].event.time);
    all.into_iter()
        .filter(|e| settings().window.start_of(e.event.time) == start)
        .take(count)
        .collect()
}

/// When the window of `event` is due.
fn due_of(event: &BatchEvent) -> DateTime<Utc> {
    settings()
        .window
        .due_at(settings().window.start_of(event.event.time))
}

/// A store writing one event item at a time, so a crash hook counts items exactly.
fn one_at_a_time(client: &Client, table: &str) -> DynamoStore {
    let mut settings = DynamoSettings::new(table, settings().window);
    settings.put_concurrency = 1;
    DynamoStore::new(client.clone(), settings)
}

/// Claim and mark sent, at the store, every batch due at `now`: each one's event ids.
async fn flush_store(store: &DynamoStore, now: DateTime<Utc>) -> Vec<Vec<String>> {
    let mut sent = Vec::new();
    for id in store
        .due(now)
        .await
        .unwrap_or_else(|e| panic!("due: {e:?}"))
    {
        let claimed = store
            .claim(&id, now)
            .await
            .unwrap_or_else(|e| panic!("claim: {e:?}"));
        let Some(claimed) = claimed else { continue };
        sent.push(
            claimed
                .events
                .iter()
                .map(|e| e.event.id.to_string())
                .collect(),
        );
        store
            .mark_sent(&id, &audit_line(&id), now)
            .await
            .unwrap_or_else(|e| panic!("mark sent: {e:?}"));
    }
    sent
}

/// Every event id of `events` once, sorted.
fn distinct_ids(events: &[BatchEvent]) -> Vec<String> {
    let set: BTreeSet<String> = events.iter().map(|e| e.event.id.to_string()).collect();
    set.into_iter().collect()
}

/// All ids sent, sorted, duplicates kept (so that an event sent twice shows).
fn all_sent(batches: &[Vec<String>]) -> Vec<String> {
    let mut ids: Vec<String> = batches.iter().flatten().cloned().collect();
    ids.sort();
    ids
}

/// An add stopped between its writes (after its intent, after one, half or all of its first
/// window's event items, before its commit), then the redelivery of the same records either at
/// once (the intent still young: the redelivery aborts it) or after a flush past the intent's
/// lease (the claim aborts it). No event is sent before an add of it committed, every event
/// is sent exactly once, and the redelivery stores what the stopped add left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_stopped_between_its_writes_loses_nothing_and_sends_nothing_twice() {
    let Some(client) = moto().await else { return };
    let events = burst_events();
    let first_window = settings().window.start_of(events[0].event.time);
    let in_first = events
        .iter()
        .filter(|e| settings().window.start_of(e.event.time) == first_window)
        .count();
    assert!(in_first > 4 && in_first < events.len(), "{in_first}");
    let ingest_at = events.last().map(|e| e.event.time).unwrap_or_default();
    let stops = [
        AddStep::Intent,
        AddStep::Items(1),
        AddStep::Items(in_first / 2),
        AddStep::Items(in_first - 1),
    ];
    for stop in stops {
        for redeliver_at_once in [true, false] {
            let case = format!("{stop:?}, redelivered at once: {redeliver_at_once}");
            let table = table(&client, "stopped").await;
            let store = one_at_a_time(&client, &table);
            // The first event is stored before: its window is due when the flusher comes.
            let first = store
                .add_all(events[..1].to_vec(), ingest_at)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e:?}"));
            assert!(matches!(first[0], Added::New { .. }), "{case}");
            let stopped = store
                .clone()
                .crashing_at(move |step| step == stop)
                .add_all(events.clone(), ingest_at)
                .await;
            assert!(
                matches!(stopped, Err(DynamoError::Crashed { step }) if step == stop),
                "{case}: {stopped:?}"
            );
            let mut sent = Vec::new();
            let redeliver_at = if redeliver_at_once {
                ingest_at
            } else {
                // Past the intent's lease: the claim aborts it and takes only what committed.
                let later = ingest_at + TimeDelta::hours(1);
                let batches = flush_store(&store, later).await;
                assert_eq!(
                    batches,
                    vec![vec![events[0].event.id.to_string()]],
                    "{case}: only the committed event goes out"
                );
                sent.extend(batches);
                later
            };
            let again = store
                .add_all(events.clone(), redeliver_at)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e:?}"));
            let new = again
                .iter()
                .filter(|a| matches!(a, Added::New { .. }))
                .count();
            // Everything but the first event was left to the redelivery (any items the stopped
            // add wrote are orphans, adopted).
            assert_eq!(new, events.len() - 1, "{case}");
            sent.extend(flush_store(&store, redeliver_at + TimeDelta::hours(2)).await);
            assert_eq!(all_sent(&sent), distinct_ids(&events), "{case}");
        }
    }
}

/// An add that stalls after writing its items: a flusher within the intent's lease waits for
/// it; one past the lease aborts the intent and sends only what had committed. The add's commit
/// then fails, it writes its events again under a new token, and they go out in the next
/// batch, late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_that_outlives_its_intent_writes_its_events_again() {
    let Some(client) = moto().await else { return };
    let events = first_window_events(6);
    // The window is due as the add starts.
    let ingest_at = due_of(&events[0]);
    let table = table(&client, "outlived").await;
    let store = one_at_a_time(&client, &table);
    store
        .add_all(events[..1].to_vec(), ingest_at)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let (reached_tx, reached) = std::sync::mpsc::channel::<()>();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let rest = events[1..].len();
    // Once: the add's second round, after the abort, goes through.
    let stalled = AtomicBool::new(false);
    let stalling = store.clone().crashing_at(move |step| {
        if step == AddStep::Items(rest) && !stalled.swap(true, Ordering::SeqCst) {
            let _ = reached_tx.send(());
            // Off the runtime's worker, so the flusher's requests go on meanwhile.
            tokio::task::block_in_place(|| {
                let _ = go_rx
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .recv();
            });
        }
        false
    });
    let adding = {
        let events = events[1..].to_vec();
        tokio::spawn(async move { stalling.add_all(events, ingest_at).await })
    };
    tokio::task::spawn_blocking(move || reached.recv())
        .await
        .unwrap_or_else(|e| panic!("join: {e}"))
        .unwrap_or_else(|e| panic!("stalled add: {e}"));
    // While the intent is young, a flusher waits for it: claiming now would take the
    // generation the add is writing, and its events would be left behind.
    let waiting = flush_store(&store, ingest_at + TimeDelta::seconds(30)).await;
    assert!(waiting.is_empty(), "{waiting:?}");
    let flushed_at = ingest_at + TimeDelta::hours(1);
    let first = flush_store(&store, flushed_at).await;
    assert_eq!(first, vec![vec![events[0].event.id.to_string()]]);
    go.send(()).unwrap_or_else(|e| panic!("{e}"));
    let added = adding
        .await
        .unwrap_or_else(|e| panic!("join: {e}"))
        .unwrap_or_else(|e| panic!("add: {e:?}"));
    assert!(
        added
            .iter()
            .all(|a| matches!(a, Added::New { batch, late: true } if batch.seq == 1)),
        "{added:?}"
    );
    let second = flush_store(&store, flushed_at + TimeDelta::hours(1)).await;
    assert_eq!(second.len(), 1);
    let mut sent = first;
    sent.extend(second);
    assert_eq!(all_sent(&sent), distinct_ids(&events));
}

/// Two adds of the same records at the same time (a record delivered twice, to two shards):
/// each event is stored once, whichever add wins it, and sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_adds_of_the_same_records_at_once_store_each_event_once() {
    let Some(client) = moto().await else { return };
    let events = burst_events();
    let ingest_at = events.last().map(|e| e.event.time).unwrap_or_default();
    for round in 0..3 {
        let table = table(&client, "twice").await;
        let mut settings = DynamoSettings::new(&table, settings().window);
        settings.put_concurrency = 4;
        let (a, b) = (
            DynamoStore::new(client.clone(), settings.clone()),
            DynamoStore::new(client.clone(), settings),
        );
        let (left, right) = tokio::join!(
            a.add_all(events.clone(), ingest_at),
            b.add_all(events.clone(), ingest_at)
        );
        let left = left.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        let right = right.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        // Each event is new to at least one of them (to both when one adopted the other's
        // item before its commit: still one item).
        assert!(
            left.iter()
                .zip(&right)
                .all(|(l, r)| matches!(l, Added::New { .. }) || matches!(r, Added::New { .. })),
            "round {round}"
        );
        let sent = flush_store(&a, ingest_at + TimeDelta::hours(1)).await;
        assert_eq!(all_sent(&sent), distinct_ids(&events), "round {round}");
    }
}

/// A flusher stalled past its lease while an event came into the window in flight; another
/// takes the batch over (with the new event). The stalled one wakes first: its mark sent is a
/// conflict and its release gives nothing back, so the takeover's lease holds and its batch,
/// with both events, is the one recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_flusher_cannot_finish_or_release_the_takeover_of_its_batch() {
    let Some(client) = moto().await else { return };
    let events = first_window_events(2);
    let table = table(&client, "takeover").await;
    let store = dynamo(&client, &table);
    let due_at = due_of(&events[0]);
    let ok = |what: &str, r: Result<(), DynamoError>| {
        r.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    };
    store
        .add_all(events[..1].to_vec(), due_at)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let id = store.due(due_at).await.unwrap_or_default().remove(0);
    let stalled = store
        .claim(&id, due_at)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .unwrap_or_else(|| panic!("claim"));
    store
        .add_all(events[1..].to_vec(), due_at + TimeDelta::minutes(1))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let after_lease = due_at + TimeDelta::minutes(6);
    let takeover = store
        .claim(&id, after_lease)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .unwrap_or_else(|| panic!("takeover"));
    assert_eq!(distinct_ids(&takeover.events), distinct_ids(&events));
    // The stalled flusher wakes.
    let marked = store
        .mark_sent(&stalled.id, &audit_line(&stalled.id), after_lease)
        .await;
    assert!(
        matches!(marked, Err(DynamoError::Conflict { .. })),
        "{marked:?}"
    );
    ok(
        "release",
        store.release(&stalled.id, after_lease, "stalled").await,
    );
    assert!(
        matches!(store.claim(&id, after_lease).await, Ok(None)),
        "the takeover's lease still holds"
    );
    ok(
        "mark sent",
        store
            .mark_sent(&takeover.id, &audit_line(&takeover.id), after_lease)
            .await,
    );
    assert!(
        flush_store(&store, after_lease + TimeDelta::hours(1))
            .await
            .is_empty()
    );
}

/// DynamoDB's TTL sweep deletes expired items in no order and may leave them for days. Here it
/// has taken a sent window's item and left its expired events: the window's records come again
/// (some of them) past the TTL. They are taken as new (their expired items written over) and
/// sent once; the expired events that did not come again are not sent a second time by the
/// window made again, whose tokens and generations start over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_the_sweep_left_are_taken_as_new_and_not_sent_again() {
    let Some(client) = moto().await else { return };
    let events = first_window_events(6);
    let start = settings().window.start_of(events[0].event.time);
    let due_at = settings().window.due_at(start);
    let table = table(&client, "swept").await;
    let store = dynamo(&client, &table);
    // Two adds: the window gave tokens 1 and 2.
    for part in [&events[..3], &events[3..]] {
        store
            .add_all(part.to_vec(), due_at)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
    let first = flush_store(&store, due_at + TimeDelta::hours(1)).await;
    assert_eq!(all_sent(&first), distinct_ids(&events));
    // The sweep deletes the window item only.
    let window = [
        (
            "pk".to_owned(),
            AttributeValue::S(format!(
                "W#{}#{}",
                events[0].event.account,
                start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        ),
        ("sk".to_owned(), AttributeValue::S("WIN".to_owned())),
    ];
    client
        .delete_item()
        .table_name(&table)
        .set_key(Some(window.into_iter().collect()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete: {e:?}"));
    let later = due_at + TimeDelta::days(8);
    // One of the second add's events comes again: the window made again commits token 1, the
    // token the first add's expired items carry; then one of those comes again too.
    for part in [&events[3..4], &events[..1]] {
        let again = store
            .add_all(part.to_vec(), later)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            again.iter().all(|a| matches!(a, Added::New { .. })),
            "{again:?}"
        );
    }
    let second = flush_store(&store, later + TimeDelta::hours(1)).await;
    let mut came_again = vec![events[0].clone(), events[3].clone()];
    came_again.sort_by_key(|e| e.event.id.to_string());
    assert_eq!(all_sent(&second), distinct_ids(&came_again));
}

/// A window due for longer than its events' TTL (nothing could post it for a week): its
/// events have expired, the claim finds none to send, and the engine closes the window
/// without a post rather than failing on it at every tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_whose_events_all_expired_unsent_closes_without_a_post() {
    let Some(client) = moto().await else { return };
    let events = first_window_events(3);
    let due_at = due_of(&events[0]);
    let table = table(&client, "expired").await;
    let store = dynamo(&client, &table);
    store
        .add_all(events, due_at)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let week_later = due_at + TimeDelta::days(8);
    let mut flusher = engine(store.clone(), CollectingNotifier::default(), week_later);
    Box::pin(flusher.flush_due())
        .await
        .unwrap_or_else(|e| panic!("flush: {e:?}"));
    assert!(flusher.notifier.deliveries().is_empty());
    assert!(
        store
            .due(week_later + TimeDelta::hours(1))
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .is_empty()
    );
}

/// The audit item of a batch is the last claim's: a flusher whose lease was taken over may have
/// written its audit item (between its check and the takeover's claim) before the takeover
/// marks the batch sent; the takeover's replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_takeovers_audit_item_replaces_the_stalled_flushers() {
    let Some(client) = moto().await else { return };
    let events: Vec<BatchEvent> = burst_events().into_iter().take(1).collect();
    let start = settings().window.start_of(events[0].event.time);
    let due_at = settings().window.due_at(start);
    let table = table(&client, "audit-takeover").await;
    let store = dynamo(&client, &table);
    let account = events[0].event.account.to_string();
    store
        .add_all(events, due_at)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let id = store.due(due_at).await.unwrap_or_default().remove(0);
    let stalled = store.claim(&id, due_at).await.ok().flatten();
    let stalled = stalled.unwrap_or_else(|| panic!("claim"));
    let after_lease = due_at + TimeDelta::minutes(6);
    let takeover = store.claim(&id, after_lease).await.ok().flatten();
    let takeover = takeover.unwrap_or_else(|| panic!("takeover"));
    // The audit item the stalled flusher wrote, had its put come just before the takeover.
    let key = [
        (
            "pk".to_owned(),
            AttributeValue::S(format!("AUDIT#{}", start.format("%Y-%m-%d"))),
        ),
        (
            "sk".to_owned(),
            AttributeValue::S(format!(
                "{}#{account}#00000",
                start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        ),
    ];
    let mut early: std::collections::HashMap<String, AttributeValue> =
        key.iter().cloned().collect();
    let claim_of = |id: &BatchId| AttributeValue::N(id.claim.unwrap_or_default().to_string());
    early.insert("a_claim".to_owned(), claim_of(&stalled.id));
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(early))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    store
        .mark_sent(&takeover.id, &audit_line(&takeover.id), after_lease)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let item = client
        .get_item()
        .table_name(&table)
        .set_key(Some(key.into_iter().collect()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .item
        .unwrap_or_default();
    assert_eq!(item.get("a_claim"), Some(&claim_of(&takeover.id)));
    assert!(item.contains_key("sent_at"), "{item:?}");
}
