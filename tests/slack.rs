//! Slack delivery against an in-process fake Slack: routing, window order, threads, retries with
//! their waits (a manual sleeper, not wall time), permanent errors, crash recovery, and secrets
//! kept out of every log line and error.
#![cfg(feature = "cloud")]

mod common;
mod fake_slack;

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::faulty::{Fault, FaultyStore, Step};
use fake_slack::{FakeSlack, HOOK_SECRET, Reply, TOKEN};
use serde_json::Value;
use trailwatch::Severity;
use trailwatch::adapters::memory::MemoryStore;
use trailwatch::adapters::retry::ManualSleeper;
use trailwatch::adapters::slack::{Credential, RetryPolicy, SlackError, SlackNotifier};
use trailwatch::config::{Settings, SlackRoutes};
use trailwatch::engine::Engine;
use trailwatch::event::AccountId;
use trailwatch::ports::{Notifier, Retryable, Store};
use trailwatch::render::slack::render_batch;
use trailwatch::rules::RulePack;
use trailwatch::secret::Secret;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::EventTimeClock;

// ---- log capture: every test checks that no secret reached a log line or an error ----

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// Captures this thread's tracing output (every level) until the guard drops.
fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// No token, webhook URL or secret part of it in `texts`.
fn assert_no_secret(fake: &FakeSlack, texts: &[String]) {
    let webhook = fake.webhook_url();
    for text in texts {
        for secret in [TOKEN, HOOK_SECRET, webhook.as_str(), "SECRET"] {
            assert!(
                !text.contains(secret),
                "secret {secret:?} leaked into: {text}"
            );
        }
    }
}

/// Display, Debug and the source chain of an error.
fn error_texts(err: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![err.to_string(), format!("{err:?}")];
    let mut source = err.source();
    while let Some(cause) = source {
        out.push(cause.to_string());
        source = cause.source();
    }
    out
}

// ---- set-up ----

const A: &str = "111111111111";
const B: &str = "222222222222";

fn policy() -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_millis(300),
        ..RetryPolicy::default()
    }
}

fn routes() -> SlackRoutes {
    let mut routes = SlackRoutes {
        default_channel: Some("C_DEFAULT".to_owned()),
        ..SlackRoutes::default()
    };
    routes.accounts.insert(AccountId::new(A), "C_A".to_owned());
    routes.accounts.insert(AccountId::new(B), "C_B".to_owned());
    routes
        .severity
        .insert(Severity::Red, vec!["C_SECURITY".to_owned()]);
    routes
}

const CHANNELS: &[&str] = &["C_A", "C_B", "C_DEFAULT", "C_SECURITY", "C_EMPTY"];

fn bot(fake: &FakeSlack, token: &str, routes: SlackRoutes) -> SlackNotifier<Arc<ManualSleeper>> {
    fake.bot(token, routes, policy())
}

fn webhook(url: &str) -> SlackNotifier<Arc<ManualSleeper>> {
    SlackNotifier::new(
        Credential::Webhook(Secret::new(url)),
        None,
        SlackRoutes::default(),
        policy(),
        Arc::new(ManualSleeper::default()),
    )
    .unwrap_or_else(|err| panic!("notifier: {err}"))
}

fn settings() -> Settings {
    common::settings(Lang::En, chrono_tz::UTC)
}

fn engine<S: Store + Sync, N: Notifier>(
    store: S,
    notifier: N,
) -> Engine<S, OfflineSummarizer, N, EventTimeClock> {
    Engine::new(
        RulePack::builtin(),
        settings(),
        store,
        OfflineSummarizer,
        notifier,
        EventTimeClock::default(),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// The first record of multi-account.jsonl (account A, one window, one batch).
fn one_event() -> Vec<u8> {
    let text = String::from_utf8(fixture("multi-account.jsonl")).unwrap_or_default();
    let line = text.lines().next().unwrap_or_default();
    format!("{line}\n").into_bytes()
}

/// `n` copies of the first record with fresh ids, resources and performers (one SSO user
/// each, so the tree cannot group them into one line), in one window of account B: one
/// batch too large for one message.
fn big_batch(n: usize) -> Vec<u8> {
    let text = String::from_utf8(fixture("multi-account.jsonl")).unwrap_or_default();
    let line = text.lines().next().unwrap_or_default();
    let template: Value = serde_json::from_str(line).unwrap_or_default();
    let mut out = String::new();
    for i in 0..n {
        let mut v = template.clone();
        v["id"] = Value::from(format!("big-envelope-{i}"));
        v["account"] = Value::from(B);
        v["detail"]["eventID"] = Value::from(format!("big-event-{i:05}"));
        v["detail"]["recipientAccountId"] = Value::from(B);
        let identity = &mut v["detail"]["userIdentity"];
        identity["principalId"] =
            Value::from(format!("AROAYZTHMGXW7EAAYDNEZ:user{i:05}@example.com"));
        identity["arn"] = Value::from(format!(
            "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/user{i:05}@example.com"
        ));
        v["detail"]["requestParameters"]["groupId"] = Value::from(format!(
            "sg-{i:05}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ));
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"))
}

/// `account/20261102T0300Z/0` -> `20261102T0300Z`.
fn window_of(batch_id: &str) -> String {
    batch_id.split('/').nth(1).unwrap_or_default().to_owned()
}

// ---- Done when 1: routed channels, window order, each once, continuations in threads ----

#[test]
fn messages_land_in_routed_channels_in_window_order_once_with_threads() {
    let (logs, _guard) = capture();
    let expected = common::replay_bytes(
        &[fixture("multi-account.jsonl"), big_batch(4000)],
        settings(),
    );
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        let mut engine = engine(
            MemoryStore::new(settings().window),
            bot(&fake, TOKEN, routes()),
        );
        engine
            .ingest_bytes(&fixture("multi-account.jsonl"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine
            .ingest_bytes(&big_batch(4000))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().send_failures, 0);
        assert_eq!(engine.store.unsent(), 0);

        // What should land where: each delivery's messages, in delivery order, per route.
        let mut want: std::collections::BTreeMap<String, Vec<(String, u64)>> =
            std::collections::BTreeMap::new();
        let mut continued = 0;
        for d in &expected.deliveries {
            for channel in routes().channels(&d.batch.id.account, d.severity) {
                for m in &render_batch(d) {
                    continued += usize::from(m.is_continuation());
                    want.entry(channel.clone())
                        .or_default()
                        .push((m.batch_key.clone(), m.part as u64));
                }
            }
        }
        assert!(continued > 0, "the big batch must need continuations");
        assert!(want.contains_key("C_A") && want.contains_key("C_B"));
        assert!(
            want.contains_key("C_DEFAULT"),
            "an unrouted account goes to the default"
        );

        let got = fake.by_channel();
        let got_ids: std::collections::BTreeMap<String, Vec<(String, u64)>> = got
            .iter()
            .map(|(c, posts)| {
                let ids = posts
                    .iter()
                    .map(|p| (p.batch_id().unwrap_or_default(), p.part().unwrap_or(99)))
                    .collect();
                (c.clone(), ids)
            })
            .collect();
        assert_eq!(
            got_ids, want,
            "every message once, in its channels, in order"
        );

        for (channel, posts) in &got {
            // Parents of window digests come in window order.
            let windows: Vec<String> = posts
                .iter()
                .filter(|p| p.part() == Some(0))
                .filter(|p| !p.batch_id().unwrap_or_default().contains("/immediate/"))
                .map(|p| window_of(&p.batch_id().unwrap_or_default()))
                .collect();
            let mut sorted = windows.clone();
            sorted.sort();
            assert_eq!(windows, sorted, "window order in {channel}");
            // Continuations are replies in the thread of their batch's part 0.
            for p in posts {
                let parent = posts
                    .iter()
                    .find(|q| q.part() == Some(0) && q.batch_id() == p.batch_id())
                    .map(|q| q.ts.clone());
                if p.batch_id().unwrap_or_default().contains("/reply/") {
                    // An incident's reply: in the thread of a top-level message here.
                    assert!(
                        posts
                            .iter()
                            .any(|q| q.thread_ts.is_none() && Some(&q.ts) == p.thread_ts.as_ref()),
                        "{channel}: a reply outside any thread"
                    );
                } else if p.part() == Some(0) {
                    assert_eq!(p.thread_ts, None);
                } else {
                    assert!(parent.is_some());
                    assert_eq!(p.thread_ts, parent, "{channel}: part {:?}", p.part());
                }
                assert_eq!(
                    p.metadata.as_ref().and_then(|m| m["event_type"].as_str()),
                    Some("trailwatch_batch")
                );
            }
        }
        // One message a second per channel: each post after the first in a channel waited.
        let waits = engine.notifier.sleeper().waits();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)));
        assert!(!waits.is_empty());
        assert_no_secret(&fake, &[logs.text()]);
    });
}

// ---- Done when 2: 429 -> 500 -> timeout, then success, waits asserted ----

#[test]
fn bot_rides_out_429_500_and_a_timeout_with_the_waits_it_was_told() {
    let (logs, _guard) = capture();
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        fake.script(
            "chat.postMessage",
            [
                Reply::RateLimited(7),
                Reply::Status(500),
                Reply::Slow(Duration::from_secs(2)),
            ],
        );
        let mut engine = engine(
            MemoryStore::new(settings().window),
            bot(&fake, TOKEN, routes()),
        );
        engine
            .ingest_bytes(&one_event())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().batches, 1);
        assert_eq!(engine.stats().send_failures, 0);

        let waits = engine.notifier.sleeper().waits();
        assert_eq!(waits.len(), 3, "{waits:?}");
        assert_eq!(waits[0], Duration::from_secs(7), "Retry-After is honoured");
        // Backoff doubles with the attempt number (the 429 was attempt 1), jittered to [b/2, b].
        assert!(waits[1] >= Duration::from_secs(1) && waits[1] <= Duration::from_secs(2));
        assert!(waits[2] >= Duration::from_secs(2) && waits[2] <= Duration::from_secs(4));
        assert_eq!(engine.notifier.retries(), 3);

        // The slow post did land: the notifier looked before posting again, so it is there once.
        assert_eq!(fake.posts().len(), 1);
        assert_eq!(
            fake.calls(),
            [
                "conversations.history C_A",
                "chat.postMessage C_A",
                "chat.postMessage C_A",
                "conversations.history C_A",
                "chat.postMessage C_A",
                "conversations.history C_A",
            ]
        );
        assert_no_secret(&fake, &[logs.text()]);
    });
}

#[test]
fn webhook_rides_out_429_and_503_and_a_timeout_at_least_once() {
    let (logs, _guard) = capture();
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        fake.script(
            "webhook",
            [
                Reply::RateLimited(3),
                Reply::Status(503),
                Reply::Slow(Duration::from_secs(2)),
            ],
        );
        let mut engine = engine(
            MemoryStore::new(settings().window),
            webhook(&fake.webhook_url()),
        );
        engine
            .ingest_bytes(&one_event())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().batches, 1);
        let waits = engine.notifier.sleeper().waits();
        assert_eq!(waits.len(), 3, "{waits:?}");
        assert_eq!(waits[0], Duration::from_secs(3));
        // Backoff doubles with the attempt number (the 429 was attempt 1), jittered to [b/2, b].
        assert!(waits[1] >= Duration::from_secs(1) && waits[1] <= Duration::from_secs(2));
        assert!(waits[2] >= Duration::from_secs(2) && waits[2] <= Duration::from_secs(4));
        // A webhook cannot look: the timed-out post landed and the retry posted again.
        assert_eq!(fake.hooks().len(), 2);
        assert_no_secret(&fake, &[logs.text()]);
    });
}

#[test]
fn retries_are_bounded_and_a_long_retry_after_is_not_waited_out() {
    let (logs, _guard) = capture();
    let delivery = common::replay_bytes(&[one_event()], settings()).deliveries;
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        fake.script("chat.postMessage", (0..5).map(|_| Reply::Status(502)));
        let mut engine = engine(
            MemoryStore::new(settings().window),
            bot(&fake, TOKEN, routes()),
        );
        engine
            .ingest_bytes(&one_event())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        let stats = engine.stats();
        assert_eq!(
            (
                stats.batches,
                stats.send_failures,
                stats.send_failures_permanent
            ),
            (0, 1, 0)
        );
        let waits = engine.notifier.sleeper().waits();
        assert_eq!(waits.len(), 4, "five attempts, four waits: {waits:?}");
        for (i, w) in waits.iter().enumerate() {
            let full = Duration::from_secs(1 << i);
            assert!(*w >= full / 2 && *w <= full, "wait {i}: {w:?}");
        }
        let failures = engine.store.failures();
        let reasons = failures.values().flatten().cloned().collect::<Vec<_>>();
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].contains("still failing after 5 attempts"),
            "{}",
            reasons[0]
        );
        assert!(reasons[0].contains("HTTP 502"), "{}", reasons[0]);
        assert_eq!(engine.store.unsent(), 1, "the batch stays, unsent");

        // Retry-After beyond the bound: no wait, a retryable error.
        fake.script("webhook", [Reply::RateLimited(3600)]);
        let hook = webhook(&fake.webhook_url());
        let err = hook.deliver(&delivery[0]).await.err();
        assert!(
            matches!(err, Some(SlackError::RateLimited { .. })),
            "{err:?}"
        );
        assert!(err.as_ref().is_some_and(Retryable::is_retryable));
        assert!(hook.sleeper().waits().is_empty());
        let mut texts = vec![logs.text()];
        texts.extend(reasons);
        texts.extend(err.iter().flat_map(|e| error_texts(e)));
        assert_no_secret(&fake, &texts);
    });
}

// ---- Done when 3: permanent errors leave the batch unsent and recorded; a fixed config sends ----

#[test]
fn permanent_errors_keep_the_batch_and_a_fixed_config_sends_it_once() {
    let (logs, _guard) = capture();
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        fake.leave("C_B");
        let mut texts = Vec::new();
        let cases: [(&str, SlackRoutes, &str); 3] = [
            ("xoxb-wrong-SECRET", routes(), "invalid_auth"),
            (
                TOKEN,
                {
                    let mut r = routes();
                    r.accounts.insert(AccountId::new(A), "C_GONE".to_owned());
                    r
                },
                "channel_not_found",
            ),
            (
                TOKEN,
                {
                    let mut r = routes();
                    r.accounts.insert(AccountId::new(A), "C_B".to_owned());
                    r
                },
                "not_in_channel",
            ),
        ];
        let mut engine = engine(
            MemoryStore::new(settings().window),
            bot(&fake, TOKEN, routes()),
        );
        engine
            .ingest_bytes(&one_event())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        for (i, (token, routes, code)) in cases.into_iter().enumerate() {
            engine.notifier = bot(&fake, token, routes);
            engine
                .flush_all()
                .await
                .unwrap_or_else(|err| panic!("{err}"));
            let stats = engine.stats();
            assert_eq!(stats.send_failures_permanent, i as u64 + 1, "{code}");
            assert_eq!(stats.batches, 0);
            assert!(
                engine.notifier.sleeper().waits().is_empty(),
                "{code}: no retry"
            );
            assert_eq!(engine.store.unsent(), 1);
            let reasons: Vec<String> = engine
                .store
                .failures()
                .values()
                .flatten()
                .cloned()
                .collect();
            assert_eq!(reasons.len(), i + 1);
            assert!(reasons[i].contains(code), "{}", reasons[i]);
            texts.extend(reasons);
        }
        assert!(fake.posts().is_empty());

        // No route at all: also permanent, also recorded.
        engine.notifier = bot(&fake, TOKEN, SlackRoutes::default());
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().send_failures_permanent, 4);

        engine.notifier = bot(&fake, TOKEN, routes());
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().batches, 1);
        assert_eq!(engine.store.unsent(), 0);
        assert_eq!(engine.store.audit().len(), 1);
        assert_eq!(fake.posts().len(), 1);
        assert_eq!(fake.posts()[0].channel, "C_A");
        // Nothing left to send: a further flush posts nothing.
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(fake.posts().len(), 1);
        texts.push(logs.text());
        assert!(logs.text().contains("permanent=true"));
        assert_no_secret(&fake, &texts);
    });
}

// ---- Done when 4: crash after the post, before marking sent; then a rerun ----

/// A store that fails `mark_sent` once: the process "crashes" after Slack took the batch.
fn crash_on_mark_sent() -> FaultyStore<MemoryStore> {
    FaultyStore::new(MemoryStore::new(settings().window)).at(
        Step::MarkSent,
        1,
        Fault::Fail { retryable: true },
    )
}

#[test]
fn without_history_scopes_the_bot_still_posts_everything() {
    let (logs, _guard) = capture();
    let input = [fixture("multi-account.jsonl"), big_batch(4000)];
    let expected = common::replay_bytes(&input, settings());
    let messages: usize = expected
        .deliveries
        .iter()
        .map(|d| routes().channels(&d.batch.id.account, d.severity).len() * render_batch(d).len())
        .sum();
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        for method in ["conversations.history", "conversations.replies"] {
            fake.script(
                method,
                std::iter::repeat_n(Reply::Error("missing_scope"), 500),
            );
        }
        let mut engine = engine(
            MemoryStore::new(settings().window),
            bot(&fake, TOKEN, routes()),
        );
        for bytes in &input {
            engine
                .ingest_bytes(bytes)
                .await
                .unwrap_or_else(|err| panic!("{err}"));
        }
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().send_failures, 0);
        assert_eq!(engine.store.unsent(), 0);
        assert_eq!(fake.posts().len(), messages);
        assert!(
            fake.calls()
                .iter()
                .any(|c| c.starts_with("conversations.history")),
            "history was asked for"
        );
        let text = logs.text();
        assert_eq!(text.matches("lacks channels:history").count(), 1, "{text}");
        assert_no_secret(&fake, &[text]);
    });
}

async fn crash_then_rerun<N: Notifier>(input: &[u8], first: N, second: N) -> u64 {
    let store = crash_on_mark_sent();
    let mut crashing = engine(store, first);
    crashing
        .ingest_bytes(input)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let crash = crashing.flush_all().await.err();
    assert!(crash.is_some(), "the first run must crash");
    let mut rerun = engine(MemoryStore::new(settings().window), second);
    rerun
        .ingest_bytes(input)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    rerun
        .flush_all()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(rerun.store.unsent(), 0);
    rerun.stats().batches
}

#[test]
fn after_a_crash_the_bot_does_not_post_twice() {
    let (logs, _guard) = capture();
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        let input = big_batch(4000);
        let sent = crash_then_rerun(
            &input,
            bot(&fake, TOKEN, routes()),
            bot(&fake, TOKEN, routes()),
        )
        .await;
        assert_eq!(sent, 1);
        let posts = fake.posts();
        assert!(posts.len() > 1, "a batch with continuations");
        let mut keys: Vec<(String, Option<u64>)> = posts
            .iter()
            .map(|p| (p.batch_id().unwrap_or_default(), p.part()))
            .collect();
        let before = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), before, "no message posted twice");
        assert!(logs.text().contains("already in Slack"));
        assert_no_secret(&fake, &[logs.text()]);
    });
}

#[test]
fn a_thread_cut_short_is_completed_without_reposting_its_parts() {
    let (logs, _guard) = capture();
    let input = big_batch(4000);
    let parts =
        render_batch(&common::replay_bytes(std::slice::from_ref(&input), settings()).deliveries[0])
            .len();
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        assert!(parts > 2, "{parts} parts");
        // The parent and the first reply land, then Slack refuses the rest.
        fake.script(
            "chat.postMessage",
            [Reply::Pass, Reply::Pass, Reply::Error("restricted_action")],
        );
        let mut engine = engine(
            MemoryStore::new(settings().window),
            bot(&fake, TOKEN, routes()),
        );
        engine
            .ingest_bytes(&input)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().send_failures_permanent, 1);
        assert_eq!(fake.posts().len(), 2);

        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().batches, 1);
        let posts = fake.posts();
        let got: Vec<u64> = posts.iter().filter_map(fake_slack::Posted::part).collect();
        let want: Vec<u64> = (0..parts as u64).collect();
        assert_eq!(got, want, "every part once, in order");
        assert!(
            posts[1..]
                .iter()
                .all(|p| p.thread_ts.as_deref() == Some(posts[0].ts.as_str()))
        );
        assert_no_secret(&fake, &[logs.text()]);
    });
}

#[test]
fn after_a_crash_a_webhook_posts_exactly_one_extra() {
    let (logs, _guard) = capture();
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        let input = one_event();
        let url = fake.webhook_url();
        let sent = crash_then_rerun(&input, webhook(&url), webhook(&url)).await;
        assert_eq!(sent, 1);
        assert_eq!(
            fake.hooks().len(),
            2,
            "at least once: one duplicate after a crash"
        );
        assert_eq!(fake.hooks()[0], fake.hooks()[1]);
        assert_no_secret(&fake, &[logs.text()]);
    });
}

// ---- Done when 5: secrets in no log line or error ----

#[test]
fn secrets_stay_out_of_errors_and_logs_when_everything_fails() {
    let (logs, _guard) = capture();
    let deliveries = common::replay_bytes(&[one_event()], settings()).deliveries;
    rt().block_on(async {
        let fake = FakeSlack::start(CHANNELS).await;
        let mut texts = Vec::new();
        // A closed port (connection refused), a wrong webhook path, a wrong token, timeouts.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            l.local_addr().map_or(9, |a| a.port())
        };
        let notifiers = [
            webhook(&format!("http://127.0.0.1:{closed}/hooks/{HOOK_SECRET}")),
            webhook(&format!(
                "http://{}/hooks/T000FAKE/B000FAKE/SECRETwrong",
                fake.addr
            )),
            bot(&fake, "xoxb-SECRET-wrong", routes()),
            SlackNotifier::new(
                Credential::Token(Secret::new(TOKEN)),
                Some(&format!("http://127.0.0.1:{closed}/api/")),
                routes(),
                policy(),
                Arc::new(ManualSleeper::default()),
            )
            .unwrap_or_else(|err| panic!("{err}")),
        ];
        for notifier in &notifiers {
            let err = notifier.deliver(&deliveries[0]).await.err();
            assert!(err.is_some(), "{notifier:?}");
            texts.extend(err.iter().flat_map(|e| error_texts(e)));
            texts.push(format!("{notifier:?}"));
        }
        fake.script(
            "webhook",
            (0..5).map(|_| Reply::Slow(Duration::from_secs(1))),
        );
        let slow = webhook(&fake.webhook_url());
        let err = slow.deliver(&deliveries[0]).await.err();
        assert!(err.as_ref().is_some_and(Retryable::is_retryable));
        texts.extend(err.iter().flat_map(|e| error_texts(e)));
        assert!(
            texts.iter().any(|t| t.contains("cannot connect")),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.contains("timed out")), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.contains("invalid_auth")),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.contains("no_service")), "{texts:?}");
        texts.push(logs.text());
        assert!(logs.text().contains("retrying"), "retries are logged");
        assert_no_secret(&fake, &texts);
    });
}

// ---- the CLI: replay --slack-webhook / --slack-token --channel ----

fn run_cli(args: &[String], api_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(args)
        .env("TRAILWATCH_SLACK_API_URL", api_url)
        .env("TRAILWATCH_LOG", "trace")
        .env_remove("TRAILWATCH_SLACK_TOKEN")
        .env_remove("TRAILWATCH_SLACK_WEBHOOK_URL")
        .output()
        .unwrap_or_else(|err| panic!("run: {err}"))
}

#[test]
fn replay_posts_for_real_with_a_webhook_or_a_token() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("{err}"));
    let fake = runtime.block_on(FakeSlack::start(CHANNELS));
    let file = common::fixture("root-login-no-mfa.jsonl")
        .display()
        .to_string();
    let expected = common::replay_bytes(&[fixture("root-login-no-mfa.jsonl")], settings());
    let messages: usize = expected
        .deliveries
        .iter()
        .map(|d| render_batch(d).len())
        .sum();
    assert!(messages > 0);

    let out = run_cli(
        &[
            "replay".into(),
            file.clone(),
            "--slack-webhook".into(),
            fake.webhook_url(),
        ],
        &fake.api_url(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(fake.hooks().len(), messages);

    let out = run_cli(
        &[
            "replay".into(),
            file.clone(),
            "--slack-token".into(),
            TOKEN.into(),
            "--channel".into(),
            "C_EMPTY".into(),
            "--format".into(),
            "text".into(),
        ],
        &fake.api_url(),
    );
    let stderr2 = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr2}");
    let posts = fake.by_channel();
    assert_eq!(posts.get("C_EMPTY").map(Vec::len), Some(messages));

    // A wrong token fails clearly, with a non-zero exit, and without the token.
    let out = run_cli(
        &[
            "replay".into(),
            file,
            "--slack-token".into(),
            "xoxb-SECRET-bad".into(),
            "--channel".into(),
            "C_EMPTY".into(),
        ],
        &fake.api_url(),
    );
    let stderr3 = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(stderr3.contains("invalid_auth"), "{stderr3}");
    assert!(stderr3.contains("could not be posted"), "{stderr3}");
    let _ = std::io::stderr().flush();
    assert_no_secret(&fake, &[stderr, stderr2, stderr3]);
    drop(fake);
    runtime.shutdown_background();
}

/// Two deployments posting the same batch into one channel (staging and production, or a
/// replay into production's channel) do not take each other's messages for their own: each
/// message carries its deployment, and after a crash a deployment finds only its own posts.
#[test]
fn another_deployments_messages_are_not_taken_for_this_ones() {
    rt().block_on(async {
        let input = big_batch(4000);
        // The same deployment: the rerun finds the crashed run's parts and posts none twice.
        let fake = FakeSlack::start(CHANNELS).await;
        crash_then_rerun(
            &input,
            bot(&fake, TOKEN, routes()).with_deployment("111111111111/us-east-1/trailwatch"),
            bot(&fake, TOKEN, routes()).with_deployment("111111111111/us-east-1/trailwatch"),
        )
        .await;
        let once = fake.posts().len();
        let deployments: Vec<Option<String>> = fake
            .posts()
            .iter()
            .map(|p| {
                p.metadata
                    .as_ref()
                    .and_then(|m| m.pointer("/event_payload/deployment"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert!(
            deployments
                .iter()
                .all(|d| d.as_deref() == Some("111111111111/us-east-1/trailwatch")),
            "{deployments:?}"
        );

        // Another deployment: its run posts the batch in full, beside the first one's parts.
        let fake = FakeSlack::start(CHANNELS).await;
        crash_then_rerun(
            &input,
            bot(&fake, TOKEN, routes()).with_deployment("222222222222/us-east-1/trailwatch"),
            bot(&fake, TOKEN, routes()).with_deployment("111111111111/us-east-1/trailwatch"),
        )
        .await;
        let production: usize = fake
            .posts()
            .iter()
            .filter(|p| {
                p.body
                    .to_string()
                    .contains("\"111111111111/us-east-1/trailwatch\"")
            })
            .count();
        assert_eq!(
            production, once,
            "the second deployment posted all of its own"
        );
    });
}
