//! decode -> match -> enrich -> window on real-looking CloudTrail, beside a plain
//! `serde_json::Value` parse of the same bytes, in the same run.
//!
//! Input: every fixture record plus, when `../shared/corpus` exists, every corpus record,
//! cycled with fresh event ids into ~30,000 JSON lines (built before timing starts).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::config::Settings;
use trailwatch::engine::{Engine, Split};
use trailwatch::rules::RulePack;
use trailwatch::summary::OfflineSummarizer;
use trailwatch::window::{EventTimeClock, WindowBook};

const TARGET_EVENTS: usize = 30_000;

/// One JSON value per record, from fixtures and corpus (unwrapping labelled lines).
fn seed_records() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        root.join("fixtures"),
        root.join("../shared/corpus/traildiscover"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                files.push(entry.path());
            }
        }
    }
    for file in [
        "../shared/corpus/panther/labelled.jsonl",
        "../shared/corpus/stratus-red-team/detonations.jsonl",
    ] {
        files.push(root.join(file));
    }
    files.sort();
    let mut records = Vec::new();
    for file in files {
        let name = file.to_string_lossy();
        if !name.ends_with(".jsonl")
            || name.contains("malformed")
            || name.contains("threat-metadata")
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            if let Ok(mut value) = serde_json::from_str::<Value>(line) {
                if let Some(inner) = value.get_mut("event").map(Value::take) {
                    value = inner;
                }
                records.push(value);
            }
        }
    }
    records
}

/// True when the pack matches no record of `seed` (read-only calls and the like: what the
/// early filter drops). Quarantined seeds count as matched here, so they are left out.
fn unmatched(seed: &Value, rules: &RulePack) -> bool {
    let bytes = serde_json::to_vec(seed).unwrap_or_default();
    let mut unmatched = true;
    trailwatch::event::decode_bytes(&bytes, &mut |decoded| {
        unmatched &= match decoded {
            trailwatch::event::Decoded::Record(record) => !matches!(
                rules.evaluate(&record.facts()),
                trailwatch::rules::Verdict::Matched(_)
            ),
            trailwatch::event::Decoded::Quarantined(_)
            | trailwatch::event::Decoded::Skipped(_)
            | trailwatch::event::Decoded::Heartbeat(_) => false,
        };
    });
    unmatched
}

/// ~30,000 JSON lines with unique event ids, cycling through the seeds `keep` accepts.
fn mixed_input(keep: impl Fn(&Value) -> bool) -> (Vec<u8>, usize) {
    let seeds: Vec<Value> = seed_records().into_iter().filter(|s| keep(s)).collect();
    let mut out = Vec::new();
    let mut count = 0;
    while count < TARGET_EVENTS && !seeds.is_empty() {
        for seed in &seeds {
            let mut record = seed.clone();
            let id = Value::String(format!("bench-{count:08}"));
            if let Some(detail) = record
                .get_mut("detail")
                .filter(|d| d.get("eventID").is_some())
            {
                detail["eventID"] = id.clone();
            }
            if record.get("eventID").is_some() {
                record["eventID"] = id.clone();
            }
            if record.get("id").is_some() {
                record["id"] = id;
            }
            out.extend(serde_json::to_vec(&record).unwrap_or_default());
            out.push(b'\n');
            count += 1;
        }
    }
    (out, count)
}

fn pipeline(c: &mut Criterion) {
    let rules = RulePack::builtin();
    let (input, events) = mixed_input(|_| true);
    bench_input(c, "pipeline", &input, events, &rules);
    // The same seeds without those the pack matches: the cost of a record the early filter
    // drops, the floor for inputs where few records match.
    let (input, events) = mixed_input(|seed| unmatched(seed, &rules));
    bench_input(c, "pipeline_unmatched", &input, events, &rules);
}

fn bench_input(c: &mut Criterion, name: &str, input: &[u8], events: usize, rules: &RulePack) {
    let settings = &Settings::default();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(events as u64));
    group.sample_size(10);
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            let values = serde_json::Deserializer::from_slice(black_box(input))
                .into_iter::<Value>()
                .filter_map(Result::ok)
                .count();
            black_box(values)
        });
    });
    // What any serde_json-based decoder pays at least: every byte checked, nothing built.
    group.bench_function("serde_json_validate", |b| {
        b.iter(|| {
            let values = serde_json::Deserializer::from_slice(black_box(input))
                .into_iter::<serde::de::IgnoredAny>()
                .filter_map(Result::ok)
                .count();
            black_box(values)
        });
    });
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            let mut records = 0usize;
            trailwatch::event::decode_bytes(black_box(input), &mut |decoded| {
                if let trailwatch::event::Decoded::Record(record) = decoded {
                    records += usize::from(!record.id().is_empty());
                }
            });
            black_box(records)
        });
    });
    group.bench_function("decode_match", |b| {
        b.iter(|| {
            let mut matched = 0usize;
            trailwatch::event::decode_bytes(black_box(input), &mut |decoded| {
                if let trailwatch::event::Decoded::Record(record) = decoded {
                    matched += usize::from(matches!(
                        rules.evaluate(&record.facts()),
                        trailwatch::rules::Verdict::Matched(_)
                    ));
                }
            });
            black_box(matched)
        });
    });
    // The whole path, on this machine's cores (the default) and on one.
    for (bench, split) in [
        ("decode_match_enrich_window", Split::cores()),
        ("decode_match_enrich_window_one_core", Split::SERIAL),
    ] {
        group.bench_function(bench, |b| {
            b.iter_batched(
                // An engine is built once per run, not per input: not timed.
                || {
                    Engine::new(
                        rules.clone(),
                        settings.clone(),
                        MemoryStore::default(),
                        OfflineSummarizer,
                        CollectingNotifier::default(),
                        EventTimeClock::default(),
                    )
                    .with_split(split)
                },
                |mut engine| whole_path(&mut engine, black_box(input), settings),
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// Decode, match and enrich `input`, then put every matched event in its window and take
/// the windows out; all that was built is dropped before returning.
fn whole_path<S, M, N, C>(
    engine: &mut Engine<S, M, N, C>,
    input: &[u8],
    settings: &Settings,
) -> (usize, usize)
where
    S: trailwatch::ports::Store + Sync,
    M: trailwatch::summary::Summarizer + Sync,
    N: trailwatch::ports::Notifier,
    C: trailwatch::window::Clock,
{
    let matched = engine.decode(input);
    let mut book = WindowBook::new(settings.window);
    let mut added = 0usize;
    for event in matched {
        let time = event.event.time;
        if matches!(book.add(event, time), trailwatch::window::Added::New { .. }) {
            added += 1;
        }
    }
    (
        added,
        book.due(chrono::DateTime::<chrono::Utc>::MAX_UTC).len(),
    )
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
