//! Soak: many events through the engine as the Lambda runs it (Pipe batches ingested without a
//! flush, a tick after each), with random faults at every store step and a restart after each
//! failure, posting through the bot transport to the in-process fake Slack.
//!
//! Two soaks: on DynamoDB (moto server, the write path the Lambda runs) and on the in-memory
//! store with a 5-minute lease, as on DynamoDB. The store moves from one engine to the next
//! as the table outlives a Lambda invocation; each invocation wraps it in a
//! [`FaultyStore`] with at most one planned fault, one time in two (a retryable failure, a
//! permanent one, or a crash after the write, at the first or second call of a step), picked
//! by a seeded generator. A failed invocation is retried as the
//! Pipe redelivers its batch; a failed tick is retried by the next tick. At the end every
//! matched event is in exactly one recorded batch (the audit), and no message was posted twice
//! to Slack.
//!
//! Slack's timestamps follow the soak's clock (event time), as real posts follow real time: the
//! bot's look for an earlier copy reads the channel's history since the window began, so a fake
//! whose timestamps ran ahead of every window would show it the whole channel, beyond the
//! pages it reads.
//!
//! Size: `TRAILWATCH_SOAK_EVENTS` in memory (default 10,000, about 30 s in a debug build),
//! `TRAILWATCH_SOAK_DYNAMO_EVENTS` on DynamoDB (default 2,000, about 80 s: moto answers one
//! request at a time and scans the table for an index query); the README's figures are for
//! 50,000. Seed: `TRAILWATCH_SOAK_SEED` (default 1). Run with `--nocapture` for the figures.
//! The DynamoDB soak needs `AWS_ENDPOINT_URL` (`.ci/test` starts moto) and fails without it
//! when `TRAILWATCH_MOTO` is set.
#![cfg(feature = "cloud")]

mod common;
mod fake_slack;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::faulty::{Fault, FaultyStore, Step};
use fake_slack::{FakeSlack, TOKEN};
use trailwatch::adapters::dynamo::{DynamoSettings, DynamoStore, create_table};
use trailwatch::adapters::memory::MemoryStore;
use trailwatch::adapters::slack::RetryPolicy;
use trailwatch::config::{Settings, SlackRoutes};
use trailwatch::delivery::AuditLine;
use trailwatch::engine::Engine;
use trailwatch::ports::Store;
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::{BatchEvent, ManualClock};

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
/// Steps a fault can be planned at (every step of the write and flush path; those between a
/// post and its record twice as often).
const STEPS: [Step; 9] = [
    Step::Add,
    Step::Due,
    Step::Claim,
    Step::MarkSent,
    Step::MarkSent,
    Step::Release,
    Step::Incidents,
    Step::SaveIncident,
    Step::SaveIncident,
];
/// Records per Pipe batch (two minutes of events).
const PIPE_BATCH: usize = 40;

/// xorshift64*: a small seeded generator, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` records, about 20 a minute over three accounts and twenty people: users created (a
/// yellow rule, with its window) and, one in fifty, a trail stopped (red, an immediate alert).
fn records(n: u64, rng: &mut Rng) -> Vec<String> {
    let start: DateTime<Utc> = "2026-11-02T00:00:00Z".parse().unwrap_or_default();
    (0..n)
        .map(|i| {
            let account = ACCOUNTS[usize::try_from(rng.below(3)).unwrap_or(0)];
            let person = format!("person-{}", rng.below(20));
            let time = start + TimeDelta::seconds(i64::try_from(i * 3).unwrap_or(0));
            let time = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let id = format!("50a50a50-0000-0000-0000-{i:012}");
            let mut record = common::create_user(account, &id, &time, &person, &format!("u{i}"));
            if rng.below(50) == 0 {
                record["eventSource"] = "cloudtrail.amazonaws.com".into();
                record["eventName"] = "StopLogging".into();
                record["requestParameters"] = serde_json::json!({"name": "org-trail"});
            }
            record.to_string()
        })
        .collect()
}

/// What the soak reads back from a store at the end.
trait Soaked: Store + Sync + Sized {
    /// The audit lines of every recorded batch.
    async fn recorded(&self) -> Vec<AuditLine>;
    /// Nothing left unsent and nothing due, whatever the time.
    async fn settled(&self, now: DateTime<Utc>) -> bool;
}

impl Soaked for MemoryStore {
    async fn recorded(&self) -> Vec<AuditLine> {
        self.audit()
    }

    async fn settled(&self, _: DateTime<Utc>) -> bool {
        self.unsent() == 0 && self.next_due().is_none()
    }
}

impl Soaked for DynamoStore {
    async fn recorded(&self) -> Vec<AuditLine> {
        let since: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap_or_default();
        self.audit(since, since + TimeDelta::days(60))
            .await
            .unwrap_or_else(|err| panic!("audit: {err:?}"))
            .into_iter()
            .map(|record| record.line)
            .collect()
    }

    async fn settled(&self, now: DateTime<Utc>) -> bool {
        // The due index lists every window with unsent events, in flight or not.
        self.due(now + TimeDelta::days(30))
            .await
            .is_ok_and(|due| due.is_empty())
    }
}

/// At most one fault for an invocation: none one time in two.
fn plan<S>(store: S, rng: &mut Rng) -> FaultyStore<S> {
    let faulty = FaultyStore::new(store);
    if rng.below(2) != 0 {
        return faulty;
    }
    let step = STEPS[usize::try_from(rng.below(STEPS.len() as u64)).unwrap_or(0)];
    let nth = u32::try_from(rng.below(2)).unwrap_or(0) + 1;
    let fault = match rng.below(4) {
        0 => Fault::Fail { retryable: true },
        1 => Fault::Fail { retryable: false },
        2 => Fault::CrashAfter,
        _ => Fault::CrashAfterEffect,
    };
    faulty.at(step, nth, fault)
}

/// Lost and duplicated: matched events in no recorded batch, events in more than one, and
/// messages posted more than once (same batch id, part and channel).
fn count_outcome(
    lines: Vec<AuditLine>,
    matched: &[BatchEvent],
    fake: &FakeSlack,
    figures: &mut Figures,
) {
    let mut recorded: BTreeMap<String, u64> = BTreeMap::new();
    for line in lines {
        for event in &line.events {
            *recorded.entry(event.id.clone()).or_default() += 1;
        }
    }
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    figures.lost = count(
        matched
            .iter()
            .filter(|e| !recorded.contains_key(e.event.id.as_str()))
            .count(),
    );
    figures.duplicated_in_batches = count(recorded.values().filter(|n| **n > 1).count());
    let mut posts: BTreeMap<(String, Option<u64>, String), u64> = BTreeMap::new();
    for post in fake.posts() {
        *posts
            .entry((
                post.batch_id().unwrap_or_default(),
                post.part(),
                post.channel.clone(),
            ))
            .or_default() += 1;
    }
    figures.duplicated_posts = count(posts.values().filter(|n| **n > 1).count());
    for (key, n) in posts.iter().filter(|(_, n)| **n > 1).take(3) {
        eprintln!("posted {n} times: {key:?}");
    }
}

fn epoch(time: DateTime<Utc>) -> u64 {
    u64::try_from(time.timestamp()).unwrap_or(0)
}

#[derive(Debug, Default)]
struct Figures {
    matched: u64,
    invocations: u64,
    failed_invocations: u64,
    failed_ticks: u64,
    lost: u64,
    duplicated_in_batches: u64,
    duplicated_posts: u64,
}

type SoakEngine<S> = Engine<
    FaultyStore<S>,
    OfflineSummarizer,
    trailwatch::adapters::slack::SlackNotifier<
        std::sync::Arc<trailwatch::adapters::retry::ManualSleeper>,
    >,
    ManualClock,
>;

#[test]
fn soak_with_random_faults_loses_nothing_and_posts_nothing_twice() {
    let settings = common::settings(Lang::En, chrono_tz::UTC);
    let size = env_number("TRAILWATCH_SOAK_EVENTS", 10_000);
    soak("in memory", size, || async move {
        MemoryStore::with_lease(settings.window, TimeDelta::minutes(5))
    });
}

/// The same on DynamoDB: the write path the Lambda runs, every transaction and conditional
/// write on moto server.
#[test]
fn soak_on_dynamodb_loses_nothing_and_posts_nothing_twice() {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(
            std::env::var_os("TRAILWATCH_MOTO").is_none(),
            "TRAILWATCH_MOTO is set but AWS_ENDPOINT_URL is not: the moto tests must run"
        );
        eprintln!("skipped: AWS_ENDPOINT_URL is unset (run `bash .ci/test` to start moto)");
        return;
    }
    let settings = common::settings(Lang::En, chrono_tz::UTC);
    let size = env_number("TRAILWATCH_SOAK_DYNAMO_EVENTS", 2_000);
    soak("on DynamoDB", size, || async move {
        let client = DynamoStore::client_from_env().await;
        let table = format!("tw-soak-{}", std::process::id());
        create_table(&client, &table)
            .await
            .unwrap_or_else(|err| panic!("create table {table}: {err:?}"));
        DynamoStore::new(client, DynamoSettings::new(&table, settings.window))
    });
}

fn soak<S, F, Fut>(what: &str, size: u64, make_store: F)
where
    S: Soaked,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let mut rng = Rng(env_number("TRAILWATCH_SOAK_SEED", 1).max(1));
    let lines = records(size, &mut rng);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"));
    let figures = runtime.block_on(async {
        let fake = FakeSlack::start(&["C_DEFAULT"]).await;
        let settings = common::settings(Lang::En, chrono_tz::UTC);
        let routes = SlackRoutes {
            default_channel: Some("C_DEFAULT".to_owned()),
            ..SlackRoutes::default()
        };
        let policy = RetryPolicy {
            timeout: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let new_engine = |store: FaultyStore<S>,
                          now: DateTime<Utc>,
                          settings: &Settings|
         -> Box<SoakEngine<S>> {
            Box::new(
                Engine::new(
                    RulePack::builtin(),
                    settings.clone(),
                    store,
                    OfflineSummarizer,
                    fake.bot(TOKEN, routes.clone(), policy),
                    ManualClock::new(now),
                )
                .with_flush_on_ingest(false),
            )
        };
        let mut figures = Figures::default();
        // The matched events, as a fault-free engine decodes them.
        let all = lines.join("\n");
        let mut store = make_store().await;
        let mut probe = new_engine(FaultyStore::new(store), DateTime::<Utc>::MIN_UTC, &settings);
        let matched: Vec<BatchEvent> = probe.decode(all.as_bytes());
        figures.matched = u64::try_from(matched.len()).unwrap_or(0);
        store = probe.store.inner;
        let mut now = DateTime::<Utc>::MIN_UTC;
        for batch in matched.chunks(PIPE_BATCH) {
            now = now.max(batch.last().map_or(now, |e| e.event.time));
            // The Pipe redelivers the batch until an invocation takes it whole.
            loop {
                fake.follow_clock(epoch(now));
                figures.invocations += 1;
                let mut engine = new_engine(plan(store, &mut rng), now, &settings);
                let ingested = Box::pin(engine.ingest(batch.to_vec())).await;
                let ticked = match ingested {
                    Ok(()) => Box::pin(engine.flush_due()).await.map(|_| ()),
                    Err(err) => Err(err),
                };
                store = engine.store.inner;
                if ticked.is_ok() {
                    break;
                }
                figures.failed_invocations += 1;
                now += TimeDelta::seconds(20);
            }
        }
        // Ticks go on, with faults, then without, until nothing is left.
        for tick in 0..400 {
            now += TimeDelta::minutes(1);
            fake.follow_clock(epoch(now));
            let faulty = if tick < 200 {
                plan(store, &mut rng)
            } else {
                FaultyStore::new(store)
            };
            let mut engine = new_engine(faulty, now, &settings);
            if Box::pin(engine.flush_due()).await.is_err() {
                figures.failed_ticks += 1;
            }
            store = engine.store.inner;
            if tick >= 200 && store.settled(now).await {
                break;
            }
        }
        assert!(store.settled(now).await, "{what}: events left unsent");
        count_outcome(store.recorded().await, &matched, &fake, &mut figures);
        figures
    });
    eprintln!("soak {what}: {size} events, {figures:?}");
    assert!(
        figures.failed_invocations + figures.failed_ticks > 0,
        "no fault fired: {figures:?}"
    );
    assert_eq!(
        (
            figures.lost,
            figures.duplicated_in_batches,
            figures.duplicated_posts
        ),
        (0, 0, 0),
        "{figures:?}"
    );
}
