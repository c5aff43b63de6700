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
