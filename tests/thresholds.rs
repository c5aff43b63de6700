//! Threshold rules (issue 18): a rule fires when one performer (or the account) reaches a
//! count of events, or of distinct values, within one window; below it, its events stay out of
//! the message and are counted.
//!
//! Windows are five minutes with a two-minute grace (`fixtures/config.toml`): the window
//! 03:00-03:05 is flushed once an event dated after 03:07 arrives.

mod common;

use serde_json::json;
use trailwatch::Severity;
use trailwatch::rules::RulePack;
use trailwatch::summary::Lang;

const PACK: &str = r#"
[[rule]]
id = "secrets-read-one-by-one"
title = { en = "Secrets read one by one", ko = "시크릿 하나씩 조회" }
severity = "yellow"
threshold = { count = 3, distinct = "request.secretId", by = "principal" }
[rule.match]
source = "secretsmanager.amazonaws.com"
name = "GetSecretValue"

[[rule]]
id = "secrets-read-in-bulk"
title = "Secrets read in bulk"
severity = "yellow"
threshold = { count = 3, distinct = "request.secretIdList[]" }
[rule.match]
source = "secretsmanager.amazonaws.com"
name = "BatchGetSecretValue"

[[rule]]
id = "denied-by-anyone"
title = "Denied calls across the account"
severity = "yellow"
threshold = { count = 4, by = "account" }
[rule.match]
source = "s3.amazonaws.com"
error_code = "AccessDenied"

[[rule]]
id = "bucket-created"
title = "Bucket created"
severity = "green"
[rule.match]
source = "s3.amazonaws.com"
name = "CreateBucket"
"#;

/// A call by `who` at 03:`minute`:`second` with these request parameters.
fn call(id: &str, at: &str, who: &str, name: &str, extra: &serde_json::Value) -> String {
    let source = if name.contains("Secret") {
        "secretsmanager.amazonaws.com"
    } else {
        "s3.amazonaws.com"
    };
    let mut record = json!({
        "eventVersion": "1.09", "eventID": id, "eventTime": format!("2026-11-02T03:{at}Z"),
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111", "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0", "readOnly": true, "eventType": "AwsApiCall",
        "userIdentity": {"type": "IAMUser", "userName": who, "accountId": "111111111111",
            "arn": format!("arn:aws:iam::111111111111:user/{who}")},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        record[k] = v.clone();
    }
    record.to_string()
}

fn secret(id: &str, at: &str, who: &str, secret: &str) -> String {
    call(
        id,
        at,
        who,
        "GetSecretValue",
        &json!({"requestParameters": {"secretId": secret}}),
    )
}

/// Replay `buffers` in this order (each one ingested, and whatever fell due flushed, before
/// the next): the ids of the events that reached a message, by rule title; and the stats.
fn run(buffers: &[Vec<String>]) -> (Vec<(String, Vec<String>)>, trailwatch::engine::Stats) {
    let pack = RulePack::from_toml(PACK).unwrap_or_else(|err| panic!("{err}"));
    let inputs: Vec<Vec<u8>> = buffers.iter().map(|b| b.join("\n").into_bytes()).collect();
    let replayed =
        common::replay_bytes_pack(&inputs, common::settings(Lang::En, chrono_tz::UTC), pack);
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for delivery in &replayed.deliveries {
        for e in &delivery.batch.events {
            let title = e.rule.title(Lang::En).to_owned();
            match out.iter_mut().find(|(t, _)| *t == title) {
                Some((_, ids)) => ids.push(e.event.id.to_string()),
                None => out.push((title, vec![e.event.id.to_string()])),
            }
        }
    }
    (out, replayed.stats)
}

#[test]
fn a_performer_reaching_the_count_of_distinct_values_fires_once_with_the_count() {
    let (got, stats) = run(&[vec![
        secret("a1", "01:00", "alice", "prod/db"),
        secret("a2", "01:30", "alice", "prod/api-key"),
        secret("a3", "02:00", "alice", "prod/db"),
        secret("a4", "03:00", "alice", "prod/stripe"),
        secret("b1", "01:10", "bob", "prod/db"),
        secret("b2", "02:10", "bob", "prod/api-key"),
    ]]);
    assert_eq!(
        got,
        [(
            "Secrets read one by one (3 in one window)".to_owned(),
            vec!["a1".to_owned(), "a2".into(), "a3".into(), "a4".into()]
        )],
        "alice read 3 distinct secrets (4 reads): all counted events; bob read 2"
    );
    assert_eq!(stats.below_threshold, 2, "bob's two reads");
}

#[test]
fn reading_one_secret_many_times_is_one_distinct_value() {
    let reads: Vec<String> = (0..6)
        .map(|i| secret(&format!("r{i}"), &format!("0{i}:00"), "alice", "prod/db"))
        .collect();
    let (got, stats) = run(&[reads]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(stats.below_threshold, 6);
}

#[test]
fn an_array_field_counts_each_element() {
    let bulk = |id: &str, at: &str, ids: &[&str]| {
        call(
            id,
            at,
            "alice",
            "BatchGetSecretValue",
            &json!({"requestParameters": {"secretIdList": ids}}),
        )
    };
    let (got, _) = run(&[vec![bulk("x", "01:00", &["a", "b", "c"])]]);
    assert_eq!(got.len(), 1, "one call naming three secrets");
    assert_eq!(got[0].0, "Secrets read in bulk (3 in one window)");
    let (got, stats) = run(&[vec![bulk("y", "01:00", &["a", "b", "a"])]]);
    assert!(got.is_empty() && stats.below_threshold == 1, "{got:?}");
}

#[test]
fn by_account_counts_everyone_together_and_events_without_distinct() {
    let denied = |id: &str, at: &str, who: &str| {
        call(
            id,
            at,
            who,
            "GetObject",
            &json!({"errorCode": "AccessDenied"}),
        )
    };
    let (got, _) = run(&[vec![
        denied("d1", "01:00", "alice"),
        denied("d2", "01:10", "bob"),
        denied("d3", "01:20", "carol"),
        denied("d4", "01:30", "alice"),
    ]]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), 4);
    // The same four by two people, with `by = principal`, would be two groups of two: the
    // secret rule shows that grouping above.
}

#[test]
fn window_edges_split_the_count() {
    let (got, stats) = run(&[vec![
        secret("e1", "04:10", "alice", "s1"),
        secret("e2", "04:50", "alice", "s2"),
        secret("e3", "05:10", "alice", "s3"),
    ]]);
    assert!(
        got.is_empty(),
        "two in 03:00-03:05, one in 03:05-03:10: {got:?}"
    );
    assert_eq!(stats.below_threshold, 3);
}

#[test]
fn a_late_event_counts_while_its_window_is_open_and_not_after() {
    let open = run(&[
        vec![
            secret("l1", "01:00", "alice", "s1"),
            secret("l2", "02:00", "alice", "s2"),
        ],
        // Advances the clock into the grace period: the window is still open.
        vec![call("c1", "06:00", "ops", "CreateBucket", &json!({}))],
        vec![secret("l3", "03:00", "alice", "s3")],
    ]);
    assert!(
        open.0
            .iter()
            .any(|(title, ids)| title.starts_with("Secrets read one by one") && ids.len() == 3),
        "{:?}",
        open.0
    );
    let flushed = run(&[
        vec![
            secret("l1", "01:00", "alice", "s1"),
            secret("l2", "02:00", "alice", "s2"),
        ],
        // Past the grace: the window is flushed with two, below the threshold.
        vec![call("c1", "08:00", "ops", "CreateBucket", &json!({}))],
        vec![secret("l3", "03:00", "alice", "s3")],
    ]);
    assert!(
        !flushed
            .0
            .iter()
            .any(|(title, _)| title.starts_with("Secrets read")),
        "{:?}",
        flushed.0
    );
    assert_eq!(flushed.1.below_threshold, 3, "two in the window, one late");
}

#[test]
fn a_duplicate_is_stored_once_and_counted_once() {
    let (got, stats) = run(&[vec![
        secret("u1", "01:00", "alice", "s1"),
        secret("u2", "02:00", "alice", "s2"),
        secret("u2", "02:00", "alice", "s2"),
    ]]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!((stats.duplicates, stats.below_threshold), (1, 2));
    let (got, _) = run(&[vec![
        call(
            "v1",
            "01:00",
            "alice",
            "GetObject",
            &json!({"errorCode": "AccessDenied"}),
        ),
        call(
            "v1",
            "01:00",
            "alice",
            "GetObject",
            &json!({"errorCode": "AccessDenied"}),
        ),
        call(
            "v1",
            "01:00",
            "alice",
            "GetObject",
            &json!({"errorCode": "AccessDenied"}),
        ),
        call(
            "v2",
            "01:00",
            "alice",
            "GetObject",
            &json!({"errorCode": "AccessDenied"}),
        ),
    ]]);
    assert!(got.is_empty(), "two events, each redelivered: {got:?}");
}

#[test]
fn the_colour_is_the_rules_and_the_title_carries_the_count_in_each_language() {
    let pack = RulePack::from_toml(PACK).unwrap_or_else(|err| panic!("{err}"));
    let input = [
        secret("k1", "01:00", "alice", "s1"),
        secret("k2", "01:30", "alice", "s2"),
        secret("k3", "02:00", "alice", "s3"),
    ]
    .join("\n")
    .into_bytes();
    let ko = common::replay_bytes_pack(&[input], common::settings(Lang::Ko, chrono_tz::UTC), pack);
    let event = &ko.deliveries[0].batch.events[0];
    assert_eq!(
        event.rule.title(Lang::Ko),
        "시크릿 하나씩 조회 (한 구간에 3건)"
    );
    assert_eq!(event.rule.severity, Severity::Yellow);
}

#[test]
fn a_threshold_says_what_is_wrong_with_it() {
    let rule = |threshold: &str| {
        format!(
            "[[rule]]\nid = \"t\"\ntitle = \"t\"\nseverity = \"yellow\"\n{threshold}\n[rule.match]\nsource = \"s3.amazonaws.com\"\n"
        )
    };
    for (threshold, needle) in [
        ("threshold = { count = 1 }", "from 2 to 100000"),
        (
            "threshold = { count = 5, distinct = \"secretId\" }",
            "distinct must be a path",
        ),
        (
            "immediate = true\nthreshold = { count = 5 }",
            "cannot be immediate",
        ),
        ("threshold = { count = 5, by = \"team\" }", "by"),
    ] {
        let err = RulePack::from_toml(&rule(threshold))
            .err()
            .unwrap_or_else(|| panic!("{threshold} accepted"));
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(inner) = source {
            chain = format!("{chain}: {inner}");
            source = inner.source();
        }
        assert!(
            chain.contains(needle) && chain.contains('t'),
            "{threshold}: {chain}"
        );
    }
}

/// A group that fired goes on under its incident: one more read in the next window, or a late
/// one after the window was sent, is reported (a reply), not dropped below the count.
#[test]
fn a_group_that_fired_goes_on_under_its_incident() {
    let (got, stats) = run(&[
        vec![
            secret("f1", "01:00", "alice", "s1"),
            secret("f2", "02:00", "alice", "s2"),
            secret("f3", "03:00", "alice", "s3"),
        ],
        // The next window: one read, below the count alone.
        vec![secret("f4", "06:00", "alice", "s4")],
        // Past that window's grace; then a late read of the first window.
        vec![call("c1", "13:00", "ops", "CreateBucket", &json!({}))],
        vec![secret("f5", "04:00", "alice", "s5")],
    ]);
    let reported: Vec<&String> = got
        .iter()
        .filter(|(title, _)| title.starts_with("Secrets read one by one"))
        .flat_map(|(_, ids)| ids)
        .collect();
    assert_eq!(reported, ["f1", "f2", "f3", "f4", "f5"], "{got:?}");
    assert_eq!(stats.below_threshold, 0);
    // Bob alone in the next window is still below.
    let (got, stats) = run(&[vec![
        secret("g1", "01:00", "alice", "s1"),
        secret("g2", "02:00", "alice", "s2"),
        secret("g3", "03:00", "alice", "s3"),
        secret("h1", "06:00", "bob", "s4"),
    ]]);
    assert!(got.iter().all(|(_, ids)| !ids.contains(&"h1".to_owned())));
    assert_eq!(stats.below_threshold, 1);
}
