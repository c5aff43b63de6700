//! Tamper rules (issue 16, "Done when" 3), on the fixtures of `fixtures/tamper/` (written by
//! `fixtures/gen_tamper.py`) through the real decoder and the built-in pack: every call that
//! changes trailwatch's own plumbing meets its `trailwatch-*` rule, red and immediate; the same
//! call on a resource that is not trailwatch's meets no tamper rule (only what it met before, if
//! anything); the same call denied stays with `unauthorized-write`.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a missing field or bad fixture fails loudly"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use trailwatch::Severity;
use trailwatch::event::{Decoded, decode_bytes};
use trailwatch::rules::{RulePack, Verdict};

/// What the pack says of one fixture event, with the call it is.
struct Seen {
    call: String,
    verdict: Verdict,
}

/// Every event of `fixtures/tamper/<file>`, by event id.
fn seen(file: &str) -> BTreeMap<String, Seen> {
    let path = common::root().join("fixtures/tamper").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let pack = RulePack::builtin();
    let mut out = BTreeMap::new();
    decode_bytes(&bytes, &mut |decoded| {
        let Decoded::Record(record) = decoded else {
            panic!("{file}: a record was not decoded: {decoded:?}");
        };
        let facts = record.facts();
        let service = facts.source.trim_end_matches(".amazonaws.com");
        let seen = Seen {
            call: format!("{service}:{}", facts.name),
            verdict: pack.evaluate(&facts),
        };
        out.insert(record.id().to_owned(), seen);
    });
    out
}

/// The cases of `fixtures/tamper/expected.json`.
fn cases() -> Vec<Value> {
    let path = common::root().join("fixtures/tamper/expected.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    expected["cases"].as_array().unwrap().clone()
}

fn text<'v>(case: &'v Value, key: &str) -> &'v str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {case}"))
}

fn rule_id(verdict: &Verdict) -> Option<&str> {
    match verdict {
        Verdict::Matched(rule) => Some(&rule.id),
        _ => None,
    }
}

fn is_tamper_rule(id: &str) -> bool {
    id.starts_with("trailwatch-")
}

#[test]
fn every_tamper_call_meets_its_rule_red_and_immediate() {
    let tamper = seen("tamper.jsonl");
    let cases = cases();
    assert_eq!(tamper.len(), cases.len(), "one tamper record per case");
    for case in &cases {
        let event = &tamper[text(case, "tamper")];
        assert_eq!(event.call, text(case, "call"));
        let Verdict::Matched(rule) = &event.verdict else {
            panic!("{}: {:?}", event.call, event.verdict);
        };
        assert_eq!(rule.id, text(case, "rule"), "{}", event.call);
        assert_eq!(
            (rule.severity, rule.immediate),
            (Severity::Red, true),
            "{}",
            event.call
        );
    }
}

#[test]
fn the_same_call_on_another_resource_meets_no_tamper_rule() {
    let tamper = seen("tamper.jsonl");
    let lookalike = seen("lookalike.jsonl");
    for case in cases() {
        let event = &lookalike[text(&case, "lookalike")];
        assert_eq!(
            event.call,
            tamper[text(&case, "tamper")].call,
            "the same call"
        );
        let met = rule_id(&event.verdict);
        assert!(!met.is_some_and(is_tamper_rule), "{}: {met:?}", event.call);
        assert_eq!(met, case["lookalike_rule"].as_str(), "{}", event.call);
    }
}

#[test]
fn the_same_call_denied_stays_with_the_denied_call_rules() {
    let tamper = seen("tamper.jsonl");
    let denied = seen("denied.jsonl");
    for case in cases() {
        let event = &denied[text(&case, "denied")];
        assert_eq!(
            event.call,
            tamper[text(&case, "tamper")].call,
            "the same call"
        );
        let Verdict::Matched(rule) = &event.verdict else {
            panic!("{}: {:?}", event.call, event.verdict);
        };
        assert_eq!(rule.id, text(&case, "denied_rule"), "{}", event.call);
        assert!(!is_tamper_rule(&rule.id), "{}", event.call);
        assert_eq!((rule.severity, rule.immediate), (Severity::Yellow, false));
        assert!(
            rule.id == "unauthorized-writes-repeated" || rule.id.starts_with("iam-"),
            "{}: {}",
            event.call,
            rule.id
        );
    }
}

#[test]
fn every_tamper_rule_has_fixtures_and_the_issue_s_calls_are_there() {
    let pack = RulePack::builtin();
    let tamper_rules: BTreeSet<&str> = pack
        .rules()
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| is_tamper_rule(id))
        .collect();
    assert!(tamper_rules.len() >= 10, "{tamper_rules:?}");
    for rule in pack.rules().iter().filter(|r| is_tamper_rule(&r.id)) {
        assert_eq!(
            (rule.severity, rule.immediate),
            (Severity::Red, true),
            "{}",
            rule.id
        );
        assert!(
            rule.tags.iter().any(|t| t.starts_with("MITRE T1562")),
            "{}: {:?}",
            rule.id,
            rule.tags
        );
    }
    let cases = cases();
    let covered: BTreeSet<&str> = cases.iter().map(|c| text(c, "rule")).collect();
    assert_eq!(covered, tamper_rules, "a fixture for every tamper rule");
    let calls: BTreeSet<&str> = cases.iter().map(|c| text(c, "call")).collect();
    for call in [
        "events:DisableRule",
        "events:DeleteRule",
        "events:RemoveTargets",
        "events:PutTargets",
        "events:PutRule",
        "events:PutPermission",
        "events:RemovePermission",
        "pipes:StopPipe",
        "pipes:DeletePipe",
        "pipes:UpdatePipe",
        "cloudformation:DeleteStack",
        "cloudformation:DeleteStackInstances",
        "cloudformation:DeleteStackSet",
        "scheduler:DeleteSchedule",
        "scheduler:UpdateSchedule",
        "lambda:DeleteFunction20150331",
        "lambda:UpdateFunctionCode20150331v2",
        "lambda:UpdateFunctionConfiguration20150331v2",
        "lambda:PutFunctionConcurrency20171031",
    ] {
        assert!(calls.contains(call), "no fixture for {call}");
    }
}
