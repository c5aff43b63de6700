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
    if corpus.join("sans-lab").is_dir() {
        for min_events in [1, 2] {
            realistic_mix(root, &corpus, locale, budget, min_events, fixed);
        }
    }
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
    let (deliveries, calls) = replay(lines.as_bytes(), locale, min_events);
    let mut row = Row {
        events: 0,
        batches: calls.len(),
        ours: 0,
        data: 0,
        original: 0,
        bare: 0,
        one_batch: 0,
        one_batch_cut: 0,
    };
    let mut all = Vec::new();
    for call in &calls {
        let built = prompt::build_many(&call.iter().collect::<Vec<_>>(), locale, budget);
        row.ours += built.input_bytes();
        row.data += built.digests.iter().map(|d| d.text.len()).sum::<usize>();
    }
    for batch in &deliveries {
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
    if let Some(first) = deliveries.first() {
        let one = Batch {
            id: first.id.clone(),
            kind: BatchKind::Window,
            account_name: None,
            window_end: first.window_end,
            events: all,
        };
        let built = prompt::build(&one, locale, budget);
        row.one_batch = built.input_bytes();
        row.one_batch_cut = built.digests[0].omitted_events;
        if std::env::var_os("TRAILWATCH_PROMPT_SAMPLE").is_some() {
            println!("{}", built.user);
        }
    }
    Some(row)
}

/// Answers offline, and keeps the batches of every call a model summarizer would have made:
/// the engine's requests, split at the default caps as the Bedrock adapter splits them.
#[derive(Clone, Default)]
struct Asked(std::sync::Arc<std::sync::Mutex<Vec<Vec<Batch>>>>);

impl Asked {
    fn record(&self, batches: &[&Batch], locale: Locale) {
        let defaults = Settings::default().summary;
        let per_call = prompt::batches_per_call(
            defaults.max_batches_per_call,
            defaults.max_output_tokens,
            locale,
        );
        let mut calls = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for call in batches.chunks(per_call) {
            calls.push(call.iter().map(|b| (*b).clone()).collect());
        }
    }

    fn take(&self) -> Vec<Vec<Batch>> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
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
        self.record(&[batch], locale);
        OfflineSummarizer.summarize(batch, locale)
    }

    fn summarize_many(
        &self,
        batches: &[&Batch],
        locale: Locale,
    ) -> impl std::future::Future<Output = Vec<Result<trailwatch::summary::Summary, Self::Error>>> + Send
    {
        self.record(batches, locale);
        std::future::ready(
            batches
                .iter()
                .map(|b| Ok(trailwatch::summary::offline_summary(b, locale)))
                .collect(),
        )
    }
}

/// Each delivery's batch, and the batches of each model call the engine made (never for
/// replies, nor for batches under `model_min_events`).
fn replay(bytes: &[u8], locale: Locale, min_events: usize) -> (Vec<Batch>, Vec<Vec<Batch>>) {
    replay_many(&[bytes.to_vec()], locale, min_events)
}

/// [`replay`] of several inputs, ingested in order (as a Lambda receives them: late events
/// included).
fn replay_many(
    inputs: &[Vec<u8>],
    locale: Locale,
    min_events: usize,
) -> (Vec<Batch>, Vec<Vec<Batch>>) {
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
        for bytes in inputs {
            engine
                .ingest_bytes(bytes)
                .await
                .unwrap_or_else(|err| panic!("ingest: {err}"));
        }
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("flush: {err}"));
        let deliveries = engine
            .notifier
            .take()
            .into_iter()
            .map(|d| d.batch)
            .collect();
        (deliveries, asked.take())
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

/// Output tokens assumed per batch a call explains, for the monthly figures: the schema's
/// answer, in Korean (about a token a character), typically 300-500. A call's output is
/// capped by `[summary] max_output_tokens` (4,096), which bounds how many batches it holds.
const OUTPUT_TOKENS_PER_BATCH: f64 = 400.0;
/// Claude Sonnet 4.5 on Bedrock, US dollars per million tokens (input, output): the prices
/// the README's monthly estimate uses.
const PRICE_PER_MILLION: (f64, f64) = (3.0, 15.0);

/// The realistic mix: every `../shared/corpus/sans-lab` log file (two days of one account,
/// mostly AWS-service traffic) and the incident scenario fixtures (a root console session, a
/// Terraform apply, a service denied all day, denied tamper calls, two accounts), ingested in
/// order. Per matched event: our input bytes as sent and as billed, the original's (each event's
/// queue message); calls per matched event; and the model cost of 1M and 100M matched events a
/// month if calls grew with events as in this mix.
#[allow(clippy::cast_precision_loss, reason = "figures for people to read")]
fn realistic_mix(
    root: &Path,
    corpus: &Path,
    locale: Locale,
    budget: usize,
    min_events: usize,
    fixed: usize,
) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join("sans-lab"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for name in [
        "root-console-reads.jsonl",
        "terraform-apply-400.jsonl",
        "service-denied-24h.jsonl",
        "stoplogging-denied.jsonl",
        "two-accounts-interleaved.jsonl",
    ] {
        files.push(root.join("fixtures/incidents").join(name));
    }
    let inputs: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    // Each record's envelope, as the original's queue held it, by event id; and how many.
    let mut envelopes: HashMap<String, String> = HashMap::new();
    let mut read = 0_usize;
    for bytes in &inputs {
        trailwatch::event::decode_bytes(bytes, &mut |decoded| {
            read += 1;
            if let trailwatch::event::Decoded::Record(record) = decoded {
                envelopes.insert(record.id().to_owned(), record.envelope_json().into_owned());
            }
        });
    }
    let (deliveries, asked_calls) = replay_many(&inputs, locale, min_events);
    let (mut matched, mut calls, mut ours, mut original) = (0_usize, 0_usize, 0_usize, 0_usize);
    let mut batches_asked = 0_usize;
    let mut polls = std::collections::BTreeSet::new();
    // Each call's time (its window's end, when the flush comes) and input bytes.
    let mut asked: Vec<(i64, usize)> = Vec::new();
    for call in &asked_calls {
        calls += 1;
        batches_asked += call.len();
        let bytes =
            prompt::build_many(&call.iter().collect::<Vec<_>>(), locale, budget).input_bytes();
        ours += bytes;
        let at = call
            .iter()
            .map(|b| b.window_end.timestamp())
            .min()
            .unwrap_or(0);
        asked.push((at, bytes));
    }
    for batch in &deliveries {
        matched += batch.events.len();
        for event in &batch.events {
            let envelope = envelopes
                .get(event.event.id.as_str())
                .cloned()
                .unwrap_or_default();
            original += sns(&envelope).len() + 1;
            // The original pulled the queue every five minutes, all accounts at once.
            polls.insert(event.event.time.timestamp().div_euclid(300));
        }
    }
    // As billed: a call within five minutes of the one before reads the cached prefix
    // (0.1x), any other writes it (1.25x): the cache lives five minutes after its last use.
    asked.sort_unstable();
    let mut billed = 0.0;
    let mut last: Option<i64> = None;
    for (at, bytes) in &asked {
        let warm = last.is_some_and(|l| at - l <= 300);
        billed += bytes.saturating_sub(fixed) as f64 + fixed as f64 * if warm { 0.1 } else { 1.25 };
        last = Some(*at);
    }
    let per = |bytes: f64| bytes / matched.max(1) as f64;
    let share = matched as f64 / read.max(1) as f64;
    println!(
        "realistic mix (sans-lab + 5 incident scenarios), model_min_events = {min_events}: {read} records, {matched} matched ({:.1}%), {batches_asked} batches explained in {calls} calls ({:.3} per matched event; the original: {} five-minute polls)",
        share * 100.0,
        calls as f64 / matched.max(1) as f64,
        polls.len()
    );
    println!(
        "  per matched event: ours {:.0} B as sent, {:.0} B as billed; the original {:.0} B: 1/{:.0} as sent, 1/{:.0} as billed",
        per(ours as f64),
        per(billed),
        per(original as f64),
        per(original as f64) / per(ours as f64).max(1.0),
        per(original as f64) / per(billed).max(1.0),
    );
    // Matched events a month (the README's cost table counts those), calls growing with them as
    // in this mix: an upper bound, as windows and accounts bound the calls at high volume.
    for month in [1.0e6, 1.0e8] {
        let events = month;
        let input_tokens = events * per(billed) / 4.0;
        let month_calls = events * calls as f64 / matched.max(1) as f64;
        let output_tokens =
            events * batches_asked as f64 / matched.max(1) as f64 * OUTPUT_TOKENS_PER_BATCH;
        let cost =
            input_tokens / 1e6 * PRICE_PER_MILLION.0 + output_tokens / 1e6 * PRICE_PER_MILLION.1;
        println!(
            "  {:.0}M matched events a month: at most {:.0} calls, {:.1}M input tokens as billed, {:.1}M output tokens: at most ${cost:.0} a month (Claude Sonnet 4.5)",
            month / 1e6,
            month_calls,
            input_tokens / 1e6,
            output_tokens / 1e6,
        );
    }
}
