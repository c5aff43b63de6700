//! Scenario tests: each fixture through the real engine (in-memory store, offline summaries,
//! replay clock), with the Slack payloads pinned by snapshots.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::{Asia, UTC};
use common::{fixture, replay_files, settings};
use trailwatch::app::Format;
use trailwatch::render::slack::render_batch;
use trailwatch::summary::Lang;
use trailwatch::window::BatchKind;

const SCENARIOS: &[&str] = &[
    "terraform-burst.jsonl",
    "console-iam-person.json",
    "root-login-no-mfa.jsonl",
    "multi-account.jsonl",
    "late-event.jsonl",
    "duplicates.jsonl",
    "malformed.jsonl",
    "secrets.jsonl",
    "hostile-text.jsonl",
    "kinesis-esm.json",
    "pipe-batch.json",
];

#[test]
fn every_scenario_renders_one_message_per_batch_listing_every_event() {
    for name in SCENARIOS {
        let replayed = replay_files(&[&fixture(name)], settings(Lang::En, UTC));
        let stats = replayed.stats;
        assert_eq!(
            stats.read,
            stats.decoded + stats.quarantined,
            "{name}: {stats:?}"
        );
        assert_eq!(
            stats.decoded,
            stats.matched + stats.ignored + stats.unmatched + stats.duplicates,
            "{name}: {stats:?}"
        );
        // Every matched event is in exactly one delivery: an immediate alert, a digest, a
        // reminder or a thread reply.
        let mut seen = BTreeMap::new();
        let mut batches = BTreeSet::new();
        for delivery in &replayed.deliveries {
            let batch = &delivery.batch;
            assert!(
                !render_batch(delivery).is_empty(),
                "{name}: a batch without a message"
            );
            assert_eq!(render_batch(delivery)[0].part, 0, "{name}");
            assert!(
                batches.insert(delivery.key()),
                "{name}: delivery sent twice"
            );
            for event in &batch.events {
                *seen.entry(event.event.id.clone()).or_insert(0) += 1;
            }
        }
        assert_eq!(seen.len() as u64, stats.matched, "{name}");
        assert!(seen.values().all(|n| *n == 1), "{name}: {seen:?}");
        // Every event's name (without an API version suffix) appears in the rendered
        // payloads of its batch.
        for delivery in &replayed.deliveries {
            let text = serde_json::to_string(&render_batch(delivery)).unwrap_or_default();
            for event in &delivery.batch.events {
                assert!(
                    text.contains(event.event.display_name()),
                    "{name}: {} missing",
                    event.event.name
                );
            }
        }
        insta::assert_snapshot!(
            format!("slack-{}", name.replace('.', "-")),
            replayed.output(Format::Slack)
        );
    }
}

#[test]
fn korean_seoul_reads_like_the_original() {
    let replayed = replay_files(
        &[&fixture("console-iam-person.json")],
        settings(Lang::Ko, Asia::Seoul),
    );
    let slack = replayed.output(Format::Slack);
    assert!(slack.contains("KST"), "{slack}");
    assert!(slack.contains("A계정"), "{slack}");
    insta::assert_snapshot!("slack-ko-console-iam-person", slack);
    insta::assert_snapshot!("text-ko-console-iam-person", replayed.output(Format::Text));
}

#[test]
fn gzipped_s3_file_equals_plain() {
    let plain = replay_files(
        &[&fixture("console-iam-person.json")],
        settings(Lang::En, UTC),
    );
    let gz = replay_files(
        &[&fixture("console-iam-person.json.gz")],
        settings(Lang::En, UTC),
    );
    assert_eq!(plain.output(Format::Slack), gz.output(Format::Slack));
    assert!(plain.stats.matched > 0);
}

#[test]
fn duplicates_are_dropped_exactly() {
    let replayed = replay_files(&[&fixture("duplicates.jsonl")], settings(Lang::En, UTC));
    assert!(replayed.stats.duplicates > 0, "{:?}", replayed.stats);
    let again = replay_files(
        &[&fixture("duplicates.jsonl"), &fixture("duplicates.jsonl")],
        settings(Lang::En, UTC),
    );
    assert_eq!(again.stats.matched, replayed.stats.matched);
    assert_eq!(
        again.stats.duplicates,
        2 * replayed.stats.duplicates + replayed.stats.matched,
        "the second copy is all duplicates"
    );
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("expected.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let designed = expected["files"]["duplicates.jsonl"]["duplicates"].as_u64();
    assert_eq!(
        designed,
        Some(replayed.stats.duplicates),
        "{:?}",
        expected["files"]["duplicates.jsonl"]
    );
}

#[test]
fn malformed_lines_are_quarantined_and_the_rest_goes_through() {
    let replayed = replay_files(&[&fixture("malformed.jsonl")], settings(Lang::En, UTC));
    // Designed: 5 valid lines, 10 to quarantine, 1 blank line skipped.
    assert_eq!(
        replayed.stats.quarantined, 10,
        "{:#?}",
        replayed.quarantined
    );
    assert_eq!(replayed.stats.decoded, 5, "{:?}", replayed.stats);
    assert_eq!(
        replayed.quarantined.len() as u64,
        replayed.stats.quarantined
    );
    for q in &replayed.quarantined {
        assert!(!q.reason.is_empty());
        assert!(!q.excerpt.contains("Tr0ub4dor"), "{q:?}");
    }
}

#[test]
fn late_event_gets_a_labelled_follow_up() {
    let replayed = replay_files(&[&fixture("late-event.jsonl")], settings(Lang::En, UTC));
    let late: Vec<_> = replayed
        .deliveries
        .iter()
        .filter(|d| d.batch.kind == BatchKind::Late)
        .collect();
    assert_eq!(late.len(), 1, "{:?}", replayed.stats);
    assert_eq!(replayed.stats.late, late[0].batch.events.len() as u64);
    let digest = replayed
        .deliveries
        .iter()
        .find(|d| {
            d.batch.kind == BatchKind::Window
                && d.batch.id.window_start == late[0].batch.id.window_start
        })
        .map(|d| d.batch.events.len());
    assert!(
        digest.is_some_and(|n| n > 0),
        "the late event's window had a digest"
    );
}

#[test]
fn root_login_posts_at_once_and_is_not_repeated_in_the_digest() {
    let replayed = replay_files(
        &[&fixture("root-login-no-mfa.jsonl")],
        settings(Lang::En, UTC),
    );
    let immediate: Vec<_> = replayed
        .deliveries
        .iter()
        .filter(|d| d.batch.kind == BatchKind::Immediate)
        .collect();
    assert!(!immediate.is_empty(), "{:?}", replayed.stats);
    assert!(immediate.iter().all(|d| d.batch.events.len() == 1));
    let first = replayed.deliveries.first().map(|d| d.batch.kind);
    assert_eq!(
        first,
        Some(BatchKind::Immediate),
        "immediate alerts come before the digest"
    );
    // The digest does not list an alerted event again: it says how many went out already.
    let alerted: BTreeSet<String> = immediate
        .iter()
        .flat_map(|d| d.batch.events.iter().map(|e| e.event.id.to_string()))
        .collect();
    for delivery in replayed
        .deliveries
        .iter()
        .filter(|d| d.batch.kind != BatchKind::Immediate)
    {
        assert!(
            delivery
                .batch
                .events
                .iter()
                .all(|e| !alerted.contains(e.event.id.as_str())),
            "{}",
            delivery.key()
        );
    }
    assert!(
        immediate
            .iter()
            .all(|d| d.batch.rule_severity() == trailwatch::Severity::Red)
    );
}

#[test]
fn terraform_burst_is_automation_in_two_windows() {
    let replayed = replay_files(
        &[&fixture("terraform-burst.jsonl")],
        settings(Lang::En, UTC),
    );
    assert!(replayed.stats.matched >= 200, "{:?}", replayed.stats);
    assert!(
        replayed.stats.unmatched > 0,
        "read-only calls are not matched"
    );
    let windows: BTreeSet<_> = replayed
        .deliveries
        .iter()
        .map(|d| d.batch.id.window_start)
        .collect();
    assert!(windows.len() >= 2);
    for delivery in &replayed.deliveries {
        for event in &delivery.batch.events {
            assert!(event.actor.is_automation(), "{:?}", event.actor);
            assert_eq!(
                event.actor.principal.kind,
                trailwatch::enrich::PrincipalKind::Workload,
                "{:?}",
                event.actor
            );
        }
    }
}

#[test]
fn multi_account_batches_per_account() {
    let replayed = replay_files(&[&fixture("multi-account.jsonl")], settings(Lang::En, UTC));
    let accounts: BTreeSet<_> = replayed
        .deliveries
        .iter()
        .map(|d| d.batch.id.account.clone())
        .collect();
    assert_eq!(accounts.len(), 3, "{accounts:?}");
    for delivery in &replayed.deliveries {
        assert!(
            delivery
                .batch
                .events
                .iter()
                .all(|e| e.event.account == delivery.batch.id.account)
        );
    }
    let html = replayed.output(Format::Html);
    for account in &accounts {
        assert!(
            html.contains(account.as_str()),
            "{account} missing from the HTML preview"
        );
    }
}
