//! The recovery paths README "Dead-letter queues and recovery" documents, through the Lambda
//! handler: an archive replay of events already processed adds nothing, a member
//! dead-letter message body put back on the stream is processed like the event it was, and
//! a replayed old heartbeat does not move a source's last-seen back.
#![cfg(feature = "cloud")]

mod common;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::app::lambda::Handler;
use trailwatch::engine::Engine;
use trailwatch::ports::{StateKind, Store};
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::ManualClock;

type TestHandler = Handler<MemoryStore, OfflineSummarizer, CollectingNotifier, ManualClock>;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_else(|err| panic!("{text}: {err}"))
}

fn handler(now: &str) -> TestHandler {
    Handler::new(Engine::new(
        RulePack::builtin(),
        common::settings(Lang::En, chrono_tz::UTC),
        MemoryStore::default(),
        OfflineSummarizer,
        CollectingNotifier::default(),
        ManualClock::new(at(now)),
    ))
    .with_metrics_output(Box::new(std::io::sink()))
}

/// A `DeleteTrail` by an IAM user, as EventBridge delivers it (and as a member rule's
/// dead-letter queue keeps it: the message body is the event).
fn delete_trail() -> Value {
    json!({
        "version": "0", "id": "5e3bd5c4-8e0e-4f4c-9f4f-000000000001",
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail",
        "account": "111111111111", "time": "2026-11-02T03:01:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09", "eventID": "0b7c1d2e-aaaa-4bbb-8ccc-000000000001",
            "eventTime": "2026-11-02T03:01:00Z", "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "DeleteTrail", "awsRegion": "us-east-1",
            "recipientAccountId": "111111111111", "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.15.0", "readOnly": false,
            "userIdentity": {"type": "IAMUser", "userName": "mallory",
                "arn": "arn:aws:iam::111111111111:user/mallory", "accountId": "111111111111"},
            "requestParameters": {"name": "org-trail"}, "responseElements": null,
            "eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management"
        }
    })
}

async fn ingest(handler: &TestHandler, envelopes: &[String]) {
    handler
        .handle(&common::pipe(envelopes))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn an_archive_replay_of_events_already_processed_adds_nothing() {
    let handler = handler("2026-11-02T03:02:00Z");
    ingest(&handler, &[delete_trail().to_string()]).await;
    // What `aws events start-replay` delivers: the same event, with `replay-name` added.
    let mut replayed = delete_trail();
    replayed["replay-name"] = json!("trailwatch-20261102-0300");
    ingest(&handler, &[replayed.to_string()]).await;
    let stats = handler.engine().await.stats();
    assert_eq!(
        (stats.matched, stats.duplicates, stats.quarantined),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_replay_of_events_never_processed_is_ingested_like_the_events() {
    let handler = handler("2026-11-02T03:30:00Z");
    let mut replayed = delete_trail();
    replayed["replay-name"] = json!("trailwatch-20261102-0300");
    ingest(&handler, &[replayed.to_string()]).await;
    handler
        .handle(br#"{"trailwatch":"tick"}"#)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let engine = handler.engine().await;
    assert_eq!(engine.stats().matched, 1);
    let sent = engine.notifier.deliveries();
    let names: Vec<String> = sent
        .iter()
        .flat_map(|d| d.batch.events.iter().map(|e| e.event.name.to_string()))
        .collect();
    assert_eq!(names, ["DeleteTrail"], "posted (as its immediate alert)");
}

#[tokio::test]
async fn a_member_dead_letter_body_put_back_on_the_stream_is_processed_once() {
    let handler = handler("2026-11-02T04:00:00Z");
    // The body as `aws sqs receive-message --query 'Messages[0].Body'` prints it, put back
    // twice (a retried put): one event.
    let body = serde_json::to_string_pretty(&delete_trail()).unwrap_or_default();
    ingest(&handler, std::slice::from_ref(&body)).await;
    ingest(&handler, &[body]).await;
    let stats = handler.engine().await.stats();
    assert_eq!(
        (stats.matched, stats.duplicates, stats.quarantined),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_replayed_old_heartbeat_does_not_move_last_seen_back() {
    let handler = handler("2026-11-02T03:20:00Z");
    ingest(
        &handler,
        &[common::beat(
            "111111111111",
            "us-east-1",
            "2026-11-02T03:20:00Z",
        )],
    )
    .await;
    ingest(
        &handler,
        &[common::beat(
            "111111111111",
            "us-east-1",
            "2026-11-01T09:00:00Z",
        )],
    )
    .await;
    let engine = handler.engine().await;
    let item = engine
        .store
        .state(StateKind::Source, "111111111111/us-east-1")
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("the source is kept"));
    let state: trailwatch::engine::heartbeat::SourceState =
        serde_json::from_str(&item.body).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(state.last_beat, at("2026-11-02T03:20:00Z"));
}
