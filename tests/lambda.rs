//! The Lambda handler on real payload files: Pipe and event-source batches, ticks, partial
//! failures from a store that fails on the Nth add, and the embedded metrics it writes.
#![cfg(feature = "cloud")]

mod common;

use common::Lines;
use common::faulty::{Fault, FaultyStore, Step};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use trailwatch::adapters::dynamo::{DynamoSettings, DynamoStore, create_table};
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::app::lambda::{Handler, LambdaError, Response};
use trailwatch::engine::Engine;
use trailwatch::ports::Store;
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::{BatchKind, ManualClock};

const PIPE_IDS: [&str; 9] = [
    "shardId-000000000000:49656985223454529390738410093430398213578513251553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513261553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513271553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513281553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513291553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513301553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513311553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513321553034240",
    "shardId-000000000000:49656985223454529390738410093430398213578513331553034240",
];

/// Matched records of both batches, in shard order (r0, r3, r5, r7, r8): add #n is `MATCHED[n-1]`.
const MATCHED: [usize; 5] = [0, 3, 5, 7, 8];
const MATCHED_EVENT_IDS: [&str; 5] = [
    "7bc95f70-5b35-59a4-a015-7aa6fb64a578",
    "be032675-c3e8-58d6-a8ae-3f5944a53c23",
    "95429998-f05d-5de5-b407-f58ef4c7ec72",
    "d13157c8-788b-5379-a598-9b9a036606c1",
    "183dd520-2f9a-5fc2-85d0-e99dce810941",
];

/// The event ids of `deliveries`, sorted, each as often as it was delivered.
fn delivered_ids(deliveries: &[trailwatch::ports::Delivery]) -> Vec<String> {
    let mut ids: Vec<String> = deliveries
        .iter()
        .flat_map(|d| d.batch.events.iter().map(|e| e.event.id.to_string()))
        .collect();
    ids.sort();
    ids
}

/// [`MATCHED_EVENT_IDS`], sorted.
fn matched_ids() -> Vec<String> {
    let mut ids: Vec<String> = MATCHED_EVENT_IDS.iter().map(|s| (*s).to_owned()).collect();
    ids.sort();
    ids
}

fn sequence(index: usize) -> &'static str {
    PIPE_IDS[index].split_once(':').map_or("", |(_, seq)| seq)
}

fn payload(name: &str) -> Vec<u8> {
    let path = common::fixture("lambda").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_else(|err| panic!("{text}: {err}"))
}

/// The in-memory store, failing the Nth `add` (counting from 1) once.
fn failing_add(nth: u32, retryable: bool) -> FaultyStore<MemoryStore> {
    FaultyStore::new(MemoryStore::default()).at(Step::Add, nth, Fault::Fail { retryable })
}

type TestHandler<S> = Handler<S, OfflineSummarizer, CollectingNotifier, ManualClock>;

/// Wall clock: 03:20, when the 03:00 windows (due 03:12) are due: only a tick may send them.
fn handler<S: Store + Sync>(store: S) -> (TestHandler<S>, Lines) {
    let settings = common::settings(Lang::En, chrono_tz::UTC);
    let engine = Engine::new(
        RulePack::builtin(),
        settings,
        store,
        OfflineSummarizer,
        CollectingNotifier::default(),
        ManualClock::new(at("2026-11-02T03:20:00Z")),
    );
    let lines = Lines::default();
    let handler = Handler::new(engine).with_metrics_output(Box::new(lines.clone()));
    (handler, lines)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"))
        .block_on(future)
}

fn response_json(response: &Response) -> Value {
    serde_json::to_value(response).unwrap_or_default()
}

fn no_failures() -> Value {
    json!({"batchItemFailures": []})
}

#[test]
fn pipe_batch_ingests_quarantines_bad_records_and_flushes_only_on_tick() {
    block_on(async {
        let (handler, lines) = handler(MemoryStore::default());
        let response = handler
            .handle(&payload("pipe-batch.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(response_json(&response), no_failures());
        {
            let engine = handler.engine().await;
            let stats = engine.stats();
            assert_eq!(stats.read, 9);
            assert_eq!(stats.quarantined, 2, "{:?}", engine.quarantined());
            assert_eq!(stats.matched, 5);
            // Ingest posts nothing, not even the immediate alert: it waits for the tick.
            assert_eq!(stats.immediate, 0);
            assert_eq!(stats.queued_alerts, 1);
            assert!(engine.notifier.deliveries().is_empty());
            let reasons: Vec<&str> = engine
                .quarantined()
                .iter()
                .map(|q| q.reason.as_str())
                .collect();
            assert!(
                reasons[0].starts_with("Kinesis data is not base64"),
                "{reasons:?}"
            );
            assert!(
                reasons[1].starts_with("not a CloudTrail record"),
                "{reasons:?}"
            );
        }
        let ingest = &lines.values()[0];
        assert_eq!(ingest["RecordsIn"], 9.0);
        assert_eq!(ingest["Quarantined"], 2.0);
        assert_eq!(ingest["EventsMatched"], 5.0);
        assert_eq!(ingest["RecordsRetried"], 0.0);
        assert_eq!(ingest["AlertsQueued"], 1.0);
        assert_eq!(
            ingest["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "trailwatch"
        );

        let response = handler
            .handle(&payload("tick.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        // The pending alert first, then the 03:00 windows of 111111111111 and 222222222222
        // (due at 03:12).
        assert_eq!(response_json(&response), json!({"flushed": 3}));
        let engine = handler.engine().await;
        let sent = engine.notifier.deliveries();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].batch.kind, BatchKind::Immediate);
        assert_eq!(engine.stats().immediate, 1);
        // Every matched event in exactly one delivery: its immediate alert or its window's.
        assert_eq!(delivered_ids(&sent), matched_ids());
        let tick = &lines.values()[1];
        assert_eq!(tick["BatchesSent"], 3.0);
        assert!(
            tick["FlushLatency"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{tick}"
        );
    });
}

#[test]
fn event_source_batch_gives_the_same_result() {
    block_on(async {
        let (handler, _) = handler(MemoryStore::default());
        let response = handler
            .handle(&payload("esm-batch.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(response_json(&response), no_failures());
        let engine = handler.engine().await;
        assert_eq!(
            (
                engine.stats().read,
                engine.stats().quarantined,
                engine.stats().matched
            ),
            (9, 2, 5)
        );
    });
}

#[test]
fn scheduled_rule_event_is_a_tick_and_unknown_payloads_fail() {
    block_on(async {
        let (handler, _) = handler(MemoryStore::default());
        let response = handler.handle(&payload("scheduled-event.json")).await;
        assert_eq!(
            response.ok().map(|r| response_json(&r)),
            Some(json!({"flushed": 0}))
        );
        let scheduler = handler.handle(br#"{"source": "aws.scheduler"}"#).await;
        assert!(scheduler.is_ok());
        for bad in [&b"{\"hello\": 1}"[..], b"42", b"", b"[not json"] {
            let err = handler.handle(bad).await.err();
            assert!(
                matches!(err, Some(LambdaError::UnknownPayload(_))),
                "{}: {err:?}",
                String::from_utf8_lossy(bad)
            );
        }
    });
}

#[test]
fn retryable_failure_on_nth_add_reports_exactly_that_pipe_record() {
    for n in 1..=MATCHED.len() {
        block_on(async {
            let (handler, lines) = handler(failing_add(u32::try_from(n).unwrap_or(u32::MAX), true));
            let response = handler
                .handle(&payload("pipe-batch.json"))
                .await
                .unwrap_or_else(|err| panic!("{err}"));
            let record = MATCHED[n - 1];
            assert_eq!(
                response_json(&response),
                json!({"batchItemFailures": [{"itemIdentifier": PIPE_IDS[record]}]}),
                "add #{n}"
            );
            // Records after the failing one were not processed: they come back with it.
            let engine = handler.engine().await;
            assert_eq!(engine.stats().matched, u64::try_from(n - 1).unwrap_or(0));
            let metrics = &lines.values()[0];
            assert_eq!(
                metrics["RecordsRetried"],
                f64::from(u32::try_from(PIPE_IDS.len() - record).unwrap_or(0))
            );
        });
    }
}

#[test]
fn retryable_failure_in_event_source_batch_reports_the_sequence_number() {
    block_on(async {
        let (handler, _) = handler(failing_add(3, true));
        let response = handler
            .handle(&payload("esm-batch.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            response_json(&response),
            json!({"batchItemFailures": [{"itemIdentifier": sequence(5)}]})
        );
    });
}

#[test]
fn redelivery_after_a_failure_adds_nothing_twice() {
    block_on(async {
        let (handler, _) = handler(failing_add(4, true));
        let response = handler
            .handle(&payload("pipe-batch.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            response_json(&response),
            json!({"batchItemFailures": [{"itemIdentifier": PIPE_IDS[7]}]})
        );
        // The Pipe delivers the whole batch again (it may): stored events are duplicates.
        let response = handler
            .handle(&payload("pipe-batch.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(response_json(&response), no_failures());
        let engine = handler.engine().await;
        assert_eq!(engine.stats().matched, 5);
        assert_eq!(engine.stats().duplicates, 3);
        // One alert pending only, although the root login was delivered twice.
        assert_eq!(engine.stats().queued_alerts, 1);
        engine.clock.set(at("2026-11-02T04:00:00Z"));
        drop(engine);
        handler
            .handle(&payload("tick.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        let engine = handler.engine().await;
        assert_eq!(engine.stats().immediate, 1);
        assert_eq!(
            delivered_ids(&engine.notifier.deliveries()),
            matched_ids(),
            "every matched event in exactly one batch"
        );
    });
}

#[test]
fn non_retryable_failure_is_reported_and_counted() {
    block_on(async {
        let (handler, lines) = handler(failing_add(2, false));
        let response = handler
            .handle(&payload("pipe-batch.json"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        // Reported like a retryable one, so the Pipe's retries and dead-letter queue keep it.
        assert_eq!(
            response_json(&response),
            json!({"batchItemFailures": [{"itemIdentifier": PIPE_IDS[MATCHED[1]]}]})
        );
        assert_eq!(handler.engine().await.stats().matched, 1);
        assert_eq!(lines.values()[0]["StoreRejected"], 1.0);
    });
}

#[test]
fn a_failing_record_without_an_id_fails_the_whole_invocation() {
    block_on(async {
        let (handler, _) = handler(failing_add(1, true));
        let mut batch: Vec<Value> =
            serde_json::from_slice(&payload("pipe-batch.json")).unwrap_or_default();
        if let Some(record) = batch[0].as_object_mut() {
            record.remove("eventID");
        }
        let bytes = serde_json::to_vec(&batch).unwrap_or_default();
        let err = handler.handle(&bytes).await.err();
        assert!(
            matches!(
                err,
                Some(LambdaError::Unidentifiable {
                    field: "eventID",
                    ..
                })
            ),
            "{err:?}"
        );
    });
}

#[test]
fn payload_survives_the_runtime_deserializer() {
    // lambda_runtime deserializes the body with serde_path_to_error over serde_json; the
    // handler takes `Box<RawValue>` from it and hands the text over untouched.
    for name in ["pipe-batch.json", "esm-batch.json", "tick.json"] {
        let bytes = payload(name);
        let raw: Box<serde_json::value::RawValue> =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
                .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(raw.get().as_bytes(), bytes.trim_ascii_end(), "{name}");
    }
}

/// The handler on DynamoDB (moto): a Pipe batch with two undecodable records, the same batch
/// redelivered, the same records again as an event-source-mapping batch, then ticks. Every
/// matched event is in exactly one delivery, each sent batch has its audit item, and the
/// second tick sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_pipe_redelivery_event_source_and_ticks() {
    if common::moto_endpoint().is_none() {
        return;
    }
    let client = DynamoStore::client_from_env().await;
    let table = format!("tw-lambda-{}", std::process::id());
    create_table(&client, &table)
        .await
        .unwrap_or_else(|err| panic!("create table: {err:?}"));
    let settings = common::settings(Lang::En, chrono_tz::UTC);
    let store = DynamoStore::new(client, DynamoSettings::new(&table, settings.window));
    let (handler, _) = handler(store);
    for (name, matched, duplicates) in [
        ("pipe-batch.json", 5, 0),
        ("pipe-batch.json", 5, 5),
        ("esm-batch.json", 5, 10),
    ] {
        let response = handler
            .handle(&payload(name))
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(response_json(&response), no_failures(), "{name}");
        let stats = handler.engine().await.stats();
        assert_eq!(
            (stats.matched, stats.duplicates),
            (matched, duplicates),
            "{name}"
        );
    }
    assert_eq!(handler.engine().await.stats().quarantined, 6, "2 a batch");
    let response = handler
        .handle(&payload("tick.json"))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(response_json(&response), json!({"flushed": 3}));
    let response = handler
        .handle(&payload("tick.json"))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        response_json(&response),
        json!({"flushed": 0}),
        "nothing twice"
    );
    let engine = handler.engine().await;
    let sent = engine.notifier.deliveries();
    assert_eq!(
        delivered_ids(&sent),
        matched_ids(),
        "every matched event in exactly one delivery"
    );
    let audit = engine
        .store
        .audit(at("2026-11-02T00:00:00Z"), at("2026-11-03T00:00:00Z"))
        .await
        .unwrap_or_else(|err| panic!("audit: {err:?}"));
    let keys: std::collections::BTreeSet<String> =
        audit.iter().map(|a| a.line.batch_id.clone()).collect();
    let sent_keys: std::collections::BTreeSet<String> =
        sent.iter().map(|d| d.batch.id.key()).collect();
    assert_eq!(keys, sent_keys, "an audit item per sent batch");
}
