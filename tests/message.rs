//! The message as a channel reader sees it (issue 17): every fixture scenario in English and
//! Korean as a snapshot of its text; each fact once per message; and the words that used to
//! be false (reads and failed calls counted as changes, a failed root sign-in headed "signed
//! in", a denied `DeleteTrail` headed as if the trail were gone).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use trailwatch::Severity;
use trailwatch::delivery::Delivery;
use trailwatch::render::text::text;
use trailwatch::summary::Lang;
use trailwatch::window::BatchKind;

/// Every scenario written for the project: the top-level fixtures and the incident ones.
fn scenarios() -> Vec<PathBuf> {
    let mut files = common::fixture_inputs();
    // Not an input: what the scenarios should give.
    files.retain(|p| !p.ends_with("expected.json"));
    let incidents = common::fixture("incidents");
    let mut more: Vec<PathBuf> = std::fs::read_dir(&incidents)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    more.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    more.sort();
    files.extend(more);
    files
}

fn replay(files: &[&Path], lang: Lang) -> Vec<Delivery> {
    let tz = match lang {
        Lang::Ko => chrono_tz::Asia::Seoul,
        Lang::En => chrono_tz::UTC,
    };
    common::replay_files(files, common::settings(lang, tz)).deliveries
}

/// The messages of `deliveries` as text, one string per message, without the text
/// renderer's own header line (`══ [RED] key · part 1/2 ══`), which the reader never sees.
fn messages(deliveries: &[Delivery]) -> Vec<String> {
    let all = text(deliveries);
    let mut out: Vec<String> = Vec::new();
    for line in all.lines() {
        if line.trim_start().starts_with("══ ") {
            out.push(String::new());
        } else if let Some(last) = out.last_mut() {
            last.push_str(line.trim_start());
            last.push('\n');
        }
    }
    out
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().replace('.', "_"))
        .unwrap_or_default()
}

#[test]
fn every_scenario_in_english_and_korean() {
    for file in scenarios() {
        for (lang, tag) in [(Lang::En, "en"), (Lang::Ko, "ko")] {
            let rendered = text(&replay(&[&file], lang));
            insta::assert_snapshot!(format!("{}_{tag}", name(&file)), rendered);
        }
    }
}

/// Times written as `09:00`, `09:00:12` (and inside `09:00–09:05`), normalised.
fn times(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 5 <= bytes.len() {
        let digit = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_digit);
        let starts = (i == 0 || !digit(i - 1) && bytes[i - 1] != b':')
            && digit(i)
            && digit(i + 1)
            && bytes[i + 2] == b':'
            && digit(i + 3)
            && digit(i + 4);
        if starts {
            let seconds = bytes.get(i + 5) == Some(&b':') && digit(i + 6) && digit(i + 7);
            let end = if seconds { i + 8 } else { i + 5 };
            out.push(text[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// 12-digit account numbers standing alone (not inside an ARN, a bucket name or a URL).
fn accounts(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "(),·".contains(c))
        .filter(|w| w.len() == 12 && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

/// The head of a message: everything before the tree (its divider); a thread reply's first
/// line.
fn head(message: &str) -> &str {
    match message.split_once("────") {
        Some((head, _)) => head,
        None => message.lines().next().unwrap_or_default(),
    }
}

#[test]
fn each_fact_appears_once_per_message() {
    let mut checked = 0;
    for file in scenarios() {
        for lang in [Lang::En, Lang::Ko] {
            let deliveries = replay(&[&file], lang);
            for (delivery, message) in deliveries.iter().zip(messages(&deliveries)) {
                // Links carry times as parameters: not what a reader reads.
                let visible: String = message
                    .lines()
                    .filter(|l| !l.contains("https://"))
                    .collect::<Vec<_>>()
                    .join("\n");
                let where_ = format!("{} ({lang:?}):\n{message}", file.display());
                // A time in the head (fields, headline) is said nowhere else.
                for time in times(head(&visible)) {
                    let n = times(&visible).iter().filter(|t| **t == time).count();
                    assert_eq!(n, 1, "time {time} {n} times in {where_}");
                }
                let mut seen: BTreeMap<String, usize> = BTreeMap::new();
                for account in accounts(&visible) {
                    *seen.entry(account).or_default() += 1;
                }
                for (account, n) in seen {
                    assert_eq!(n, 1, "account {account} {n} times in {where_}");
                }
                // Performers: in the headline when there is one, as tree headers when
                // there are several; never in both, never twice.
                let words = lang.words();
                let mut names: Vec<String> = delivery
                    .batch
                    .events
                    .iter()
                    .map(|e| words.principal_name(&e.actor.principal))
                    .filter(|n| n.len() > 4)
                    .collect();
                names.sort();
                names.dedup();
                let said: String = visible
                    .lines()
                    .filter(|l| !l.starts_with('•'))
                    .collect::<Vec<_>>()
                    .join("\n");
                for name in names {
                    let n = said.matches(name.as_str()).count();
                    assert!(n <= 1, "performer {name} {n} times in {where_}");
                }
                // A rule title at most once per performer.
                let performers = delivery
                    .batch
                    .events
                    .iter()
                    .map(|e| &e.actor)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                let mut titles: Vec<&str> = delivery
                    .batch
                    .events
                    .iter()
                    .map(|e| e.rule.title(lang))
                    .collect();
                titles.sort_unstable();
                titles.dedup();
                for title in titles {
                    let n = visible.matches(title).count();
                    assert!(
                        n <= performers,
                        "rule title {title:?} {n} times in {where_}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} messages checked");
}

fn envelope(id: &str, time: &str, detail: &serde_json::Value) -> String {
    json!({
        "version": "0", "id": id, "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2", "account": "111111111111", "time": time, "region": "us-east-1",
        "resources": [], "detail": detail
    })
    .to_string()
}

/// A CloudTrail API call by IAM user `mallory` through the CLI.
fn call(id: &str, time: &str, source: &str, name: &str, read_only: bool) -> serde_json::Value {
    json!({
        "eventVersion": "1.09", "eventID": id, "eventTime": time, "eventSource": source,
        "eventName": name, "awsRegion": "us-east-1", "recipientAccountId": "111111111111",
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0 Python/3.11",
        "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": true,
        "userIdentity": {"type": "IAMUser", "userName": "mallory", "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::111111111111:user/mallory", "accountId": "111111111111"}
    })
}

fn replay_lines(lines: &[String], lang: Lang) -> Vec<Delivery> {
    let tz = match lang {
        Lang::Ko => chrono_tz::Asia::Seoul,
        Lang::En => chrono_tz::UTC,
    };
    let input = lines.join("\n").into_bytes();
    common::replay_bytes(&[input], common::settings(lang, tz)).deliveries
}

#[test]
fn reads_and_denied_calls_are_not_counted_as_changes() {
    let mut lines = Vec::new();
    for i in 0..3 {
        let mut detail = call(
            &format!("r-{i}"),
            &format!("2026-11-02T03:01:0{i}Z"),
            "ec2.amazonaws.com",
            "StopInstances",
            false,
        );
        detail["requestParameters"] =
            json!({"instancesSet": {"items": [{"instanceId": format!("i-0abc{i}")}]}});
        if i == 0 {
            detail["errorCode"] = json!("Client.UnauthorizedOperation");
        }
        lines.push(envelope(&format!("e-{i}"), "2026-11-02T03:01:00Z", &detail));
    }
    // A read, denied: an attempt, not a change.
    let mut read = call(
        "d-1",
        "2026-11-02T03:02:00Z",
        "ec2.amazonaws.com",
        "DescribeInstances",
        true,
    );
    read["errorCode"] = json!("Client.UnauthorizedOperation");
    lines.push(envelope("e-d", "2026-11-02T03:02:00Z", &read));
    let deliveries = replay_lines(&lines, Lang::En);
    let headlines: Vec<&str> = deliveries
        .iter()
        .map(|d| d.summary.headline.as_str())
        .collect();
    let all = headlines.join("\n");
    assert!(all.contains("2 changes"), "{all}");
    assert!(all.contains("2 denied attempts"), "{all}");
    assert!(
        !all.contains("4 changes") && !all.contains("3 changes"),
        "{all}"
    );
    let ko: Vec<String> = replay_lines(&lines, Lang::Ko)
        .iter()
        .map(|d| d.summary.headline.clone())
        .collect();
    let ko = ko.join("\n");
    assert!(
        ko.contains("변경 2건") && ko.contains("거부된 시도 2건"),
        "{ko}"
    );
}

fn root_sign_in(result: &str, mfa: &str) -> String {
    json!({
        "version": "0", "id": "si-1", "detail-type": "AWS Console Sign In via CloudTrail",
        "source": "aws.signin", "account": "111111111111", "time": "2026-11-02T03:01:07Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            "eventVersion": "1.08", "eventID": "si-1", "eventTime": "2026-11-02T03:01:07Z",
            "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1", "recipientAccountId": "111111111111",
            "sourceIPAddress": "203.0.113.9", "userAgent": "Mozilla/5.0",
            "userIdentity": {"type": "Root", "principalId": "111111111111",
                "arn": "arn:aws:iam::111111111111:root", "accountId": "111111111111"},
            "additionalEventData": {"MFAUsed": mfa, "LoginTo": "https://console.aws.amazon.com/"},
            "responseElements": {"ConsoleLogin": result},
            "errorMessage": if result == "Failure" { json!("Failed authentication") } else { json!(null) },
            "eventType": "AwsConsoleSignIn"
        }
    })
    .to_string()
}

#[test]
fn a_failed_root_sign_in_is_a_red_immediate_attempt_never_signed_in() {
    for lang in [Lang::En, Lang::Ko] {
        let deliveries = replay_lines(&[root_sign_in("Failure", "No")], lang);
        let alert = deliveries
            .iter()
            .find(|d| d.batch.kind == BatchKind::Immediate)
            .unwrap_or_else(|| panic!("an immediate alert: {deliveries:?}"));
        assert_eq!(alert.severity, Severity::Red);
        assert_eq!(alert.batch.events[0].rule.id, "root-console-sign-in-failed");
        let headline = &alert.summary.headline;
        match lang {
            Lang::En => {
                assert!(headline.contains("tried to sign in"), "{headline}");
                assert!(!headline.contains("signed in"), "{headline}");
            }
            Lang::Ko => {
                assert!(
                    headline.contains("시도") && headline.contains("실패"),
                    "{headline}"
                );
            }
        }
    }
    // A successful one still is what it says.
    let ok = replay_lines(&[root_sign_in("Success", "No")], Lang::En);
    assert_eq!(
        ok[0].batch.events[0].rule.id,
        "root-console-sign-in-without-mfa"
    );
    assert!(
        ok[0]
            .summary
            .headline
            .contains("signed in to the console without MFA")
    );
}

#[test]
fn a_denied_tamper_call_is_headed_as_a_denied_attempt() {
    let mut detail = call(
        "dt-1",
        "2026-11-02T03:01:00Z",
        "cloudtrail.amazonaws.com",
        "DeleteTrail",
        false,
    );
    detail["requestParameters"] = json!({"name": "org-trail"});
    detail["errorCode"] = json!("AccessDenied");
    let line = envelope("e-dt", "2026-11-02T03:01:00Z", &detail);
    let en = replay_lines(std::slice::from_ref(&line), Lang::En);
    let headline = &en[0].summary.headline;
    assert!(headline.starts_with("Denied attempt: "), "{headline}");
    assert!(
        headline.contains("tried DeleteTrail on org-trail (AccessDenied)"),
        "{headline}"
    );
    let ko = replay_lines(&[line], Lang::Ko);
    assert!(
        ko[0].summary.headline.starts_with("거부된 시도"),
        "{}",
        ko[0].summary.headline
    );
}

#[test]
fn korean_has_no_both_ways_particles() {
    for file in scenarios() {
        let rendered = text(&replay(&[&file], Lang::Ko));
        for both in ["을(를)", "이(가)", "은(는)", "(으)로", "와(과)"] {
            assert!(
                !rendered.contains(both),
                "{both} in {}:\n{rendered}",
                file.display()
            );
        }
    }
}

#[test]
fn a_launch_of_100_instances_shows_three_ids_and_the_rest_counted() {
    let file = common::fixture("resources/run-instances.jsonl");
    let deliveries = replay(&[&file], Lang::En);
    let all = text(&deliveries);
    let line = all
        .lines()
        .find(|l| l.contains("RunInstances") && l.contains("and 97 more"))
        .unwrap_or_else(|| panic!("a RunInstances line ending in 'and 97 more':\n{all}"));
    assert!(line.contains("i-"), "{line}");
    assert!(!line.contains("eni-") && !line.contains("ip-"), "{line}");
    let ko = text(&replay(&[&file], Lang::Ko));
    assert!(ko.contains("외 97개"), "{ko}");
}

#[test]
fn lambda_event_names_are_shown_without_their_api_version() {
    let mut detail = call(
        "lp-1",
        "2026-11-02T03:01:00Z",
        "lambda.amazonaws.com",
        "AddPermission20150331v2",
        false,
    );
    detail["requestParameters"] =
        json!({"functionName": "orders-api", "principal": "*", "action": "lambda:InvokeFunction"});
    let line = envelope("e-lp", "2026-11-02T03:01:00Z", &detail);
    // No default rule takes AddPermission yet (issue 18): a pack that does.
    let pack = trailwatch::rules::RulePack::from_toml(
        r#"
[[rule]]
id = "lambda-permission"
title = "Lambda permission changed"
severity = "yellow"
[rule.match]
source = "lambda.amazonaws.com"
name = "AddPermission*"
"#,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let deliveries = common::replay_bytes_with(
        &[line.into_bytes()],
        common::settings(Lang::En, chrono_tz::UTC),
        pack,
    );
    let all = text(&deliveries);
    assert!(all.contains("AddPermission"), "{all}");
    assert!(!all.contains("20150331"), "{all}");
}
