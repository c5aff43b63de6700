//! Shared helpers for integration tests: replay files through the real engine.

#![allow(dead_code)]

pub mod faulty;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::app::{Format, render};
use trailwatch::config::Settings;
use trailwatch::engine::{Engine, Stats};
use trailwatch::event::{AccountId, Heartbeat, Quarantined};
use trailwatch::ports::Clock as _;
use trailwatch::ports::Delivery;
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, Locale, OfflineSummarizer};
use trailwatch::window::EventTimeClock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// `../shared/corpus`, or `None` (with a message) when this clone has no shared folder.
pub fn corpus() -> Option<PathBuf> {
    let dir = root().join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (a fresh clone has no shared corpus)",
            dir.display()
        );
        None
    }
}

/// The settings of `fixtures/config.toml`, with the given locale.
pub fn settings(lang: Lang, tz: chrono_tz::Tz) -> Settings {
    let mut settings = Settings::load(Some(&fixture("config.toml")), &|_| None).unwrap_or_default();
    settings.locale = Locale { lang, tz };
    settings
}

pub struct Replayed {
    pub deliveries: Vec<Delivery>,
    pub stats: Stats,
    pub quarantined: Vec<Quarantined>,
}

impl Replayed {
    pub fn output(&self, format: Format) -> String {
        render(&self.deliveries, format).unwrap_or_default()
    }
}

pub fn replay_bytes(inputs: &[Vec<u8>], settings: Settings) -> Replayed {
    replay_into(
        inputs,
        settings,
        CollectingNotifier::default(),
        RulePack::builtin(),
    )
}

/// [`replay_bytes`] with another rule pack.
pub fn replay_bytes_pack(inputs: &[Vec<u8>], settings: Settings, rules: RulePack) -> Replayed {
    replay_into(inputs, settings, CollectingNotifier::default(), rules)
}

/// [`replay_bytes`] with another rule pack; the deliveries.
pub fn replay_bytes_with(inputs: &[Vec<u8>], settings: Settings, rules: RulePack) -> Vec<Delivery> {
    replay_into(inputs, settings, CollectingNotifier::default(), rules).deliveries
}

/// Like [`replay_files`], into a destination without threads (an incoming webhook).
pub fn replay_files_without_threads(files: &[&Path], settings: Settings) -> Replayed {
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|err| panic!("{}: {err}", f.display())))
        .collect();
    replay_into(
        &inputs,
        settings,
        CollectingNotifier::without_threads(),
        RulePack::builtin(),
    )
}

fn replay_into(
    inputs: &[Vec<u8>],
    settings: Settings,
    notifier: CollectingNotifier,
    rules: RulePack,
) -> Replayed {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"));
    runtime.block_on(async {
        let window = settings.window;
        let mut engine = Engine::new(
            rules,
            settings,
            MemoryStore::new(window),
            OfflineSummarizer,
            notifier,
            EventTimeClock::with_wall(trailwatch::adapters::system_clock::SystemClock.now()),
        );
        for input in inputs {
            engine
                .ingest_bytes(input)
                .await
                .unwrap_or_else(|err| panic!("ingest: {err}"));
        }
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("flush: {err}"));
        Replayed {
            deliveries: engine.notifier.take(),
            stats: engine.stats(),
            quarantined: engine.quarantined().to_vec(),
        }
    })
}

pub fn replay_files(files: &[&Path], settings: Settings) -> Replayed {
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|err| panic!("{}: {err}", f.display())))
        .collect();
    replay_bytes(&inputs, settings)
}

/// Every fixture input file (not the generator, config, notes or planted list).
pub fn fixture_inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let name = p.to_string_lossy();
        name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".json.gz")
    });
    files.sort();
    files
}

/// A heartbeat envelope of `account` and `region`, sent at `time` (RFC 3339).
pub fn beat(account: &str, region: &str, time: &str) -> String {
    Heartbeat {
        account: AccountId::new(account),
        region: region.to_owned(),
        time: time.parse().unwrap_or_else(|err| panic!("{time}: {err}")),
    }
    .envelope_json()
}

/// A Pipe batch (bare array of Kinesis records) carrying `envelopes` as data.
pub fn pipe(envelopes: &[String]) -> Vec<u8> {
    let records: Vec<Value> = envelopes
        .iter()
        .enumerate()
        .map(|(i, envelope)| {
            json!({
                "eventSource": "aws:kinesis",
                "eventID": format!("shardId-000000000000:{i:040}"),
                "eventName": "aws:kinesis:record",
                "partitionKey": "111111111111",
                "sequenceNumber": format!("{i:040}"),
                "data": base64::engine::general_purpose::STANDARD.encode(envelope),
            })
        })
        .collect();
    serde_json::to_vec(&records).unwrap_or_default()
}

/// Embedded-metric lines a Lambda handler wrote (`Handler::with_metrics_output`), shared with
/// the test that reads them.
#[derive(Clone, Default)]
pub struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// Each line written, as JSON.
    pub fn values(&self) -> Vec<Value> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{l}: {err}")))
            .collect()
    }
}

/// moto's endpoint (`AWS_ENDPOINT_URL`), or `None` with a message, and the test skips. With
/// `TRAILWATCH_MOTO` set (CI sets it) a missing endpoint fails instead: the moto tests must run.
pub fn moto_endpoint() -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty());
    if endpoint.is_none() {
        assert!(
            std::env::var_os("TRAILWATCH_MOTO").is_none(),
            "TRAILWATCH_MOTO is set but AWS_ENDPOINT_URL is not: the moto tests must run"
        );
        eprintln!("skipped: AWS_ENDPOINT_URL is unset (run `bash .ci/test` to start moto)");
    }
    endpoint
}

/// A CloudTrail record: an IAM user of 111111111111 shares the RDS snapshot `orders` with
/// `target` (an account id, or `all`) at `time` (RFC 3339).
pub fn snapshot_share(id: &str, time: &str, target: &str) -> Value {
    json!({
        "eventVersion": "1.09", "eventID": id, "eventTime": time,
        "eventSource": "rds.amazonaws.com", "eventName": "ModifyDBSnapshotAttribute",
        "awsRegion": "us-east-1", "recipientAccountId": "111111111111",
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0", "readOnly": false,
        "eventType": "AwsApiCall",
        "userIdentity": {"type": "IAMUser", "userName": "dev", "accountId": "111111111111",
            "arn": "arn:aws:iam::111111111111:user/dev"},
        "requestParameters": {"attributeName": "restore", "dBSnapshotIdentifier": "orders",
            "valuesToAdd": [target]}
    })
}

/// A CloudTrail record: IAM user `creator` of `account` creates user `user` through the CLI at
/// `time` (RFC 3339). It matches the yellow `iam-user-changed` rule, posted with its window.
pub fn create_user(account: &str, id: &str, time: &str, creator: &str, user: &str) -> Value {
    json!({
        "eventVersion": "1.09", "eventID": id, "eventTime": time,
        "eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
        "awsRegion": "us-east-1", "recipientAccountId": account,
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0 Python/3.11",
        "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
        "requestParameters": {"userName": user},
        "userIdentity": {"type": "IAMUser", "userName": creator, "principalId": "AIDAEXAMPLE",
            "accountId": account, "arn": format!("arn:aws:iam::{account}:user/{creator}")}
    })
}
