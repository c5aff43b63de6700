//! Incident scenarios (issue 14): the fixtures of `fixtures/incidents/` (written by
//! `fixtures/gen_incidents.py`) through the real engine (in-memory store, offline summaries,
//! event-time clock, the example configuration). Each test asserts how many top-level posts,
//! replies, reminders and immediate alerts a scenario gives, both in the engine's counters and
//! in the deliveries, that every event a rule is designed to match is in exactly one delivery,
//! and pins a compact summary of the deliveries with insta.
//!
//! The expected counts come from the incident rules, not from a run of the code: events of one
//! account, rule and performer form an incident, open until 60 minutes pass without an event;
//! its first events post top level (in their window's digest, or at once for an immediate
//! rule), later ones as one thread reply per window; a reminder posts top level when an event
//! comes 1 h after the incident opened, then 2 h, 4 h, ... (at most 24 h) after the previous
//! reminder. Windows are five minutes per account.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a missing field or bad fixture fails loudly"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use chrono_tz::UTC;
use common::{Replayed, replay_files, root, settings};
use trailwatch::app::Format;
use trailwatch::delivery::Placement;
use trailwatch::ports::Delivery;
use trailwatch::summary::Lang;
use trailwatch::window::BatchKind;

fn incident_fixture(name: &str) -> PathBuf {
    root().join("fixtures/incidents").join(name)
}

/// What `fixtures/incidents/expected.json` says of one file.
fn expected(name: &str) -> serde_json::Value {
    let path = incident_fixture("expected.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all["files"][name].clone()
}

/// How many messages of each sort reach the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// Top-level messages: digests, immediate alerts and reminders.
    top_level: u64,
    replies: u64,
    reminders: u64,
    immediate: u64,
}

/// The counts the deliveries themselves show.
fn counted(deliveries: &[Delivery]) -> Counts {
    let mut counts = Counts {
        top_level: 0,
        replies: 0,
        reminders: 0,
        immediate: 0,
    };
    for delivery in deliveries {
        match delivery.placement {
            Placement::Top | Placement::Overflow(_) => {
                counts.top_level += 1;
                counts.immediate += u64::from(delivery.batch.kind == BatchKind::Immediate);
            }
            Placement::Reminder(_) => {
                counts.top_level += 1;
                counts.reminders += 1;
            }
            Placement::Reply(_) | Placement::Folded(_) => counts.replies += 1,
            Placement::Continuing | Placement::Notice => counts.top_level += 1,
            // Held for a later top-level post (no threads): not a message of its own.
            Placement::Held(_) => {}
        }
    }
    counts
}

fn placement(delivery: &Delivery) -> &'static str {
    match delivery.placement {
        Placement::Top => "top",
        Placement::Overflow(_) => "overflow",
        Placement::Reminder(_) => "reminder",
        Placement::Reply(_) => "reply",
        Placement::Folded(_) => "folded",
        Placement::Held(_) => "held",
        Placement::Continuing => "continuing",
        Placement::Notice => "notice",
    }
}

/// One line per delivery, in posting order: its key, where and what it posted, its incident,
/// and its events by name.
fn summary(deliveries: &[Delivery]) -> String {
    let mut out = String::new();
    for delivery in deliveries {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for event in &delivery.batch.events {
            *names.entry(&event.event.name).or_default() += 1;
        }
        let incidents: BTreeSet<&str> = delivery
            .batch
            .events
            .iter()
            .filter_map(|e| e.incident.as_deref())
            .collect();
        let names: Vec<String> = names.iter().map(|(n, c)| format!("{n} x{c}")).collect();
        writeln!(
            out,
            "{} | {} {:?} | incidents {} | {} events: {}",
            delivery.key(),
            placement(delivery),
            delivery.batch.kind,
            incidents.len(),
            delivery.batch.events.len(),
            names.join(", ")
        )
        .unwrap();
    }
    out
}

/// Replay one scenario and check what every scenario must hold: no event late, lost or posted
/// twice, the counters and the deliveries agreeing with `want`, each reply under a message that
/// went out before it.
fn scenario(name: &str, want: Counts) -> Replayed {
    let replayed = replay_files(&[&incident_fixture(name)], settings(Lang::En, UTC));
    let stats = replayed.stats;
    assert_eq!((stats.quarantined, stats.late), (0, 0), "{name}: {stats:?}");
    assert_eq!(stats.send_failures, 0, "{name}: {stats:?}");

    // Every event designed to match is delivered, in exactly one delivery.
    let designed: BTreeSet<String> = expected(name)["matched_event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for delivery in &replayed.deliveries {
        for event in &delivery.batch.events {
            *seen.entry(event.event.id.to_string()).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{name}: delivered more than once: {twice:?}"
    );
    let delivered: BTreeSet<String> = seen.into_keys().collect();
    let lost: Vec<_> = designed.difference(&delivered).collect();
    let extra: Vec<_> = delivered.difference(&designed).collect();
    assert!(lost.is_empty(), "{name}: never delivered: {lost:?}");
    assert!(
        extra.is_empty(),
        "{name}: delivered, not designed to match: {extra:?}"
    );
    assert_eq!(stats.matched, designed.len() as u64, "{name}: {stats:?}");

    // A reply goes under a top-level message posted before it.
    let mut posted_top = BTreeSet::new();
    for delivery in &replayed.deliveries {
        match delivery.thread_of() {
            Some(parent) => assert!(
                posted_top.contains(parent),
                "{name}: {} replies under {parent}, not posted before it",
                delivery.key()
            ),
            None => {
                posted_top.insert(delivery.key());
            }
        }
    }

    let from_stats = Counts {
        top_level: stats.top_level,
        replies: stats.replies,
        reminders: stats.reminders,
        immediate: stats.immediate,
    };
    assert_eq!(from_stats, want, "{name}: engine counters");
    assert_eq!(counted(&replayed.deliveries), want, "{name}: deliveries");
    // The generator's table (fixtures/README.md) says the same.
    let designed = &expected(name)["expect"];
    for (field, value) in [
        ("top_level", want.top_level),
        ("replies", want.replies),
        ("reminders", want.reminders),
        ("immediate", want.immediate),
    ] {
        assert_eq!(designed[field], value, "{name}: expected.json {field}");
    }
    replayed
}

/// (a) Root signs in (with MFA) and reads through the console for 40 minutes: 150 Describe*,
/// List* and Get* calls. `root-usage` matches all 151 and is immediate. The sign-in opens the
/// incident with one immediate alert; the 150 reads continue it (same account, rule and
/// performer, never 60 minutes apart), so each of the nine windows 03:00..03:40 posts one
/// reply and none posts a digest. The session ends 40 minutes after it began: no reminder.
#[test]
fn root_console_session_is_one_alert_and_a_reply_per_window() {
    let replayed = scenario(
        "root-console-reads.jsonl",
        Counts {
            top_level: 1,
            replies: 9,
            reminders: 0,
            immediate: 1,
        },
    );
    // The other 150 immediate-rule events went into the thread, not out as alerts.
    assert_eq!(replayed.stats.immediate_in_thread, 150);
    insta::assert_snapshot!("root-console-reads", summary(&replayed.deliveries));
}

/// (b) delivery.logs.amazonaws.com's `PutObject` of VPC flow logs denied every 5 minutes for 24
/// hours (288 events, `unauthorized-write`), one per window. The first opens the incident (a
/// digest). Reminders come with the first event at or after 1 h from the opening, then 2 h, 4 h
/// and 8 h after the previous one: at +1 h, +3 h, +7 h, +15 h; the next would be 16 h later,
/// past the day. Four reminders, and the other 288 - 1 - 4 = 283 windows reply.
#[test]
fn service_denied_all_day_is_one_digest_four_reminders_and_replies() {
    let replayed = scenario(
        "service-denied-24h.jsonl",
        Counts {
            top_level: 5,
            replies: 283,
            reminders: 4,
            immediate: 0,
        },
    );
    let reminders: Vec<String> = replayed
        .deliveries
        .iter()
        .filter(|d| matches!(d.placement, Placement::Reminder(_)))
        .map(|d| d.batch.events[0].event.time.format("%H:%M:%S").to_string())
        .collect();
    assert_eq!(reminders, ["01:02:41", "03:02:41", "07:02:41", "15:02:41"]);
    insta::assert_snapshot!("service-denied-24h", summary(&replayed.deliveries));
}

/// (c) `terraform apply` of 40 modules by a GitHub OIDC role, 03:01-03:13: 400 changes, of
/// which 360 match five rules (role, policy, security group, bucket created, bucket policy;
/// `PutBucketPublicAccessBlock` matches none). Five incidents, all opened in the 03:00 window:
/// one digest. The 03:05 and 03:10 windows continue all five: five replies each.
#[test]
fn terraform_apply_is_one_digest_and_a_reply_per_incident_and_window() {
    let replayed = scenario(
        "terraform-apply-400.jsonl",
        Counts {
            top_level: 1,
            replies: 10,
            reminders: 0,
            immediate: 0,
        },
    );
    assert_eq!(replayed.stats.unmatched, 41);
    insta::assert_snapshot!("terraform-apply-400", summary(&replayed.deliveries));
}

/// (d) Three denied `StopLogging` calls by one IAM user within a minute. `cloudtrail-stopped`
/// (red, immediate) outranks `unauthorized-write`. The first posts an immediate alert; the
/// other two continue its incident in the same window: one reply, no digest.
#[test]
fn three_denied_stoplogging_are_one_alert_and_one_reply() {
    let replayed = scenario(
        "stoplogging-denied.jsonl",
        Counts {
            top_level: 1,
            replies: 1,
            reminders: 0,
            immediate: 1,
        },
    );
    assert_eq!(replayed.stats.immediate_in_thread, 2);
    insta::assert_snapshot!("stoplogging-denied", summary(&replayed.deliveries));
}

/// (e) The same SSO person in two accounts, events interleaved: security group edits every two
/// minutes for 30 minutes, and a user onboarded (CreateUser, AttachUserPolicy, CreateAccessKey)
/// at 03:12. Incidents are per account, so per account: the 03:00 digest opens the security
/// group incident, the 03:10 digest opens the three IAM incidents, and the windows 03:05 to
/// 03:25 reply for the security group. Two digests and five replies per account.
#[test]
fn two_accounts_interleaved_keep_incidents_apart() {
    let replayed = scenario(
        "two-accounts-interleaved.jsonl",
        Counts {
            top_level: 4,
            replies: 10,
            reminders: 0,
            immediate: 0,
        },
    );
    for account in ["111111111111", "222222222222"] {
        let mine: Vec<&Delivery> = replayed
            .deliveries
            .iter()
            .filter(|d| d.batch.id.account.as_str() == account)
            .collect();
        let counts = counted(&mine.into_iter().cloned().collect::<Vec<_>>());
        assert_eq!((counts.top_level, counts.replies), (2, 5), "{account}");
    }
    insta::assert_snapshot!("two-accounts-interleaved", summary(&replayed.deliveries));
}

/// (f) 25 IAM users in five accounts each create an access key, 03:00:40-03:58:16: 25 new
/// incidents, no two in the same account and window, all to the one default channel: 21
/// top-level posts and 4 digests folded past the ceiling (checked in detail below).
#[test]
fn twenty_five_new_incidents_in_an_hour_counts() {
    let replayed = scenario(
        "25-new-incidents.jsonl",
        Counts {
            top_level: 21,
            replies: 4,
            reminders: 0,
            immediate: 0,
        },
    );
    insta::assert_snapshot!("25-new-incidents", summary(&replayed.deliveries));
}

/// (f) with the ceiling: at most 20 top-level posts per channel and hour; the 21st new
/// incident's digest posts top level once more, saying that the hour's next ones are in its
/// thread, and the last four fold into that thread (audit `"posted": "folded"`), nothing
/// dropped. So: 21 top-level posts, 4 folded.
#[test]
fn twenty_five_new_incidents_in_an_hour_stop_at_the_ceiling() {
    let replayed = replay_files(
        &[&incident_fixture("25-new-incidents.jsonl")],
        settings(Lang::En, UTC),
    );
    assert_eq!(
        replayed.stats.top_level, 21,
        "{} top-level posts in one hour",
        replayed.stats.top_level
    );
    assert_eq!(replayed.stats.folded, 4);
    let overflow: Vec<&Delivery> = replayed
        .deliveries
        .iter()
        .filter(|d| matches!(d.placement, Placement::Overflow(20)))
        .collect();
    assert_eq!(overflow.len(), 1, "one overflow post");
    let overflow_key = overflow[0].key();
    for delivery in &replayed.deliveries {
        if matches!(delivery.placement, Placement::Folded(_)) {
            assert_eq!(delivery.thread_of(), Some(overflow_key.as_str()));
        }
    }
    let audit = replayed.output(Format::Audit);
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut ids = BTreeMap::new();
    let mut folded = BTreeSet::new();
    let mut digests = 0;
    for line in &lines {
        let posted = line["posted"].as_str().unwrap();
        digests += usize::from(posted == "top" && line["kind"] == "window");
        for event in line["events"].as_array().unwrap() {
            *ids.entry(event["id"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
            if posted == "folded" {
                folded.insert(event["incident"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        digests, 21,
        "{digests} digests in one hour, the overflow post included"
    );
    assert_eq!(folded.len(), 4, "incidents folded: {folded:?}");
    assert_eq!(ids.len(), 25, "every event in the audit");
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    // The incidents beyond the 21st (by time) are the folded ones.
    let mut by_time: Vec<_> = replayed
        .deliveries
        .iter()
        .flat_map(|d| &d.batch.events)
        .map(|e| (e.event.time, e.incident.clone().unwrap_or_default()))
        .collect();
    by_time.sort();
    let last_four: BTreeSet<String> = by_time[21..].iter().map(|(_, i)| i.clone()).collect();
    assert_eq!(folded, last_four);
}

/// Without threads (an incoming webhook), each scenario: no message is a reply; every matched
/// event is in exactly one delivery (posted, or held); what was held is listed, to the event,
/// in the continuing sections of the account's later top-level posts; and the top-level posts
/// are those of the threaded run, plus one post of held events per account whose incidents
/// ended with events still held. Expected, per scenario (from the rules in
/// `incident::held`): (a) the alert, then the 9 windows held, listed when the session ends:
/// 2; (b) the digest and 4 reminders carry what was held before them; the windows after the
/// last reminder are listed when the failures stop: 6; (c) the digest, then the 03:05 and
/// 03:10 windows held: 2; (d) the alert and the one held window: 2; (e) per account the
/// 03:00 and 03:10 digests (the second lists 03:05), then 03:15-03:25 held: 3 each, 6;
/// (f) no incident continues: the 21 posts of the threaded run, and the 4 digests it folds
/// into the overflow post's thread are posted top level as they come: 25.
#[test]
fn without_threads_later_events_are_held_and_listed_in_the_next_top_level_post() {
    for (name, top_level, held) in [
        ("root-console-reads.jsonl", 2, 9),
        ("service-denied-24h.jsonl", 6, 283),
        ("terraform-apply-400.jsonl", 2, 10),
        ("stoplogging-denied.jsonl", 2, 1),
        ("two-accounts-interleaved.jsonl", 6, 10),
        ("25-new-incidents.jsonl", 25, 0),
    ] {
        let replayed = common::replay_files_without_threads(
            &[&incident_fixture(name)],
            settings(Lang::En, UTC),
        );
        let stats = replayed.stats;
        let deliveries = &replayed.deliveries;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for delivery in deliveries {
            for event in &delivery.batch.events {
                *seen.entry(event.event.id.to_string()).or_default() += 1;
            }
        }
        assert_eq!(seen.len() as u64, stats.matched, "{name}: events lost");
        assert!(seen.values().all(|n| *n == 1), "{name}: an event twice");

        let held_events: usize = deliveries
            .iter()
            .filter(|d| matches!(d.placement, Placement::Held(_)))
            .map(|d| d.batch.events.len())
            .sum();
        let listed: u64 = deliveries
            .iter()
            .flat_map(|d| &d.continuing)
            .map(|entry| entry.events)
            .sum();
        assert_eq!(listed, held_events as u64, "{name}: held events listed");
        for delivery in deliveries {
            if !delivery.continuing.is_empty() {
                assert!(delivery.is_top_level(), "{name}: {}", delivery.key());
            }
        }
        assert_eq!(
            (stats.top_level, stats.held, stats.replies),
            (top_level, held, 0),
            "{name}: {stats:?}"
        );
        // What the destination gets: every message top level, none for a held reply.
        let messages: Vec<serde_json::Value> =
            serde_json::from_str(&replayed.output(Format::Slack)).unwrap();
        assert!(
            messages.iter().all(|m| m["thread_of"].is_null()),
            "{name}: a reply"
        );
        let first_parts = messages.iter().filter(|m| m["part"] == 0).count() as u64;
        assert_eq!(first_parts, top_level, "{name}: top-level messages");
        assert!(
            messages
                .iter()
                .all(|m| !m["batch_key"].as_str().unwrap().contains("/reply/")),
            "{name}: a held reply was rendered"
        );
    }
}
