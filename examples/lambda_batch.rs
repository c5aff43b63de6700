//! Peak-memory probe for the Lambda handler (README "Lambda").
//!
//! `lambda_batch gen N FILE [WINDOWS]`: write an EventBridge Pipe batch of N Kinesis records
//! (the multi-account fixture's envelopes, each with its own ids) to FILE; with WINDOWS, record
//! `i` is moved `i % WINDOWS` five-minute windows back, so the tick flushes that many windows
//! per account.
//! `lambda_batch run FILE`: handle it once, as the Lambda does (in-memory store, offline
//! summaries, deliveries to a sink), then tick; run under `/usr/bin/time -v` for the peak RSS.

use std::io::Write as _;

use base64::Engine as _;
use trailwatch::adapters::memory::MemoryStore;
use trailwatch::adapters::stdout::LineNotifier;
use trailwatch::app::lambda::Handler;
use trailwatch::config::Settings;
use trailwatch::engine::Engine;
use trailwatch::rules::RulePack;
use trailwatch::summary::OfflineSummarizer;
use trailwatch::window::ManualClock;

fn generate(count: usize, path: &str, windows: usize) -> anyhow::Result<()> {
    let root = env!("CARGO_MANIFEST_DIR");
    let lines: Vec<String> =
        std::fs::read_to_string(format!("{root}/fixtures/multi-account.jsonl"))?
            .lines()
            .filter(|l| l.contains("\"detail-type\""))
            .map(str::to_owned)
            .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"[")?;
    for i in 0..count {
        let line = &lines[i % lines.len()];
        let envelope: serde_json::Value = serde_json::from_str(line)?;
        let old_id = envelope["detail"]["eventID"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let account = envelope["account"].as_str().unwrap_or_default().to_owned();
        let mut unique = if old_id.is_empty() {
            line.clone()
        } else {
            line.replace(&old_id, &format!("{old_id}-{i}"))
        };
        let back = i % windows.max(1);
        if back > 0 && envelope["detail"]["eventTime"].is_string() {
            let mut moved: serde_json::Value = serde_json::from_str(&unique)?;
            let minutes = i64::try_from(back * 5)?;
            let earlier = |time: &serde_json::Value| -> anyhow::Result<serde_json::Value> {
                let at: chrono::DateTime<chrono::Utc> =
                    time.as_str().unwrap_or_default().parse()?;
                Ok(serde_json::Value::String(
                    (at - chrono::TimeDelta::minutes(minutes))
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ))
            };
            moved["time"] = earlier(&moved["time"])?;
            moved["detail"]["eventTime"] = earlier(&moved["detail"]["eventTime"])?;
            unique = serde_json::to_string(&moved)?;
        }
        let data = base64::engine::general_purpose::STANDARD.encode(unique);
        let seq = format!("4965698522345452939073841009343039821357851325{i:010}");
        if i > 0 {
            out.write_all(b",")?;
        }
        let record = serde_json::json!({
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": format!("shardId-000000000000:{seq}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::444444444444:role/trailwatch-pipe",
            "awsRegion": "ap-northeast-2",
            "eventSourceARN": "arn:aws:kinesis:ap-northeast-2:444444444444:stream/trailwatch-events",
            "kinesisSchemaVersion": "1.0", "partitionKey": account, "sequenceNumber": seq,
            "data": data, "approximateArrivalTimestamp": 1_793_588_937.137,
        });
        serde_json::to_writer(&mut out, &record)?;
    }
    out.write_all(b"]")?;
    out.flush()?;
    Ok(())
}

async fn run(path: &str) -> anyhow::Result<()> {
    // As lambda_runtime does: the body, then a `Box<RawValue>` copy of it (both kept alive).
    let body = std::fs::read(path)?;
    let raw: Box<serde_json::value::RawValue> = serde_json::from_slice(&body)?;
    let payload = raw.get().as_bytes();
    let settings = Settings::default();
    let engine = Engine::new(
        RulePack::try_builtin()?,
        settings,
        MemoryStore::default(),
        OfflineSummarizer,
        LineNotifier::new(std::io::sink()),
        ManualClock::new("2026-11-02T03:10:00Z".parse()?),
    );
    let handler = Handler::new(engine).with_metrics_output(Box::new(std::io::sink()));
    let started = std::time::Instant::now();
    let response = handler.handle(payload).await?;
    let ingest = started.elapsed();
    handler
        .engine()
        .await
        .clock
        .set("2026-11-02T04:00:00Z".parse()?);
    let tick = handler.handle(br#"{"trailwatch":"tick"}"#).await?;
    let stats = handler.engine().await.stats();
    println!(
        "payload_bytes={} records={} matched={} batches={} ingest_ms={} response={} tick={}",
        body.len(),
        stats.read,
        stats.matched,
        stats.batches,
        ingest.as_millis(),
        serde_json::to_string(&response)?,
        serde_json::to_string(&tick)?,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    match args.get(1).map(String::as_str) {
        Some("gen") => generate(
            args.get(2).map_or(Ok(10_000), |n| n.parse())?,
            &args[3],
            args.get(4).map_or(Ok(1), |n| n.parse())?,
        ),
        Some("run") => runtime.block_on(run(&args[2])),
        _ => anyhow::bail!("usage: lambda_batch gen N FILE [WINDOWS] | run FILE"),
    }
}
