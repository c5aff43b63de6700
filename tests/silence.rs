//! A pipeline that cannot go quiet unnoticed, through the Lambda handler: heartbeats are
//! recognised and kept per account and region, silence opens one notice per source and
//! closes when heartbeats resume, ingest calls neither Slack nor Bedrock, and a tick with
//! Slack down returns within its budget with the rest left due and its failures counted.
#![cfg(feature = "cloud")]

mod common;

use common::{Lines, beat, pipe};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use trailwatch::Severity;
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::app::lambda::{Handler, Response};
use trailwatch::config::Settings;
use trailwatch::delivery::Placement;
use trailwatch::engine::Engine;
use trailwatch::engine::heartbeat::SourceState;
use trailwatch::event::{AccountId, Heartbeat};
use trailwatch::ports::{Delivery, Notifier, Receipt, Retryable, StateKind, Store};
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, Locale, OfflineSummarizer, Summarizer, Summary};
use trailwatch::window::{Batch, ManualClock};

const TICK: &[u8] = br#"{"trailwatch":"tick"}"#;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_else(|err| panic!("{text}: {err}"))
}

/// One CloudTrail event of an immediate rule (root console sign-in without MFA), enveloped.
fn root_login(time: &str) -> String {
    json!({
        "version": "0", "id": format!("env-{time}"), "detail-type": "AWS Console Sign In via CloudTrail",
        "source": "aws.signin", "account": "111111111111", "time": time, "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08", "eventID": format!("root-{time}"), "eventTime": time,
            "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1", "recipientAccountId": "111111111111",
            "sourceIPAddress": "198.51.100.7", "userAgent": "Mozilla/5.0",
            "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111111111111:root", "accountId": "111111111111"},
            "additionalEventData": {"MFAUsed": "No"},
            "responseElements": {"ConsoleLogin": "Success"},
            "eventType": "AwsConsoleSignIn"
        }
    })
    .to_string()
}

fn settings() -> Settings {
    common::settings(Lang::En, chrono_tz::UTC)
}

type TestHandler<N, M = OfflineSummarizer> = Handler<MemoryStore, M, N, ManualClock>;

fn handler_with<N: Notifier, M: Summarizer + Sync>(
    settings: Settings,
    summarizer: M,
    notifier: N,
    now: &str,
) -> (TestHandler<N, M>, Lines) {
    let engine = Engine::new(
        RulePack::builtin(),
        settings,
        MemoryStore::default(),
        summarizer,
        notifier,
        ManualClock::new(at(now)),
    );
    let lines = Lines::default();
    let handler = Handler::new(engine).with_metrics_output(Box::new(lines.clone()));
    (handler, lines)
}

async fn handle<N: Notifier, M: Summarizer + Sync>(
    handler: &TestHandler<N, M>,
    payload: &[u8],
) -> Response {
    handler
        .handle(payload)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

async fn source(store: &MemoryStore, key: &str) -> Option<SourceState> {
    let item = store
        .state(StateKind::Source, key)
        .await
        .unwrap_or_default()?;
    serde_json::from_str(&item.body).ok()
}

/// The notices posted so far: (account/region notice name, severity).
fn notices(deliveries: &[Delivery]) -> Vec<(String, Severity)> {
    deliveries
        .iter()
        .filter(|d| d.placement == Placement::Notice)
        .map(|d| (d.batch.id.event.clone().unwrap_or_default(), d.severity))
        .collect()
}

#[tokio::test]
async fn a_heartbeat_is_recognised_and_updates_its_sources_last_seen() {
    let (handler, lines) = handler_with(
        settings(),
        OfflineSummarizer,
        CollectingNotifier::default(),
        "2026-11-02T03:00:30Z",
    );
    let payload = pipe(&[
        beat("111111111111", "us-east-1", "2026-11-02T03:00:00Z"),
        beat("111111111111", "ap-northeast-2", "2026-11-02T03:00:00Z"),
    ]);
    let response = handle(&handler, &payload).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap_or_default(),
        json!({"batchItemFailures": []})
    );
    let engine = handler.engine().await;
    let stats = engine.stats();
    assert_eq!(
        (stats.heartbeats, stats.quarantined, stats.matched),
        (2, 0, 0)
    );
    let kept = source(&engine.store, "111111111111/us-east-1").await;
    assert_eq!(
        kept.map(|s| s.last_beat),
        Some(at("2026-11-02T03:00:00Z")),
        "last seen kept per account and region"
    );
    assert!(
        source(&engine.store, "111111111111/ap-northeast-2")
            .await
            .is_some()
    );
    assert_eq!(lines.values()[0]["Heartbeats"], 2.0);
}

#[tokio::test]
async fn silence_opens_one_notice_per_source_and_closes_when_heartbeats_resume() {
    let (handler, lines) = handler_with(
        settings(),
        OfflineSummarizer,
        CollectingNotifier::default(),
        "2026-11-02T03:00:30Z",
    );
    handle(
        &handler,
        &pipe(&[
            beat("111111111111", "us-east-1", "2026-11-02T03:00:00Z"),
            beat("111111111111", "ap-northeast-2", "2026-11-02T03:00:00Z"),
        ]),
    )
    .await;
    // Ten minutes on: not silent yet (the default threshold is 15 minutes).
    handler.engine().await.clock.set(at("2026-11-02T03:10:00Z"));
    handle(&handler, TICK).await;
    assert!(notices(&handler.engine().await.notifier.deliveries()).is_empty());

    // Only ap-northeast-2 keeps beating; us-east-1 falls silent at 03:15.
    handler.engine().await.clock.set(at("2026-11-02T03:14:00Z"));
    handle(
        &handler,
        &pipe(&[beat(
            "111111111111",
            "ap-northeast-2",
            "2026-11-02T03:14:00Z",
        )]),
    )
    .await;
    for minute in ["03:16", "03:17", "03:18"] {
        handler
            .engine()
            .await
            .clock
            .set(at(&format!("2026-11-02T{minute}:00Z")));
        handle(&handler, TICK).await;
    }
    let sent = handler.engine().await.notifier.deliveries();
    assert_eq!(
        notices(&sent),
        vec![("silent-us-east-1".to_owned(), Severity::Red)],
        "one notice for the silent source, not one per tick"
    );
    let silent = sent
        .iter()
        .find(|d| d.placement == Placement::Notice)
        .map(|d| d.summary.headline.clone())
        .unwrap_or_default();
    assert!(
        silent.contains("us-east-1") && silent.contains("2026-11-02 03:00"),
        "{silent}"
    );
    let ticks: Vec<f64> = lines
        .values()
        .iter()
        .filter_map(|l| l["SilentSources"].as_f64())
        .collect();
    assert_eq!(
        ticks,
        vec![0.0, 1.0, 1.0, 1.0],
        "counted at every tick while silent"
    );

    // Heartbeats are back: one green notice, and nothing silent any more.
    handler.engine().await.clock.set(at("2026-11-02T03:25:00Z"));
    handle(
        &handler,
        &pipe(&[beat("111111111111", "us-east-1", "2026-11-02T03:25:00Z")]),
    )
    .await;
    handle(&handler, TICK).await;
    handle(&handler, TICK).await;
    let sent = handler.engine().await.notifier.deliveries();
    assert_eq!(
        notices(&sent),
        vec![
            ("silent-us-east-1".to_owned(), Severity::Red),
            ("resumed-us-east-1".to_owned(), Severity::Green),
        ]
    );
    assert_eq!(
        lines.values().last().map(|l| l["SilentSources"].clone()),
        Some(json!(0.0))
    );
    let state = source(&handler.engine().await.store, "111111111111/us-east-1").await;
    assert!(state.is_some_and(|s| s.silent_since.is_none() && s.notices.is_empty()));
}

#[tokio::test]
async fn a_quiet_source_is_reported_when_configured() {
    let mut settings = settings();
    settings.heartbeat.quiet_after = Some(chrono::TimeDelta::hours(1));
    let (handler, _) = handler_with(
        settings,
        OfflineSummarizer,
        CollectingNotifier::default(),
        "2026-11-02T03:00:30Z",
    );
    handle(&handler, &pipe(&[root_login("2026-11-02T03:00:00Z")])).await;
    handle(
        &handler,
        &pipe(&[beat("111111111111", "us-east-1", "2026-11-02T03:00:10Z")]),
    )
    .await;
    // Heartbeats keep coming, events do not.
    for minute in (5..=70).step_by(5) {
        let now = at("2026-11-02T03:00:10Z") + chrono::TimeDelta::minutes(minute);
        handler.engine().await.clock.set(now);
        let envelope = Heartbeat {
            account: AccountId::new("111111111111"),
            region: "us-east-1".to_owned(),
            time: now,
        }
        .envelope_json();
        handle(&handler, &pipe(&[envelope])).await;
        handle(&handler, TICK).await;
    }
    let sent = handler.engine().await.notifier.deliveries();
    assert_eq!(
        notices(&sent),
        vec![("quiet-us-east-1".to_owned(), Severity::Yellow)]
    );
}

#[tokio::test]
async fn a_heartbeat_of_an_account_outside_the_organisation_is_quarantined() {
    let mut settings = settings();
    settings
        .trust
        .accounts
        .insert(AccountId::new("111111111111"));
    let (handler, _) = handler_with(
        settings,
        OfflineSummarizer,
        CollectingNotifier::default(),
        "2026-11-02T03:00:30Z",
    );
    handle(
        &handler,
        &pipe(&[beat("999999999999", "us-east-1", "2026-11-02T03:00:00Z")]),
    )
    .await;
    let engine = handler.engine().await;
    assert_eq!(
        (engine.stats().quarantined, engine.stats().untrusted),
        (1, 1)
    );
    assert_eq!(engine.stats().heartbeats, 0);
    assert!(
        source(&engine.store, "999999999999/us-east-1")
            .await
            .is_none()
    );
}

/// Counts calls; fails (or not) on demand, slowly.
#[derive(Clone, Default)]
struct Slack(Arc<SlackState>);

#[derive(Default)]
struct SlackState {
    calls: AtomicUsize,
    down: AtomicBool,
}

impl std::ops::Deref for Slack {
    type Target = SlackState;
    fn deref(&self) -> &SlackState {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("Slack is down (injected)")]
struct Down;

impl Retryable for Down {
    fn is_retryable(&self) -> bool {
        true
    }
}

impl Notifier for Slack {
    type Error = Down;

    async fn deliver(&self, _: &Delivery) -> Result<Receipt, Down> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            // As a Slack outage looks from here: the connection hangs, then fails.
            tokio::time::sleep(Duration::from_millis(400)).await;
            return Err(Down);
        }
        Ok(Receipt::default())
    }
}

/// Counts summaries asked for.
#[derive(Clone, Default)]
struct Model(Arc<AtomicUsize>);

impl Summarizer for Model {
    type Error = std::convert::Infallible;

    async fn summarize(&self, batch: &Batch, locale: Locale) -> Result<Summary, Self::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(trailwatch::summary::offline_summary(batch, locale))
    }
}

#[tokio::test]
async fn ingest_makes_no_slack_or_bedrock_call() {
    let slack = Slack::default();
    let model = Model::default();
    let (handler, _) = handler_with(
        settings(),
        model.clone(),
        slack.clone(),
        "2026-11-02T03:20:00Z",
    );
    // Immediate alerts, window events and heartbeats, from the Lambda fixture and more.
    let fixture =
        std::fs::read(common::fixture("lambda").join("pipe-batch.json")).unwrap_or_default();
    handle(&handler, &fixture).await;
    handle(
        &handler,
        &pipe(&[
            root_login("2026-11-02T03:19:00Z"),
            beat("111111111111", "us-east-1", "2026-11-02T03:19:30Z"),
        ]),
    )
    .await;
    assert_eq!(
        slack.calls.load(Ordering::SeqCst),
        0,
        "no post during ingest"
    );
    assert_eq!(
        model.0.load(Ordering::SeqCst),
        0,
        "no summary during ingest"
    );
    assert_eq!(handler.engine().await.stats().queued_alerts, 1);
    // The tick posts them: the alert first.
    handle(&handler, TICK).await;
    assert!(slack.calls.load(Ordering::SeqCst) >= 2);
    assert!(model.0.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_tick_with_slack_down_returns_within_its_budget_with_the_rest_due() {
    let slack = Slack::default();
    let (handler, lines) = handler_with(
        settings(),
        OfflineSummarizer,
        slack.clone(),
        "2026-11-02T03:20:00Z",
    );
    let fixture =
        std::fs::read(common::fixture("lambda").join("pipe-batch.json")).unwrap_or_default();
    handle(&handler, &fixture).await;
    slack.down.store(true, Ordering::SeqCst);
    // One pending alert and two due windows; each post hangs 400 ms, the budget is 150 ms.
    let started = std::time::Instant::now();
    let response = handler
        .handle_within(TICK, Some(Duration::from_millis(150)))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let spent = started.elapsed();
    assert_eq!(
        serde_json::to_value(&response).unwrap_or_default(),
        json!({"flushed": 0})
    );
    assert_eq!(
        slack.calls.load(Ordering::SeqCst),
        1,
        "the first post was cut off, no other started"
    );
    assert!(
        spent < Duration::from_millis(400),
        "gave up the hanging post: {spent:?}"
    );
    let tick = lines.values().last().cloned().unwrap_or_default();
    assert_eq!(
        tick["SendFailures"], 1.0,
        "the outage is counted by this tick: {tick}"
    );
    assert_eq!(tick["FlushDeferred"], 2.0, "both windows left due: {tick}");

    // Slack is back: the next tick sends both windows; the alert's event is in its window
    // (a failed alert goes out with its window), so every event is in exactly one post.
    slack.down.store(false, Ordering::SeqCst);
    let response = handle(&handler, TICK).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap_or_default(),
        json!({"flushed": 2})
    );
    let engine = handler.engine().await;
    assert_eq!(engine.stats().batches, 2);
    assert_eq!(engine.store.unsent(), 0);
}
