//! The organisation's accounts from AWS Organizations (issue 18): the adapter against moto,
//! and the Lambda handler reading them at its first invocation and every refresh interval
//! after, so that an account added after the deploy is inside the organisation without a
//! redeploy; a failure keeps what configuration says.
#![cfg(feature = "cloud")]

mod common;

use std::sync::{Arc, Mutex};

use serde_json::json;
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::adapters::organizations::Organizations;
use trailwatch::app::lambda::Handler;
use trailwatch::engine::Engine;
use trailwatch::ports::Directory;
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::ManualClock;

/// A directory whose answer the test sets, counting the reads.
#[derive(Clone)]
struct Scripted {
    answer: Arc<Mutex<Result<Vec<String>, String>>>,
    reads: Arc<Mutex<usize>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

impl Default for Scripted {
    fn default() -> Self {
        Self {
            answer: Arc::new(Mutex::new(Ok(Vec::new()))),
            reads: Arc::default(),
        }
    }
}

impl Scripted {
    fn set(&self, answer: Result<Vec<&str>, &str>) {
        *self
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = answer
            .map(|ids| ids.into_iter().map(str::to_owned).collect())
            .map_err(str::to_owned);
    }

    fn reads(&self) -> usize {
        *self
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Directory for Scripted {
    type Error = Refused;

    async fn accounts(&self) -> Result<Vec<String>, Refused> {
        *self
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        self.answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .map_err(Refused)
    }
}

/// A Pipe batch with one RDS snapshot shared with `target`, at 03:`minute`.
fn share(id: &str, minute: u32, target: &str) -> Vec<u8> {
    let record = common::snapshot_share(id, &format!("2026-11-02T03:{minute:02}:00Z"), target);
    let envelope = json!({
        "version": "0", "id": id, "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.rds", "account": "111111111111",
        "time": format!("2026-11-02T03:{minute:02}:00Z"), "region": "us-east-1",
        "resources": [], "detail": record,
    });
    common::pipe(&[envelope.to_string()])
}

type TestHandler = Handler<MemoryStore, OfflineSummarizer, CollectingNotifier, ManualClock>;

fn handler(directory: &Scripted) -> TestHandler {
    let settings = common::settings(Lang::En, chrono_tz::UTC);
    let window = settings.window;
    Handler::new(Engine::new(
        RulePack::builtin(),
        settings,
        MemoryStore::new(window),
        OfflineSummarizer,
        CollectingNotifier::default(),
        ManualClock::new(at("2026-11-02T03:01:00Z")),
    ))
    .with_metrics_output(Box::new(std::io::sink()))
    .with_directory(directory.clone(), chrono::TimeDelta::hours(1))
}

fn at(time: &str) -> chrono::DateTime<chrono::Utc> {
    time.parse().unwrap_or_else(|e| panic!("{time}: {e}"))
}

/// Wall time passes (the Lambda's clock).
async fn pass(handler: &TestHandler, by: chrono::TimeDelta) {
    handler.engine().await.clock.advance(by);
}

/// Whether the pack now treats `account` as the organisation's (a share with it is yellow).
async fn inside(handler: &TestHandler, account: &str) -> bool {
    handler
        .engine()
        .await
        .rules()
        .organization()
        .accounts()
        .any(|a| a == account)
}

#[tokio::test]
async fn accounts_are_read_at_the_first_invocation_and_every_hour_after() {
    let directory = Scripted::default();
    directory.set(Ok(vec!["444444444444"]));
    let handler = handler(&directory);
    handler
        .handle(&share("a", 1, "444444444444"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(directory.reads(), 1);
    assert!(inside(&handler, "444444444444").await);
    assert!(
        inside(&handler, "222222222222").await,
        "configured accounts stay"
    );

    // A new account, within the hour: not read yet.
    directory.set(Ok(vec!["444444444444", "555555555555"]));
    pass(&handler, chrono::TimeDelta::minutes(30)).await;
    handler
        .handle(&share("b", 30, "555555555555"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(directory.reads(), 1);
    assert!(!inside(&handler, "555555555555").await);

    // An hour after the first read, it is.
    pass(&handler, chrono::TimeDelta::minutes(31)).await;
    handler
        .handle(&pipe_at("c", "2026-11-02T04:05:00Z", "555555555555"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(directory.reads(), 2);
    assert!(inside(&handler, "555555555555").await);
}

/// [`share`] at any time.
fn pipe_at(id: &str, time: &str, target: &str) -> Vec<u8> {
    let text = String::from_utf8(share(id, 1, target)).unwrap_or_default();
    let records: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let data = records[0]["data"].as_str().unwrap_or_default();
    let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
        .unwrap_or_default();
    let envelope = String::from_utf8(decoded)
        .unwrap_or_default()
        .replace("2026-11-02T03:01:00Z", time);
    common::pipe(&[envelope])
}

#[tokio::test]
async fn a_failure_keeps_the_configured_accounts_and_is_tried_again_later() {
    let directory = Scripted::default();
    directory.set(Err("AccessDenied: not the management account"));
    let handler = handler(&directory);
    handler
        .handle(&share("a", 1, "444444444444"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(directory.reads(), 1);
    assert!(!inside(&handler, "444444444444").await);
    assert!(
        inside(&handler, "111111111111").await,
        "configured accounts"
    );
    directory.set(Ok(vec!["444444444444"]));
    handler
        .handle(&share("b", 30, "444444444444"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(directory.reads(), 1, "not again within the hour");
    pass(&handler, chrono::TimeDelta::minutes(61)).await;
    handler
        .handle(&pipe_at("c", "2026-11-02T04:05:00Z", "444444444444"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(directory.reads(), 2);
    assert!(inside(&handler, "444444444444").await);
}

/// The adapter against moto's Organizations: every account of the organisation, over pages.
#[tokio::test]
async fn list_accounts_reads_every_page_from_moto() {
    if common::moto_endpoint().is_none() {
        return;
    }
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_organizations::Client::new(&shared);
    // moto keeps one organisation per server: create it unless an earlier test did.
    let _ = client
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await;
    let before = Organizations::new(client.clone())
        .accounts()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut created = Vec::new();
    for n in 0..25 {
        let out = client
            .create_account()
            .email(format!("tw-{}-{n}@example.com", std::process::id()))
            .account_name(format!("tw-{n}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        if let Some(id) = out.create_account_status().and_then(|s| s.account_id()) {
            created.push(id.to_owned());
        }
    }
    assert_eq!(created.len(), 25);
    let after = Organizations::new(client)
        .accounts()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.len(), before.len() + 25, "more than one page of 20");
    for id in &created {
        assert!(after.contains(id), "{id}");
    }
}
