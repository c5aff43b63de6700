//! `send` and `consume` against Kinesis on moto server (`AWS_ENDPOINT_URL`); skipped without it.
#![cfg(feature = "cloud")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use trailwatch::adapters::kinesis::Kinesis;
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::app::consume::{Options, consume};
use trailwatch::app::send::entries;
use trailwatch::engine::Engine;
use trailwatch::ports::{Checkpoints, Delivery};
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::{BatchKind, ManualClock};

/// moto's endpoint; skipped without it, failing when `TRAILWATCH_MOTO` says it must run.
fn endpoint() -> Option<String> {
    common::moto_endpoint()
}

fn stream_name(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "trailwatch-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"))
        .block_on(future)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// Event ids of the window and late batches (immediate alerts are listed again in their window).
fn batched_ids(deliveries: &[Delivery]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for delivery in deliveries
        .iter()
        .filter(|d| d.batch.kind != BatchKind::Immediate)
    {
        for event in &delivery.batch.events {
            *ids.entry(event.event.id.to_string()).or_insert(0) += 1;
        }
    }
    ids
}

#[test]
fn send_then_consume_delivers_every_matched_event_once_and_resumes() {
    if endpoint().is_none() {
        return;
    }
    let files = ["multi-account.jsonl", "duplicates.jsonl"];
    let mut sent = Vec::new();
    for file in files {
        assert_eq!(entries(&read(file), &mut sent), 0, "{file} decodes cleanly");
    }
    let settings = common::settings(Lang::En, chrono_tz::UTC);
    let paths = files.map(common::fixture);
    let replayed = common::replay_files(&[&paths[0], &paths[1]], settings.clone());
    block_on(async {
        let kinesis = Kinesis::from_env().await;
        let stream = stream_name("consume");
        // Three shards: MD5 puts all three fixture accounts in the lower half of the hash
        // range, so two shards would leave one empty; with three, two shards carry records.
        kinesis
            .create_stream(&stream, 3)
            .await
            .unwrap_or_else(|err| panic!("create: {err}"));
        let put = kinesis
            .put_records(&stream, &sent)
            .await
            .unwrap_or_else(|err| panic!("put: {err}"));
        assert_eq!(put.records, sent.len());

        let window = settings.window;
        let mut engine = Engine::new(
            RulePack::builtin(),
            settings,
            MemoryStore::new(window),
            OfflineSummarizer,
            CollectingNotifier::default(),
            ManualClock::new("2026-11-03T00:00:00Z".parse().unwrap_or_default()),
        )
        .with_flush_on_ingest(false);
        let options = Options {
            stream: stream.clone(),
            until_idle: Some(Duration::from_secs(2)),
        };
        let report = consume(&mut engine, &kinesis, &options)
            .await
            .unwrap_or_else(|err| panic!("consume: {err:#}"));
        assert_eq!(report.shards, 3);
        assert_eq!(report.records, u64::try_from(sent.len()).unwrap_or(0));
        let first = engine.notifier.take();
        let ids = batched_ids(&first);
        assert!(
            ids.values().all(|n| *n == 1),
            "an event in two batches: {ids:?}"
        );
        let expected = batched_ids(&replayed.deliveries);
        assert_eq!(
            ids.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "the same matched events as a replay of the files"
        );
        assert_eq!(engine.stats().duplicates, replayed.stats.duplicates);
        let mut checkpointed = Vec::new();
        for shard in kinesis.shards(&stream).await.unwrap_or_default() {
            if let Ok(Some(_)) = engine.store.checkpoint(&stream, &shard).await {
                checkpointed.push(shard);
            }
        }
        assert_eq!(
            checkpointed,
            ["shardId-000000000000", "shardId-000000000001"],
            "the shards that carry records"
        );

        // Again: it resumes after the checkpoints and reads nothing.
        let again = consume(&mut engine, &kinesis, &options)
            .await
            .unwrap_or_else(|err| panic!("consume again: {err:#}"));
        assert_eq!((again.shards, again.records), (3, 0));
        assert!(engine.notifier.take().is_empty());
    });
}

#[test]
fn cli_send_and_consume() {
    if endpoint().is_none() {
        return;
    }
    let stream = stream_name("cli");
    let table = format!("{stream}-table");
    block_on(async {
        Kinesis::from_env()
            .await
            .create_stream(&stream, 1)
            .await
            .unwrap_or_else(|err| panic!("create: {err}"));
        let dynamo = trailwatch::adapters::dynamo::DynamoStore::client_from_env().await;
        trailwatch::adapters::dynamo::create_table(&dynamo, &table)
            .await
            .unwrap_or_else(|err| panic!("create table: {err}"));
    });
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(args)
            .output()
            .unwrap_or_else(|err| panic!("cannot run trailwatch: {err}"))
    };
    let file = common::fixture("multi-account.jsonl");
    let out = run(&[
        "send",
        "--stream",
        &stream,
        file.to_str().unwrap_or_default(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("send: records=31 quarantined=0"),
        "{stderr}"
    );

    let consume = [
        "consume",
        "--stream",
        &stream,
        "--table",
        &table,
        "--until-idle",
        "1",
    ];
    let out = run(&consume);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("records=31"), "{stderr}");
    // The fixture's windows (2026-11-02) are long due by the wall clock: six window batches,
    // each a digest, thread replies of continuing incidents, or both.
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{l}: {err}")))
        .collect();
    let windows: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["kind"] == "window")
        .filter_map(|l| l["batch"].as_str())
        .map(|key| key.split("/reply/").next().unwrap_or(key))
        .collect();
    assert_eq!(windows.len(), 6, "{lines:?}");

    // A second run resumes from the checkpoints in the table: nothing new is read or sent.
    let out = run(&consume);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("records=0"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The audit lists every batch the first run sent.
    let out = run(&[
        "audit",
        "--table",
        &table,
        "--since",
        "2026-11-01T00:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = String::from_utf8_lossy(&out.stdout);
    // One audit line per window batch (all its parts) and per immediate alert.
    let sent: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l["batch"].as_str())
        .map(|key| key.split("/reply/").next().unwrap_or(key))
        .collect();
    assert_eq!(audit.lines().count(), sent.len(), "{audit}");

    let out = run(&[
        "send",
        "--stream",
        "no-such-stream",
        file.to_str().unwrap_or_default(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ResourceNotFound"), "{stderr}");
}

/// `consume` dies after ingesting a page and before writing its checkpoint (the set fails as a
/// crash would end it): the error surfaces, nothing is checkpointed, and a restart on the same
/// table reads the page again. Its events are duplicates by then, so every matched event still
/// goes out in exactly one batch, and the checkpoints end at the last record of each shard.
#[test]
fn a_crash_between_a_page_and_its_checkpoint_reads_the_page_again() {
    use common::faulty::{Fault, FaultyStore, Step};
    if endpoint().is_none() {
        return;
    }
    let mut sent = Vec::new();
    assert_eq!(entries(&read("multi-account.jsonl"), &mut sent), 0);
    let settings = common::settings(Lang::En, chrono_tz::UTC);
    let replayed =
        common::replay_files(&[&common::fixture("multi-account.jsonl")], settings.clone());
    block_on(async {
        let kinesis = Kinesis::from_env().await;
        let stream = stream_name("crash");
        kinesis
            .create_stream(&stream, 1)
            .await
            .unwrap_or_else(|err| panic!("create: {err}"));
        kinesis
            .put_records(&stream, &sent)
            .await
            .unwrap_or_else(|err| panic!("put: {err}"));
        let window = settings.window;
        let engine = |store| {
            Box::new(
                Engine::new(
                    RulePack::builtin(),
                    settings.clone(),
                    store,
                    OfflineSummarizer,
                    CollectingNotifier::default(),
                    ManualClock::new("2026-11-03T00:00:00Z".parse().unwrap_or_default()),
                )
                .with_flush_on_ingest(false),
            )
        };
        let options = Options {
            stream: stream.clone(),
            until_idle: Some(Duration::from_secs(2)),
        };
        let crashing = FaultyStore::new(MemoryStore::new(window)).at(
            Step::SetCheckpoint,
            1,
            Fault::Fail { retryable: false },
        );
        let mut first = engine(crashing);
        let crashed = Box::pin(consume(&mut first, &kinesis, &options)).await;
        assert!(crashed.is_err(), "the crash surfaces");
        assert_eq!(first.store.calls(Step::SetCheckpoint), 1);
        let shard = "shardId-000000000000";
        let none = first.store.inner.checkpoint(&stream, shard).await;
        assert!(matches!(none, Ok(None)), "nothing checkpointed: {none:?}");
        let stored = first.stats().matched;
        assert!(stored > 0, "the page was ingested before the crash");
        let mut posted = first.notifier.take();

        // Restart on the same table.
        let store = FaultyStore::new(first.store.inner);
        let mut second = engine(store);
        let report = Box::pin(consume(&mut second, &kinesis, &options))
            .await
            .unwrap_or_else(|err| panic!("consume: {err:#}"));
        assert_eq!(
            report.records,
            u64::try_from(sent.len()).unwrap_or(0),
            "the page again"
        );
        assert_eq!(
            second.stats().duplicates - replayed.stats.duplicates,
            stored
        );
        posted.extend(second.notifier.take());
        let ids = batched_ids(&posted);
        assert!(
            ids.values().all(|n| *n == 1),
            "an event in two batches: {ids:?}"
        );
        assert_eq!(
            ids.keys().collect::<Vec<_>>(),
            batched_ids(&replayed.deliveries).keys().collect::<Vec<_>>()
        );
        let last = second.store.checkpoint(&stream, shard).await.ok().flatten();
        assert!(last.is_some(), "checkpointed after the restart");
    });
}
