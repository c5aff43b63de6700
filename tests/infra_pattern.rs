//! The member-account rule patterns the CDK app deploys (`infra/member-patterns.json`) are
//! exactly what `trailwatch pattern --split 2048` prints for the built-in rule pack.
//!
//! Regenerate after changing the pack:
//! `cargo run -q -- pattern --split 2048 > infra/member-patterns.json`

#![allow(clippy::expect_used, reason = "test fixtures")]

use std::path::Path;

use serde_json::Value;
use trailwatch::rules::{RulePack, event_patterns};

/// EventBridge's default limit on the size of one rule's pattern, in characters.
const LIMIT: usize = 2048;

fn checked_in() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/member-patterns.json");
    let text = std::fs::read_to_string(&path).expect("infra/member-patterns.json is readable");
    serde_json::from_str(&text).expect("infra/member-patterns.json is JSON")
}

#[test]
fn checked_in_member_patterns_equal_the_generated_ones() {
    let generated = event_patterns(&RulePack::builtin(), LIMIT).expect("the built-in pack splits");
    assert_eq!(
        checked_in(),
        Value::Array(generated),
        "infra/member-patterns.json is stale: run \
         `cargo run -q -- pattern --split 2048 > infra/member-patterns.json`"
    );
}

#[test]
fn every_checked_in_pattern_fits_one_rule() {
    let Value::Array(patterns) = checked_in() else {
        panic!("infra/member-patterns.json must be a JSON array of patterns");
    };
    assert!(!patterns.is_empty(), "at least one member rule");
    for pattern in &patterns {
        assert!(pattern.is_object(), "each pattern is an object: {pattern}");
        let len = pattern.to_string().chars().count();
        assert!(
            len <= LIMIT,
            "a pattern of {len} characters exceeds {LIMIT}"
        );
    }
}

/// The CDK creates the table the DynamoDB store expects: same key, index and TTL names.
#[cfg(feature = "cloud")]
#[test]
fn cdk_table_names_match_the_store() {
    use trailwatch::adapters::dynamo::{
        DUE_AT, DUE_INDEX, DUE_INDEX_ATTRIBUTES, DUE_PK, TTL_ATTRIBUTE,
    };
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/config.ts"))
        .unwrap_or_else(|err| panic!("infra/config.ts: {err}"));
    for (key, value) in [
        ("dueIndex", DUE_INDEX),
        ("dueIndexPartitionKey", DUE_PK),
        ("dueIndexSortKey", DUE_AT),
        ("ttlAttribute", TTL_ATTRIBUTE),
    ] {
        let line = format!("{key}: '{value}',");
        assert!(config.contains(&line), "infra/config.ts lacks `{line}`");
    }
    let attributes = DUE_INDEX_ATTRIBUTES
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let line = format!("dueIndexAttributes: [{attributes}],");
    assert!(config.contains(&line), "infra/config.ts lacks `{line}`");
}

/// The alarms watch the metrics the Lambda writes: same namespace and names.
#[test]
fn cdk_alarm_metrics_match_the_lambda() {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/config.ts"))
        .unwrap_or_else(|err| panic!("infra/config.ts: {err}"));
    let metrics = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/adapters/metrics.rs"
    ))
    .unwrap_or_else(|err| panic!("metrics.rs: {err}"));
    assert!(
        config.contains(&format!(
            "namespace: '{}',",
            trailwatch::adapters::metrics::NAMESPACE
        )),
        "namespace differs"
    );
    for (key, name) in [
        ("quarantined", "Quarantined"),
        ("offlineFallbacks", "SummaryFallbacks"),
        ("slackFailures", "SendFailures"),
    ] {
        assert!(config.contains(&format!("{key}: '{name}',")), "{key}");
        assert!(
            metrics.contains(&format!("\"{name}\"")),
            "the Lambda writes no {name}"
        );
    }
}

/// Every environment variable the CDK sets on the Lambda is one the code reads.
#[test]
fn cdk_environment_names_are_read_by_the_lambda() {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/config.ts"))
        .unwrap_or_else(|err| panic!("infra/config.ts: {err}"));
    let code = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs"))
        .unwrap_or_else(|err| panic!("src/config.rs: {err}"));
    let names: Vec<&str> = config
        .split('\'')
        .filter(|s| s.starts_with("TRAILWATCH_"))
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "the Lambda never reads {name}"
        );
    }
}
