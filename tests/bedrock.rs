//! The Bedrock summarizer against an in-process fake of Converse: good answers, bad answers,
//! hostile answers, transient and final errors, slow answers, and the prompt it sends.
//!
//! Each test starts its own fake on 127.0.0.1:0 and points an SDK client at it through the
//! client config's `endpoint_url` (no process-wide environment, so tests cannot race); the CLI
//! test sets `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` on its child process only.
#![cfg(feature = "cloud")]
#![recursion_limit = "256"]

mod common;
mod fake_bedrock;
mod fake_slack;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use chrono_tz::{Asia, UTC};
use common::{fixture, settings};
use fake_bedrock::{FakeBedrock, Reply, batch_ids, good_answer};
use serde_json::{Value, json};
use trailwatch::adapters::bedrock::{BedrockConfig, BedrockSummarizer, CallError};
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::adapters::retry::{Backoff, ManualSleeper, Sleeper};
use trailwatch::config::SummaryConfig;
use trailwatch::delivery::SummaryBy;
use trailwatch::engine::{Engine, Stats};
use trailwatch::ports::Delivery;
use trailwatch::ports::Receipt;
use trailwatch::render::slack::render_batch;
use trailwatch::rules::RulePack;
use trailwatch::summary::prompt::{DATA_CLOSE, DATA_OPEN, data_open, prompt_version};
use trailwatch::summary::{Lang, Summarizer as _, SummarySource};
use trailwatch::window::EventTimeClock;

const MODEL: &str = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
const FALLBACK_MARK_EN: &str = "offline template (model unavailable)";

fn config() -> BedrockConfig {
    BedrockConfig {
        model_id: MODEL.to_owned(),
        deadline: Duration::from_secs(10),
        max_attempts: 3,
        attempt_timeout: Duration::from_secs(5),
        backoff: Backoff::new(Duration::from_millis(4), Duration::from_millis(20)),
        ..BedrockConfig::from_settings(&SummaryConfig::default())
    }
}

fn summarizer(fake: &FakeBedrock, config: BedrockConfig) -> BedrockSummarizer {
    BedrockSummarizer::new(client(fake), config)
}

/// A summarizer whose waits and time are `sleeper`'s (kept by the test to read the waits).
fn manual_summarizer(
    fake: &FakeBedrock,
    config: BedrockConfig,
    sleeper: &Arc<ManualSleeper>,
) -> BedrockSummarizer<Arc<ManualSleeper>> {
    BedrockSummarizer::with_sleeper(client(fake), config, Arc::clone(sleeper))
}

fn client(fake: &FakeBedrock) -> aws_sdk_bedrockruntime::Client {
    let sdk = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDFAKEFAKEFAKE",
            "fake-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(&fake.url)
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .build();
    aws_sdk_bedrockruntime::Client::from_conf(sdk)
}

/// The fixture through the real engine with this summarizer.
/// The deliveries whose summary the model was asked for (thread replies of a continuing
/// incident never call it: they list events under a message that explained them).
/// Boxed: the engine's flush is a large future.
fn run<S: Sleeper + 'static>(
    file: &str,
    lang: Lang,
    summarizer: BedrockSummarizer<S>,
) -> std::pin::Pin<Box<impl Future<Output = (Vec<Delivery>, Stats)> + '_>> {
    Box::pin(async move {
        let (all, stats) = run_all(file, lang, summarizer).await;
        (
            all.into_iter()
                .filter(|d| d.thread_of().is_none())
                .collect(),
            stats,
        )
    })
}

/// Every delivery of `file`, thread replies included.
async fn run_all<S: Sleeper>(
    file: &str,
    lang: Lang,
    summarizer: BedrockSummarizer<S>,
) -> (Vec<Delivery>, Stats) {
    let tz = if lang == Lang::Ko { Asia::Seoul } else { UTC };
    let engine = replay_fixture(
        file,
        settings(lang, tz),
        summarizer,
        CollectingNotifier::default(),
    )
    .await;
    (engine.notifier.take(), engine.stats())
}

/// `file` replayed through an engine with these settings, summarizer and notifier, every
/// window flushed. Boxed: the engine, held across awaits, would make every caller's future
/// large.
async fn replay_fixture<S: Sleeper, N: trailwatch::ports::Notifier>(
    file: &str,
    settings: trailwatch::config::Settings,
    summarizer: BedrockSummarizer<S>,
    notifier: N,
) -> Box<Engine<MemoryStore, BedrockSummarizer<S>, N, EventTimeClock>> {
    let window = settings.window;
    let mut engine = Box::new(Engine::new(
        RulePack::builtin(),
        settings,
        MemoryStore::new(window),
        summarizer,
        notifier,
        EventTimeClock::default(),
    ));
    let bytes = std::fs::read(fixture(file)).unwrap_or_else(|err| panic!("{file}: {err}"));
    engine
        .ingest_bytes(&bytes)
        .await
        .unwrap_or_else(|err| panic!("ingest: {err}"));
    engine
        .flush_all()
        .await
        .unwrap_or_else(|err| panic!("flush: {err}"));
    engine
}

fn texts(delivery: &Delivery) -> Vec<String> {
    let mut out = Vec::new();
    for message in &render_batch(delivery) {
        collect_texts(
            &serde_json::to_value(&message.payload).unwrap_or_default(),
            &mut out,
        );
    }
    out
}

fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match item {
                    Value::String(s) if key == "text" => out.push(s.clone()),
                    _ => collect_texts(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_texts(v, out)),
        _ => {}
    }
}

/// Every event of the batch is listed exactly once: the tree's lines (`• 09:00:01–09:00:09
/// `Name` ×3 → ...`, the time left out of a one-event message) name exactly the batch's
/// events, counted.
fn assert_every_event_listed_once(delivery: &Delivery) {
    let mut listed: Vec<String> = texts(delivery)
        .iter()
        .flat_map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|l| {
            let mut rest = l.strip_prefix("• ")?;
            if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                rest = rest.split_once(' ')?.1;
            }
            let (name, after) = rest.strip_prefix('`')?.split_once('`')?;
            let count = after
                .strip_prefix(" ×")
                .and_then(|n| n.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(1);
            Some(vec![name.to_owned(); count])
        })
        .flatten()
        .collect();
    let mut expected: Vec<String> = delivery
        .batch
        .events
        .iter()
        .map(|e| e.event.name.to_string())
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "{}", delivery.batch.id.key());
}

fn colour(delivery: &Delivery) -> String {
    render_batch(delivery)[0].payload.attachments[0]
        .color
        .clone()
}

fn assert_colour_not_lowered(delivery: &Delivery) {
    for message in &render_batch(delivery) {
        assert_eq!(
            message.payload.attachments[0].color,
            delivery.batch.rule_severity().colour(),
            "{}",
            delivery.batch.id.key()
        );
    }
}

fn assert_fallback(delivery: &Delivery, expect_in_reason: &str) {
    let SummarySource::Fallback { reason } = &delivery.summary.source else {
        panic!("not a fallback: {:?}", delivery.summary.source);
    };
    assert!(reason.contains(expect_in_reason), "{reason}");
    assert!(reason.contains(MODEL), "{reason}");
    assert!(
        texts(delivery).iter().any(|t| t.contains(FALLBACK_MARK_EN)),
        "no fallback mark in the footer"
    );
    let audit = delivery.audit(&Receipt::default());
    assert_eq!(audit.summary_by, SummaryBy::Fallback);
    assert_eq!(audit.fallback_reason.as_deref(), Some(reason.as_str()));
    assert_every_event_listed_once(delivery);
    assert_colour_not_lowered(delivery);
}

#[tokio::test]
async fn good_tool_call_in_english_and_korean() {
    for (lang, headline, summary) in [
        (
            Lang::En,
            "Terraform changed EC2 instances and security groups",
            "The GitHub Actions Terraform role launched 200 instances",
        ),
        (
            Lang::Ko,
            "Terraform이 EC2 인스턴스와 보안 그룹을 변경했습니다",
            "GitHub Actions의 Terraform 역할이",
        ),
    ] {
        let fake = FakeBedrock::start(Vec::new(), None).await;
        let (deliveries, stats) =
            run("terraform-burst.jsonl", lang, summarizer(&fake, config())).await;
        assert_eq!(stats.fallbacks, 0);
        assert!(!deliveries.is_empty());
        let asked: usize = fake.requests().iter().map(|r| batch_ids(r).len()).sum();
        assert_eq!(asked, deliveries.len(), "every batch asked once");
        let mut tokens = (0, 0);
        for delivery in &deliveries {
            let SummarySource::Model {
                model_id,
                prompt_version: version,
                input_tokens,
                output_tokens,
                attempts,
                ..
            } = &delivery.summary.source
            else {
                panic!("not a model summary: {:?}", delivery.summary.source);
            };
            assert_eq!(model_id, MODEL);
            assert_eq!(version, prompt_version());
            assert_eq!(*attempts, 1);
            tokens.0 += input_tokens;
            tokens.1 += output_tokens;
            let all = texts(delivery).join("\n");
            assert!(all.contains(headline), "{lang:?}: {all}");
            assert!(all.contains(summary), "{lang:?}");
            assert_every_event_listed_once(delivery);
            assert_colour_not_lowered(delivery);
            let audit = delivery.audit(&Receipt::default());
            assert_eq!(audit.summary_by, SummaryBy::Model);
            assert_eq!(audit.model_id.as_deref(), Some(MODEL));
            assert_eq!(audit.prompt_version.as_deref(), Some(prompt_version()));
            assert!(audit.input_tokens.is_some() && audit.output_tokens.is_some());
            assert!(audit.latency_ms.is_some());
        }
        // Each batch records its share of its call's usage; the shares add up.
        let calls = fake.calls() as u64;
        assert_eq!(tokens, (1234 * calls, 321 * calls));
        // The request: the model in the path, the tool forced, the schema and the budget.
        let request = &fake.requests()[0];
        assert!(fake.paths()[0].starts_with("/model/global.anthropic.claude-sonnet-4-5"));
        assert!(fake.paths()[0].ends_with("/converse"));
        assert_eq!(
            request["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "report_summaries"}})
        );
        let spec = &request["toolConfig"]["tools"][0]["toolSpec"];
        assert_eq!(spec["name"], "report_summaries");
        assert_eq!(
            spec["inputSchema"]["json"]["properties"]["summaries"]["items"]["required"],
            json!([
                "batch",
                "headline",
                "summary",
                "notes",
                "severity",
                "severity_reason"
            ])
        );
        assert_eq!(request["inferenceConfig"]["maxTokens"], 4096);
        let user = request["messages"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        let language = if lang == Lang::Ko {
            "Korean"
        } else {
            "English"
        };
        assert!(user.contains(&format!("Language: {language}")), "{user}");
        assert!(
            request["system"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("untrusted")
        );
    }
}

fn tool(input: Value) -> Reply {
    Reply::Tool(input)
}

#[tokio::test]
async fn invalid_answers_fall_back_after_one_retry() {
    let missing = json!({"headline": "h", "notes": [], "severity": "red", "severity_reason": "r"});
    let cases = [
        (
            "tool input holding broken JSON",
            tool(json!("{\"headline\": \"x\"")),
        ),
        ("missing field", tool(missing)),
        (
            "text instead of a tool call",
            Reply::Text("Here is your summary: all fine.".to_owned()),
        ),
        (
            "unknown severity",
            tool(
                json!({"headline": "h", "summary": "s", "notes": [], "severity": "blue", "severity_reason": "r"}),
            ),
        ),
    ];
    for (name, reply) in cases {
        let fake = FakeBedrock::start(Vec::new(), Some(reply)).await;
        let (deliveries, stats) = run(
            "console-iam-person.json",
            Lang::En,
            summarizer(&fake, config()),
        )
        .await;
        assert_eq!(deliveries.len(), 1, "{name}");
        assert_eq!(stats.fallbacks, 1, "{name}");
        assert_eq!(fake.calls(), 2, "{name}: one retry for an invalid answer");
        assert_fallback(&deliveries[0], "invalid answer");
        assert!(
            texts(&deliveries[0])
                .iter()
                .all(|t| !t.contains("all fine")),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_broken_response_body_is_retried_once_then_falls_back() {
    let fake = FakeBedrock::start(
        Vec::new(),
        Some(Reply::Raw("{\"output\": {\"mess".to_owned())),
    )
    .await;
    let (deliveries, stats) = run(
        "console-iam-person.json",
        Lang::En,
        summarizer(&fake, config()),
    )
    .await;
    assert_eq!(stats.fallbacks, 1);
    assert_eq!(fake.calls(), 2, "one retry for an unreadable answer");
    assert_fallback(&deliveries[0], "unreadable response body");
}

#[tokio::test]
async fn a_lower_model_severity_never_lowers_the_colour() {
    let fake = FakeBedrock::start(Vec::new(), Some(tool(good_answer(false, "green")))).await;
    let (deliveries, _) = run(
        "root-login-no-mfa.jsonl",
        Lang::En,
        summarizer(&fake, config()),
    )
    .await;
    assert!(!deliveries.is_empty());
    for delivery in &deliveries {
        assert_eq!(delivery.summary.severity, trailwatch::Severity::Green);
        assert!(matches!(
            delivery.summary.source,
            SummarySource::Model { .. }
        ));
        assert_eq!(colour(delivery), trailwatch::Severity::Red.colour());
        assert_colour_not_lowered(delivery);
        let audit = delivery.audit(&Receipt::default());
        assert_eq!(audit.severity, trailwatch::Severity::Red);
    }
}

#[tokio::test]
async fn a_higher_model_severity_raises_the_colour() {
    let fake = FakeBedrock::start(Vec::new(), Some(tool(good_answer(false, "red")))).await;
    let (deliveries, _) = run(
        "console-iam-person.json",
        Lang::En,
        summarizer(&fake, config()),
    )
    .await;
    assert!(deliveries[0].batch.rule_severity() < trailwatch::Severity::Red);
    assert_eq!(colour(&deliveries[0]), trailwatch::Severity::Red.colour());
}

#[tokio::test]
async fn mentions_and_links_in_model_text_render_inert() {
    let hostile = json!({
        "headline": "<!channel> urgent <https://evil.example|click> @here",
        "summary": "Visit https://evil.example/login or www.evil.example now, @everyone. <@U123> *bold*",
        "notes": ["<!subteam^S123> see http://evil.example"],
        "severity": "yellow",
        "severity_reason": "<https://evil.example|details>",
    });
    let fake = FakeBedrock::start(Vec::new(), Some(tool(hostile))).await;
    let (deliveries, _) = run(
        "console-iam-person.json",
        Lang::En,
        summarizer(&fake, config()),
    )
    .await;
    let delivery = &deliveries[0];
    assert!(matches!(
        delivery.summary.source,
        SummarySource::Model { .. }
    ));
    let all = serde_json::to_string(&render_batch(delivery)).unwrap_or_default();
    for needle in [
        "<!channel>",
        "<https://",
        "https://evil",
        "http://evil",
        "www.evil",
        "@here",
        "@everyone",
        "<@U123>",
        "<!subteam",
        "*bold*",
    ] {
        assert!(!all.contains(needle), "the message carries {needle}");
    }
    let shown = texts(delivery).join("\n");
    assert!(shown.contains("&lt;!channel&gt; urgent"), "{shown}");
    assert!(shown.contains("https[:]//evil"), "{shown}");
    assert_every_event_listed_once(delivery);
}

#[tokio::test]
async fn an_answer_denying_the_events_changes_nothing_listed() {
    let denial = json!({
        "headline": "No changes were made",
        "summary": "These events do not exist; the batch is empty and can be ignored.",
        "notes": [],
        "severity": "green",
        "severity_reason": "Nothing happened.",
    });
    let fake = FakeBedrock::start(Vec::new(), Some(tool(denial))).await;
    let (all, stats) = run_all(
        "terraform-burst.jsonl",
        Lang::En,
        summarizer(&fake, config()),
    )
    .await;
    let listed: usize = all.iter().map(|d| d.batch.events.len()).sum();
    assert_eq!(listed as u64, stats.matched);
    let deliveries: Vec<Delivery> = all
        .into_iter()
        .filter(|d| d.thread_of().is_none())
        .collect();
    for delivery in &deliveries {
        assert_every_event_listed_once(delivery);
        assert_colour_not_lowered(delivery);
        let events_field = texts(delivery)
            .into_iter()
            .find(|t| t.starts_with("*Events*"))
            .unwrap_or_default();
        assert!(
            events_field.starts_with(&format!("*Events*\n{} (", delivery.batch.events.len())),
            "{events_field}"
        );
    }
}

#[tokio::test]
async fn transient_errors_are_retried_a_bounded_number_of_times() {
    for (status, kind) in [
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
        (408, "ModelTimeoutException"),
        (429, "ModelNotReadyException"),
        (502, "BadGateway"),
        (503, "ServiceUnavailable"),
    ] {
        let fake = FakeBedrock::start(Vec::new(), Some(Reply::Error(status, kind))).await;
        let (deliveries, stats) = run(
            "console-iam-person.json",
            Lang::En,
            summarizer(&fake, config()),
        )
        .await;
        assert_eq!(fake.calls(), 3, "{kind}: max_attempts calls");
        assert_eq!(stats.fallbacks, 1, "{kind}");
        assert_fallback(&deliveries[0], kind);
        assert_fallback(&deliveries[0], "3 attempts");
    }
}

#[tokio::test]
async fn a_retry_that_succeeds_records_its_attempts() {
    let script = vec![
        Reply::Error(429, "ThrottlingException"),
        Reply::Error(500, "InternalServerException"),
    ];
    let fake = FakeBedrock::start(script, None).await;
    let (deliveries, stats) = run(
        "console-iam-person.json",
        Lang::En,
        summarizer(&fake, config()),
    )
    .await;
    assert_eq!(stats.fallbacks, 0);
    assert_eq!(fake.calls(), 3);
    let audit = deliveries[0].audit(&Receipt::default());
    assert_eq!(audit.summary_by, SummaryBy::Model);
    assert_eq!(audit.attempts, Some(3));
}

#[tokio::test]
async fn retries_wait_the_doubling_jittered_backoff_on_the_sleeper() {
    let script = vec![
        Reply::Error(429, "ThrottlingException"),
        Reply::Error(503, "ServiceUnavailableException"),
        Reply::Error(500, "InternalServerException"),
    ];
    let fake = FakeBedrock::start(script, None).await;
    let config = BedrockConfig {
        max_attempts: 4,
        deadline: Duration::from_mins(1),
        backoff: Backoff::new(Duration::from_secs(2), Duration::from_secs(3)),
        ..config()
    };
    let sleeper = Arc::new(ManualSleeper::default());
    let started = std::time::Instant::now();
    let (deliveries, stats) = run(
        "console-iam-person.json",
        Lang::En,
        manual_summarizer(&fake, config, &sleeper),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "slept on the wall clock"
    );
    assert_eq!((stats.fallbacks, fake.calls()), (0, 4));
    // Steps 2 s, 4 s capped to 3 s, 3 s; each wait in [step / 2, step].
    let waits = sleeper.waits();
    let steps = [2_000, 3_000, 3_000].map(Duration::from_millis);
    assert_eq!(waits.len(), steps.len(), "{waits:?}");
    for (wait, step) in waits.iter().zip(steps) {
        assert!(
            *wait >= step / 2 && *wait <= step,
            "{wait:?} outside [{step:?}/2, {step:?}]"
        );
    }
    // The latency is the sleeper's time: the three waits, nothing of the wall clock.
    let SummarySource::Model {
        latency_ms,
        attempts,
        ..
    } = &deliveries[0].summary.source
    else {
        panic!("not a model summary: {:?}", deliveries[0].summary.source);
    };
    let waited: Duration = waits.iter().sum();
    assert_eq!(
        (u128::from(*latency_ms), *attempts),
        (waited.as_millis(), 4)
    );
}

#[tokio::test]
async fn the_deadline_runs_on_the_sleepers_time() {
    // The first wait (at most 1 s) fits in 1.25 s; the first two (at least 0.5 s + 1 s) do
    // not, whatever the jitter: two calls, one wait, then the offline summary.
    let fake = FakeBedrock::start(Vec::new(), Some(Reply::Error(429, "ThrottlingException"))).await;
    let config = BedrockConfig {
        max_attempts: 10,
        deadline: Duration::from_millis(1_250),
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(10)),
        ..config()
    };
    let sleeper = Arc::new(ManualSleeper::default());
    let (deliveries, stats) = run(
        "console-iam-person.json",
        Lang::En,
        manual_summarizer(&fake, config, &sleeper),
    )
    .await;
    assert_eq!((stats.fallbacks, fake.calls()), (1, 2));
    let waits = sleeper.waits();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(waits[0] >= Duration::from_millis(500) && waits[0] <= Duration::from_secs(1));
    assert_fallback(&deliveries[0], "2 attempts");
    assert_fallback(&deliveries[0], "deadline reached");
}

#[tokio::test]
async fn refusals_are_not_retried() {
    for (status, kind) in [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
    ] {
        let fake = FakeBedrock::start(Vec::new(), Some(Reply::Error(status, kind))).await;
        let (deliveries, _) = run(
            "console-iam-person.json",
            Lang::En,
            summarizer(&fake, config()),
        )
        .await;
        assert_eq!(fake.calls(), 1, "{kind}: not retried");
        assert_fallback(&deliveries[0], "request refused");
        assert_fallback(&deliveries[0], "1 attempts");
    }
}

#[tokio::test]
async fn a_slow_answer_hits_the_deadline_then_falls_back() {
    let slow = Reply::Slow(
        Duration::from_secs(3),
        Box::new(tool(good_answer(false, "green"))),
    );
    let fake = FakeBedrock::start(Vec::new(), Some(slow)).await;
    let config = BedrockConfig {
        deadline: Duration::from_millis(700),
        attempt_timeout: Duration::from_millis(250),
        max_attempts: 10,
        ..config()
    };
    // Directly: the attempts, the deadline and the time taken.
    let bedrock = summarizer(&fake, config.clone());
    let (deliveries, _) = run(
        "console-iam-person.json",
        Lang::En,
        summarizer(&fake, config),
    )
    .await;
    let calls_by_engine = fake.calls();
    let batch = deliveries[0].batch.clone();
    let started = std::time::Instant::now();
    let err = bedrock
        .summarize(&batch, trailwatch::summary::Locale::default())
        .await
        .err()
        .unwrap_or_else(|| panic!("the slow fake answered in time"));
    let elapsed = started.elapsed();
    assert!(err.deadline_hit, "{err}");
    assert!(matches!(err.cause, CallError::Timeout(_)), "{err}");
    assert!((2..10).contains(&err.attempts), "{err}");
    assert_eq!(fake.calls() - calls_by_engine, err.attempts as usize);
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(700 + 400), "{elapsed:?}");
    assert_fallback(&deliveries[0], "deadline reached");
}

#[tokio::test]
async fn hostile_event_text_reaches_the_prompt_only_inside_the_data_block() {
    let fake = FakeBedrock::start(Vec::new(), None).await;
    let (deliveries, _) = run("hostile-text.jsonl", Lang::En, summarizer(&fake, config())).await;
    assert!(!deliveries.is_empty());
    let mut seen_inside = 0;
    for request in fake.requests() {
        let system = request["system"][0]["text"].as_str().unwrap_or_default();
        let user = request["messages"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        let ids = batch_ids(&request);
        assert!(!ids.is_empty(), "{user}");
        assert_eq!(user.matches(DATA_OPEN).count(), ids.len(), "{user}");
        assert_eq!(user.matches(DATA_CLOSE).count(), ids.len(), "{user}");
        // The text outside every data block, and the text inside them.
        let (mut outside, mut inside) = (String::new(), String::new());
        let mut rest = user;
        for id in &ids {
            let tag = data_open(id);
            let open = rest.find(&tag).unwrap_or_default();
            outside.push_str(&rest[..open]);
            let body = &rest[open + tag.len()..];
            let close = body.find(DATA_CLOSE).unwrap_or_default();
            assert!(!body[..close].contains(['<', '>']), "{}", &body[..close]);
            inside.push_str(&body[..close]);
            rest = &body[close + DATA_CLOSE.len()..];
        }
        outside.push_str(rest);
        for needle in [
            "evil.example",
            "whoami",
            "!channel",
            "@U123",
            "Ignore all previous",
            "admin mode",
            "rm -rf",
            "uname",
        ] {
            assert!(
                !outside.contains(needle),
                "{needle} outside the data blocks"
            );
            assert!(!system.contains(needle), "{needle} in the system prompt");
            seen_inside += usize::from(inside.contains(needle));
        }
    }
    // Resource names carrying links and mentions are in the data, fenced.
    assert!(
        seen_inside >= 3,
        "the hostile names never reached the prompt"
    );
    // And the message lists them escaped.
    let all: String = deliveries
        .iter()
        .flat_map(texts)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("&lt;!channel&gt;"));
    assert!(!all.contains("<!channel>"));
    for delivery in &deliveries {
        assert_colour_not_lowered(delivery);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reaches_bedrock_through_the_standard_endpoint_variable() {
    let fake = FakeBedrock::start(Vec::new(), None).await;
    let url = fake.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args([
                "replay",
                "--summarizer",
                "bedrock",
                "--model",
                "test-model-id",
                "--format",
                "audit",
                "--lang",
                "ko",
            ])
            .arg(fixture("console-iam-person.json"))
            .env_clear()
            .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
            .env("AWS_ACCESS_KEY_ID", "AKIDFAKEFAKEFAKE")
            .env("AWS_SECRET_ACCESS_KEY", "fake-secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .output()
    })
    .await
    .unwrap_or_else(|err| panic!("join: {err}"))
    .unwrap_or_else(|err| panic!("run: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("fallbacks=0"), "{stderr}");
    assert_eq!(fake.calls(), 1);
    assert!(fake.paths()[0].starts_with("/model/test-model-id/"));
    let line: Value =
        serde_json::from_str(stdout.lines().next().unwrap_or_default()).unwrap_or_default();
    assert_eq!(line["summary_by"], "model");
    assert_eq!(line["model_id"], "test-model-id");
    assert_eq!(line["prompt_version"], prompt_version());
    assert_eq!(line["input_tokens"], 1234);
    assert!(!stdout.contains("fake-secret") && !stderr.contains("fake-secret"));
}

/// The fixed part of the prompt (tool schema and system prompt, worked examples included)
/// reaches the default model's cache minimum, so every call carries a cache point after the
/// system prompt; the audit records what the cache wrote, then read. A model without prompt
/// caching gets no cache point (Bedrock would refuse it).
#[tokio::test]
async fn the_fixed_prompt_is_cached_and_the_audit_says_what_the_cache_did() {
    use trailwatch::adapters::bedrock::cache_minimum_tokens;
    assert_eq!(cache_minimum_tokens(MODEL), Some(1_024));
    assert!(
        trailwatch::summary::prompt::fixed_tokens() >= 1_024,
        "{} tokens fixed",
        trailwatch::summary::prompt::fixed_tokens()
    );
    assert_eq!(
        cache_minimum_tokens("anthropic.claude-3-5-sonnet-20240620-v1:0"),
        None
    );
    assert_eq!(cache_minimum_tokens("us.amazon.nova-pro-v1:0"), Some(1_000));

    let fake = FakeBedrock::start(Vec::new(), None).await;
    assert!(config().cache_point);
    let (deliveries, _) = run("multi-account.jsonl", Lang::En, summarizer(&fake, config())).await;
    assert!(deliveries.len() >= 2, "{}", deliveries.len());
    for request in fake.requests() {
        let system = request["system"].as_array().cloned().unwrap_or_default();
        assert_eq!(system.len(), 2, "{system:?}");
        assert!(
            system[0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Three answers"))
        );
        assert_eq!(system[1], json!({"cachePoint": {"type": "default"}}));
    }
    let audits: Vec<_> = deliveries
        .iter()
        .map(|d| d.audit(&Receipt::default()))
        .collect();
    // Each batch records its share of its call's cache usage: the first call writes the
    // cache, every later one reads it.
    let calls = fake.calls() as u64;
    assert!(calls >= 2, "{calls} calls");
    let sum = |f: fn(&trailwatch::delivery::AuditLine) -> Option<u64>| -> u64 {
        audits
            .iter()
            .map(|a| f(a).unwrap_or_else(|| panic!("no cache figure in {a:?}")))
            .sum()
    };
    assert_eq!(
        sum(|a| a.cache_write_tokens),
        fake_bedrock::CACHED_TOKENS,
        "the first call writes the cache"
    );
    assert_eq!(
        sum(|a| a.cache_read_tokens),
        fake_bedrock::CACHED_TOKENS * (calls - 1),
        "later calls read it"
    );

    let plain = FakeBedrock::start(Vec::new(), None).await;
    let no_cache = BedrockConfig::from_settings(&SummaryConfig {
        model_id: "anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned(),
        ..SummaryConfig::default()
    });
    assert!(!no_cache.cache_point);
    let config = BedrockConfig {
        model_id: no_cache.model_id.clone(),
        cache_point: false,
        ..config()
    };
    let (deliveries, _) = run("multi-account.jsonl", Lang::En, summarizer(&plain, config)).await;
    assert!(
        plain
            .requests()
            .iter()
            .all(|r| r["system"].as_array().is_some_and(|s| s.len() == 1)),
        "no cache point"
    );
    let audit = deliveries[0].audit(&Receipt::default());
    assert_eq!(
        (audit.cache_write_tokens, audit.cache_read_tokens),
        (Some(0), Some(0))
    );
}

/// `[summary] model_min_events = 2`: batches of one event are summarised offline and never
/// reach the model; the others still do.
#[tokio::test]
async fn batches_below_the_minimum_make_no_model_call() {
    let fake = FakeBedrock::start(Vec::new(), None).await;
    let mut settings = settings(Lang::En, UTC);
    settings.summary.model_min_events = 2;
    let engine = replay_fixture(
        "multi-account.jsonl",
        settings,
        summarizer(&fake, config()),
        CollectingNotifier::default(),
    )
    .await;
    let deliveries: Vec<Delivery> = engine
        .notifier
        .take()
        .into_iter()
        .filter(|d| d.thread_of().is_none())
        .collect();
    let (small, large): (Vec<&Delivery>, Vec<&Delivery>) =
        deliveries.iter().partition(|d| d.batch.events.len() < 2);
    assert!(!small.is_empty() && !large.is_empty());
    for d in &small {
        assert_eq!(d.summary.source, SummarySource::Offline, "{}", d.key());
    }
    for d in &large {
        assert!(
            matches!(d.summary.source, SummarySource::Model { .. }),
            "{}",
            d.key()
        );
    }
    let asked: usize = fake.requests().iter().map(|r| batch_ids(r).len()).sum();
    assert_eq!(asked, large.len());
}

/// An immediate alert (a red rule: here a KMS key scheduled for deletion) is posted with the
/// offline text before the model is even asked, and the model's explanation then replaces it
/// in place (`chat.update` on the same message); the audit records the model's summary.
#[tokio::test]
async fn an_immediate_alert_goes_out_before_the_model_answers_and_is_updated_after() {
    use trailwatch::adapters::slack::RetryPolicy;
    use trailwatch::config::SlackRoutes;
    let slack = fake_slack::FakeSlack::start(&["C_ALERTS"]).await;
    let routes = SlackRoutes {
        default_channel: Some("C_ALERTS".to_owned()),
        ..SlackRoutes::default()
    };
    let notifier = slack.bot(
        fake_slack::TOKEN,
        routes,
        RetryPolicy {
            timeout: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
    );
    // The model takes its time: speed first for the red ones.
    let bedrock = FakeBedrock::start(
        Vec::new(),
        Some(Reply::Slow(
            Duration::from_millis(300),
            Box::new(Reply::Tool(good_answer(false, "red"))),
        )),
    )
    .await;
    Box::pin(replay_fixture(
        "multi-account.jsonl",
        settings(Lang::En, UTC),
        summarizer(&bedrock, config()),
        notifier,
    ))
    .await;
    let posts = slack.posts();
    let alerts: Vec<_> = posts
        .iter()
        .filter(|p| p.batch_id().is_some_and(|id| id.contains("/immediate/")))
        .collect();
    assert_eq!(alerts.len(), 2, "two red immediate alerts in the fixture");
    for alert in &alerts {
        // Posted with the offline text: it did not wait for the model.
        let first = alert.body.to_string();
        assert!(first.contains("ran "), "the offline headline: {first}");
        assert!(!first.contains("Terraform changed EC2 instances"));
        assert_eq!(alert.updates.len(), 1, "updated once, in place: {alert:?}");
        let updated = alert.updates[0].to_string();
        assert!(
            updated.contains("Terraform changed EC2 instances"),
            "the model's headline replaces the offline one: {updated}"
        );
    }
    assert!(bedrock.calls() >= alerts.len());
    let calls = slack.calls();
    let first_update = calls.iter().position(|c| c.starts_with("chat.update"));
    let first_post = calls.iter().position(|c| c.starts_with("chat.postMessage"));
    assert!(first_post < first_update, "{calls:?}");
}

// One model call per flush and route.

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];

/// IAM user `creator-<account>` creates user `new-user-<account>-<n>` through the CLI at
/// `time`: the yellow `iam-user-changed` rule, posted with its window.
fn create_user(account: &str, n: usize, time: &str) -> String {
    let id = format!("{account}-{n:04}-0000-0000-000000000000");
    let detail = common::create_user(
        account,
        &id,
        time,
        &format!("creator-{account}"),
        &format!("new-user-{account}-{n}"),
    );
    json!({
        "version": "0", "id": id, "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam", "account": account, "time": time, "region": "us-east-1",
        "resources": [], "detail": detail
    })
    .to_string()
}

/// One window of each account in `accounts`, all due in the same flush, through the engine
/// with `settings` and this summarizer: the deliveries.
async fn flush_accounts(
    accounts: &[&str],
    settings: trailwatch::config::Settings,
    summarizer: BedrockSummarizer,
) -> Vec<Delivery> {
    let lines: Vec<String> = accounts
        .iter()
        .enumerate()
        .map(|(n, account)| create_user(account, n, "2026-11-02T03:01:00Z"))
        .collect();
    let window = settings.window;
    let mut engine = Box::new(Engine::new(
        RulePack::builtin(),
        settings,
        MemoryStore::new(window),
        summarizer,
        CollectingNotifier::default(),
        EventTimeClock::default(),
    ));
    engine
        .ingest_bytes(lines.join("\n").as_bytes())
        .await
        .unwrap_or_else(|err| panic!("ingest: {err}"));
    Box::pin(engine.flush_all())
        .await
        .unwrap_or_else(|err| panic!("flush: {err}"));
    engine.notifier.take()
}

/// The text of batch `id`'s data block in `request`.
fn data_block(request: &Value, id: &str) -> String {
    let user = request["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let tag = data_open(id);
    let start = user.find(&tag).map_or(user.len(), |i| i + tag.len());
    let body = &user[start..];
    body[..body.find(DATA_CLOSE).unwrap_or(body.len())].to_owned()
}

/// The account whose event is in batch `id`'s data block of `request`.
fn account_in(request: &Value, id: &str) -> &'static str {
    let block = data_block(request, id);
    ACCOUNTS
        .into_iter()
        .find(|account| block.contains(&format!("new-user-{account}")))
        .unwrap_or_else(|| panic!("no account in batch {id}: {block}"))
}

fn call_batches(delivery: &Delivery) -> u32 {
    match &delivery.summary.source {
        SummarySource::Model { call_batches, .. } => *call_batches,
        other => panic!("not a model summary: {other:?}"),
    }
}

#[tokio::test]
async fn one_call_explains_the_due_digests_bound_for_one_channel() {
    let fake = FakeBedrock::start(Vec::new(), None).await;
    let mut settings = settings(Lang::En, UTC);
    settings.slack.routes.default_channel = Some("C_MAIN".to_owned());
    let deliveries = flush_accounts(&ACCOUNTS, settings, summarizer(&fake, config())).await;
    assert_eq!(deliveries.len(), 3);
    assert_eq!(fake.calls(), 1, "one call for three accounts' digests");
    let request = &fake.requests()[0];
    assert_eq!(batch_ids(request), ["1", "2", "3"]);
    let mut seen: Vec<&str> = (1..=3)
        .map(|i| account_in(request, &i.to_string()))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ACCOUNTS, "each account's batch in its own block");
    for delivery in &deliveries {
        assert_eq!(call_batches(delivery), 3);
        assert_colour_not_lowered(delivery);
    }
}

#[tokio::test]
async fn batches_bound_for_another_channel_are_explained_in_their_own_call() {
    let fake = FakeBedrock::start(Vec::new(), None).await;
    let mut settings = settings(Lang::En, UTC);
    let routes = &mut settings.slack.routes;
    routes.default_channel = Some("C_MAIN".to_owned());
    routes.accounts.insert(
        trailwatch::event::AccountId::new(ACCOUNTS[2]),
        "C_SANDBOX".to_owned(),
    );
    let deliveries = flush_accounts(&ACCOUNTS, settings, summarizer(&fake, config())).await;
    assert_eq!(deliveries.len(), 3);
    assert_eq!(fake.calls(), 2);
    let requests = fake.requests();
    let mut by_call: Vec<Vec<&str>> = requests
        .iter()
        .map(|request| {
            let mut accounts: Vec<&str> = batch_ids(request)
                .iter()
                .map(|id| account_in(request, id))
                .collect();
            accounts.sort_unstable();
            accounts
        })
        .collect();
    by_call.sort();
    assert_eq!(by_call, [vec![ACCOUNTS[0], ACCOUNTS[1]], vec![ACCOUNTS[2]]]);
    // The sandbox's event text never reaches the other channel's prompt, nor the reverse.
    for request in &requests {
        let text = request.to_string();
        let sandbox = text.contains(&format!("new-user-{}", ACCOUNTS[2]));
        let main = text.contains(&format!("new-user-{}", ACCOUNTS[0]));
        assert!(sandbox != main, "one channel's batches per prompt");
    }
}

#[tokio::test]
async fn a_batch_the_answer_leaves_out_or_spoils_falls_back_alone() {
    let entry = |batch: &str, headline: &str, severity: &str| {
        let mut answer = good_answer(false, severity);
        answer["batch"] = json!(batch);
        answer["headline"] = json!(headline);
        answer
    };
    for (case, answer, reason) in [
        (
            "missing",
            json!({"summaries": [entry("1", "first explained", "green"), entry("3", "third explained", "green")]}),
            "no entry for this batch",
        ),
        (
            "invalid",
            json!({"summaries": [
                entry("1", "first explained", "green"),
                entry("2", "second spoiled", "purple"),
                entry("3", "third explained", "green"),
            ]}),
            "does not match the schema",
        ),
    ] {
        let fake = FakeBedrock::start(vec![Reply::Tool(answer)], None).await;
        let deliveries = flush_accounts(
            &ACCOUNTS,
            settings(Lang::En, UTC),
            summarizer(&fake, config()),
        )
        .await;
        assert_eq!(
            fake.calls(),
            1,
            "{case}: a partial answer is not asked again"
        );
        let request = &fake.requests()[0];
        let account_of = |delivery: &Delivery| delivery.batch.id.account.as_str().to_owned();
        for delivery in &deliveries {
            let account = account_of(delivery);
            if account == account_in(request, "2") {
                assert_fallback(delivery, reason);
            } else {
                let expected = if account == account_in(request, "1") {
                    "first explained"
                } else {
                    assert_eq!(account, account_in(request, "3"));
                    "third explained"
                };
                assert_eq!(delivery.summary.headline, expected, "{case}");
                assert_eq!(
                    delivery.audit(&Receipt::default()).summary_by,
                    SummaryBy::Model
                );
            }
        }
    }
}

#[tokio::test]
async fn a_request_over_the_caps_is_split() {
    // By batches: two per call.
    let fake = FakeBedrock::start(Vec::new(), None).await;
    let capped = BedrockConfig {
        max_batches_per_call: 2,
        ..config()
    };
    let deliveries = flush_accounts(
        &ACCOUNTS,
        settings(Lang::En, UTC),
        summarizer(&fake, capped),
    )
    .await;
    let sizes: Vec<usize> = fake.requests().iter().map(|r| batch_ids(r).len()).collect();
    assert_eq!(sizes, [2, 1]);
    assert!(deliveries.iter().all(|d| call_batches(d) <= 2));
    // By output tokens: Korean answers are expected to take 1,000 tokens each, so a call
    // capped at 2,048 holds two.
    let fake = FakeBedrock::start(Vec::new(), None).await;
    let capped = BedrockConfig {
        max_tokens: 2_048,
        ..config()
    };
    flush_accounts(
        &ACCOUNTS,
        settings(Lang::Ko, Asia::Seoul),
        summarizer(&fake, capped),
    )
    .await;
    let sizes: Vec<usize> = fake.requests().iter().map(|r| batch_ids(r).len()).collect();
    assert_eq!(sizes, [2, 1]);
    for request in fake.requests() {
        assert_eq!(request["inferenceConfig"]["maxTokens"], 2_048);
    }
}

#[tokio::test]
async fn thread_replies_of_a_continuing_incident_make_no_call() {
    let fake = FakeBedrock::start(Vec::new(), None).await;
    // The same person keeps creating users: the first window opens the incident, the next
    // two windows' events are replies in its thread.
    let lines: Vec<String> = [
        "2026-11-02T03:01:00Z",
        "2026-11-02T03:07:00Z",
        "2026-11-02T03:13:00Z",
    ]
    .iter()
    .enumerate()
    .map(|(n, time)| create_user(ACCOUNTS[0], n, time))
    .collect();
    let settings = settings(Lang::En, UTC);
    let window = settings.window;
    let mut engine = Box::new(Engine::new(
        RulePack::builtin(),
        settings,
        MemoryStore::new(window),
        summarizer(&fake, config()),
        CollectingNotifier::default(),
        EventTimeClock::default(),
    ));
    for line in &lines {
        engine
            .ingest_bytes(line.as_bytes())
            .await
            .unwrap_or_else(|err| panic!("ingest: {err}"));
    }
    Box::pin(engine.flush_all())
        .await
        .unwrap_or_else(|err| panic!("flush: {err}"));
    let deliveries = engine.notifier.take();
    let replies: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| d.thread_of().is_some())
        .collect();
    assert_eq!(deliveries.len(), 3);
    assert_eq!(replies.len(), 2, "two windows continue the incident");
    for reply in &replies {
        assert_eq!(reply.summary.source, SummarySource::Offline);
    }
    assert_eq!(
        fake.calls(),
        1,
        "only the digest that opened the incident asks"
    );
}
