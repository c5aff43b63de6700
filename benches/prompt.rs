//! Prompt size: what trailwatch sends the model per batch, beside the original system's
//! approach of placing the raw queued messages in the prompt, built here from the same events.
//!
//! Inputs: `fixtures/terraform-burst.jsonl` and, when present, each file of `../shared/corpus`
//! (or `$TRAILWATCH_CORPUS`). Events go through the real engine (offline summaries, replay
//! clock); every window and late batch is measured (immediate alerts are extra posts of events
//! that their window digest also carries, so they are left out of the per-event figures).
//!
//! The baseline message per event is what the original queue held: the EventBridge envelope
//! (`detail` = the CloudTrail record) inside an SNS notification (`Message` = the envelope as
//! a JSON string, plus SNS's own fields). "bare" counts the envelope alone, a lower bound.
//! Sizes are bytes of UTF-8; no tokenizer is used. Run: `cargo bench --bench prompt`.
//!
//! "billed" weighs the fixed part of each call as Bedrock bills it when the default model
//! caches it (its cache point after the system prompt): the first call writes the cache (1.25x),
//! every later call reads it (0.1x), which holds while calls come at least every five minutes
//! (the cache's time to live, renewed on each read). The rest of each call is billed in full.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::config::Settings;
use trailwatch::engine::Engine;
use trailwatch::rules::RulePack;
use trailwatch::summary::prompt::{self, SYSTEM, TOOL_DESCRIPTION};
use trailwatch::summary::{Lang, Locale, OfflineSummarizer, Summarizer};
use trailwatch::window::{Batch, BatchKind, EventTimeClock};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = vec![root.join("fixtures/terraform-burst.jsonl")];
    let corpus = std::env::var_os("TRAILWATCH_CORPUS")
        .map_or_else(|| root.join("../shared/corpus"), PathBuf::from);
    if corpus.is_dir() {
        for file in [
            "traildiscover/examples.jsonl",
            "stratus-red-team/detonations.jsonl",
            "panther/labelled.jsonl",
        ] {
            inputs.push(corpus.join(file));
        }
    } else {
        println!(
            "skipped corpus: {} is absent (set TRAILWATCH_CORPUS)",
            corpus.display()
        );
    }
    let locale = Locale {
        lang: Lang::Ko,
        tz: chrono_tz::Asia::Seoul,
    };
    let budget = prompt::DEFAULT_INPUT_BUDGET;
    let fixed = SYSTEM.len() + prompt::answer_schema_wire_bytes() + TOOL_DESCRIPTION.len();
    assert_eq!(fixed, prompt::fixed_bytes());
    println!(
        "prompt bytes (digest budget {budget} B; fixed per call: system + schema + tool = {fixed} B, about {} tokens, cached with the default model)",
        prompt::fixed_tokens()
    );
    println!(
        "{:<40} {:>6} {:>7} {:>9} {:>9} {:>10} {:>10} {:>10} {:>7} {:>9} {:>7}",
        "input",
        "events",
        "batches",
        "ours/ev",
        "data/ev",
        "orig/ev",
        "bare/ev",
        "ours/batch",
        "ratio",
        "billed/ev",
        "ratio"
    );
    for min_events in [1, 2] {
        println!(
            "[summary] model_min_events = {min_events}{}",
            if min_events == 1 {
                " (the default: every batch asks the model)"
            } else {
                " (batches of one event are summarised offline)"
            }
        );
        for input in &inputs {
            let Some(row) = measure(input, locale, budget, min_events) else {
                continue;
            };
            let name = input
                .strip_prefix(root)
                .unwrap_or(input)
                .display()
                .to_string();
            row.print(&name.replace("../shared/", ""), fixed);
        }
    }
}

struct Row {
    events: usize,
    batches: usize,
    ours: usize,
    data: usize,
    original: usize,
    bare: usize,
    one_batch: usize,
    /// Events the one-batch digest left out to stay within the budget (counted in its prompt).
    one_batch_cut: usize,
}

impl Row {
    /// Input bytes as billed over `calls` calls that each repeat `fixed` bytes: the fixed part
    /// written to the cache once (1.25x) and read from it after (0.1x), the rest in full.
    #[allow(clippy::cast_precision_loss, reason = "figures for people to read")]
    fn billed(total: usize, calls: usize, fixed: usize) -> f64 {
        if calls == 0 {
            return 0.0;
        }
        let variable = total.saturating_sub(fixed * calls) as f64;
        variable + fixed as f64 * (1.25 + 0.1 * (calls - 1) as f64)
    }

    #[allow(clippy::cast_precision_loss, reason = "figures for people to read")]
    fn print(&self, name: &str, fixed: usize) {
        let per = |bytes: usize| bytes as f64 / self.events.max(1) as f64;
        let billed = Self::billed(self.ours, self.batches, fixed) / self.events.max(1) as f64;
        println!(
            "{name:<40} {:>6} {:>7} {:>9.0} {:>9.0} {:>10.0} {:>10.0} {:>10.0} {:>7} {:>9.0} {:>7}",
            self.events,
            self.batches,
            per(self.ours),
            per(self.data),
            per(self.original),
            per(self.bare),
            self.ours as f64 / self.batches.max(1) as f64,
            format!("1/{:.0}", per(self.original) / per(self.ours).max(1.0)),
            billed,
            format!("1/{:.0}", per(self.original) / billed.max(1.0)),
        );
        println!(
            "{:<40} {:>6} {:>7} {:>9.0} {:>9} {:>10.0} {:>10.0} {:>10} {:>7}",
            "  as one batch (the original's queue pull)",
            self.events,
            1,
            per(self.one_batch),
            "",
            per(self.original),
            per(self.bare),
            self.one_batch,
            format!("1/{:.0}", per(self.original) / per(self.one_batch).max(1.0)),
        );
        if self.one_batch_cut > 0 {
            println!(
                "  (the one-batch digest named {} of {} events; the rest were counted in the prompt)",
                self.events - self.one_batch_cut,
                self.events
            );
        }
    }
}

fn measure(path: &Path, locale: Locale, budget: usize, min_events: usize) -> Option<Row> {
    let text = std::fs::read_to_string(path).ok()?;
    let records: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|mut value| {
            if let Some(inner) = value.get_mut("event").map(Value::take) {
                value = inner;
            }
            value
        })
        .collect();
    let mut raw_by_id: HashMap<String, Value> = HashMap::new();
    let mut lines = String::new();
    for record in &records {
        if let Some(id) = event_id(record) {
            raw_by_id.insert(id, record.clone());
        }
        lines.push_str(&record.to_string());
        lines.push('\n');
    }
    // Every delivery's events count; only top-level ones (digests, immediate alerts,
    // reminders) call the model: an incident's thread replies never do.
    let deliveries = replay(lines.as_bytes(), locale, min_events);
    let mut row = Row {
        events: 0,
        batches: deliveries.iter().filter(|(_, model)| *model).count(),
        ours: 0,
        data: 0,
        original: 0,
        bare: 0,
        one_batch: 0,
        one_batch_cut: 0,
    };
    let mut all = Vec::new();
    for (batch, model) in &deliveries {
        if *model {
            let built = prompt::build(batch, locale, budget);
            row.ours += built.input_bytes();
            row.data += built.digest.text.len();
        }
        row.events += batch.events.len();
        for event in &batch.events {
            let raw = raw_by_id
                .get(event.event.id.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            let envelope = envelope(&raw);
            row.bare += envelope.len();
            row.original += sns(&envelope).len() + 1;
        }
        all.extend(batch.events.iter().cloned());
    }
    if let Some((first, _)) = deliveries.first() {
        let one = Batch {
            id: first.id.clone(),
            kind: BatchKind::Window,
            account_name: None,
            window_end: first.window_end,
            events: all,
        };
        let built = prompt::build(&one, locale, budget);
        row.one_batch = built.input_bytes();
        row.one_batch_cut = built.digest.omitted_events;
        if std::env::var_os("TRAILWATCH_PROMPT_SAMPLE").is_some() {
            println!("{}", built.user);
        }
    }
    Some(row)
}

/// Answers offline, and keeps the event ids of every batch the engine asked about: the calls
/// a model summarizer would have had.
#[derive(Clone, Default)]
struct Asked(std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>);

impl Asked {
    fn ids(batch: &Batch) -> Vec<String> {
        batch
            .events
            .iter()
            .map(|e| e.event.id.to_string())
            .collect()
    }

    fn asked(&self, batch: &Batch) -> bool {
        let ids = Self::ids(batch);
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&ids)
    }
}

impl Summarizer for Asked {
    type Error = std::convert::Infallible;

    fn summarize(
        &self,
        batch: &Batch,
        locale: Locale,
    ) -> impl std::future::Future<Output = Result<trailwatch::summary::Summary, Self::Error>> + Send
    {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Self::ids(batch));
        OfflineSummarizer.summarize(batch, locale)
    }
}

/// Each delivery's batch, and whether the engine asked the model for its summary (never for
/// replies, nor for batches under `model_min_events`).
fn replay(bytes: &[u8], locale: Locale, min_events: usize) -> Vec<(Batch, bool)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"));
    runtime.block_on(async {
        let mut settings = Settings {
            locale,
            ..Settings::default()
        };
        settings.summary.model_min_events = min_events;
        let window = settings.window;
        let asked = Asked::default();
        let mut engine = Engine::new(
            RulePack::builtin(),
            settings,
            MemoryStore::new(window),
            asked.clone(),
            CollectingNotifier::default(),
            EventTimeClock::default(),
        );
        engine
            .ingest_bytes(bytes)
            .await
            .unwrap_or_else(|err| panic!("ingest: {err}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("flush: {err}"));
        engine
            .notifier
            .take()
            .into_iter()
            .map(|d| {
                let model = asked.asked(&d.batch);
                (d.batch, model)
            })
            .collect()
    })
}

fn event_id(record: &Value) -> Option<String> {
    record
        .get("detail")
        .and_then(|d| d.get("eventID"))
        .or_else(|| record.get("eventID"))
        .or_else(|| record.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The EventBridge envelope as the original rule delivered it (kept if already one).
fn envelope(record: &Value) -> String {
    if record.get("detail").is_some() {
        return record.to_string();
    }
    let field = |key: &str| record.get(key).cloned().unwrap_or(Value::Null);
    let source = record
        .get("eventSource")
        .and_then(Value::as_str)
        .and_then(|s| s.split('.').next())
        .map_or_else(|| "aws.unknown".to_owned(), |s| format!("aws.{s}"));
    json!({
        "version": "0",
        "id": field("eventID"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": field("recipientAccountId"),
        "time": field("eventTime"),
        "region": field("awsRegion"),
        "resources": [],
        "detail": record,
    })
    .to_string()
}

/// The SNS notification that carried the envelope to the queue.
fn sns(envelope: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "6f5e8b2a-1c3d-5e7f-9a0b-1c2d3e4f5a6b",
        "TopicArn": "arn:aws:sns:ap-northeast-2:111111111111:cloudtrail-alerts",
        "Message": envelope,
        "Timestamp": "2024-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "A".repeat(344),
        "SigningCertURL": "https://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": "https://sns.ap-northeast-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:ap-northeast-2:111111111111:cloudtrail-alerts:00000000-0000-0000-0000-000000000000",
    })
    .to_string()
}
