//! Threshold rules: a rule that fires only when one performer (or the account) reaches a count
//! of events, or of distinct values, within one window.
//!
//! `threshold = { count = 20, distinct = "request.secretId", by = "principal" }` in a
//! `[[rule]]`. Each event the rule's match selects is kept with its window as usual, with the
//! values of `distinct` read from the record when it was decoded ([`crate::window::BatchEvent`]'s
//! `counted`). When the window is flushed the engine counts, per rule and per `by` group, the
//! events (or the distinct values: an array field counts each element; an event counted twice,
//! a duplicate, is stored once and counted once). A group that reaches `count` fires once for the
//! window, with the count, and its events are the ones counted. An event of a group below it is
//! reported by the worst other rule it matched, without a threshold (its fallback: a denied
//! change alone is the green "unauthorized change attempt"), or, matching none, is dropped from
//! the window's message and counted in the `below_threshold` statistic. Counts
//! are durable because the events are: they are the window's events in the store, so a late event
//! that reaches the window before it is flushed counts with the others.
//!
//! Cost: the member pattern forwards every event a threshold rule's match selects, not only
//! those that end up crossing the threshold.

use serde::{Deserialize, Serialize};

use crate::event::Facts;

use super::path::Root;
use super::value::Leaf;

/// Whose events a threshold counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdBy {
    /// One performer (the session for people, the role for workloads), as incidents group them.
    #[default]
    Principal,
    /// Everyone in the account.
    Account,
}

/// A rule's `threshold`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Events (or distinct values) a group must reach within one window: 2 to 100,000.
    pub count: u32,
    /// A path (`request.secretId`, `response.x`, `additional.x`, `resources.ARN`): count the
    /// distinct values found there instead of events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<String>,
    #[serde(default)]
    pub by: ThresholdBy,
}

/// `distinct`, compiled: where its values are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctPath {
    root: Root,
    path: Vec<String>,
}

impl DistinctPath {
    /// Parse `request.secretId` (a root key, a dot, then a path; `[]` markers allowed).
    pub fn parse(text: &str) -> Option<Self> {
        let (root, rest) = text.split_once('.')?;
        let root = Root::from_key(root)?;
        let path: Vec<String> = rest
            .split('.')
            .map(|s| s.strip_suffix("[]").unwrap_or(s))
            .map(str::to_owned)
            .collect();
        path.iter()
            .all(|s| !s.is_empty() && !s.contains(['[', ']']))
            .then_some(Self { root, path })
    }

    /// The values at the path, as text (numbers and booleans written as JSON writes them;
    /// nulls left out), in the order found, duplicates kept.
    pub fn values(&self, facts: &Facts<'_>) -> Vec<String> {
        let Some(json) = self.root.json(facts) else {
            return Vec::new();
        };
        json.leaves(&self.path)
            .iter()
            .filter_map(|value| match Leaf::of(value)? {
                Leaf::Str(s) => Some(s.to_owned()),
                Leaf::Null => None,
                Leaf::Number(_) | Leaf::Bool(_) => Some(value.to_string()),
            })
            .collect()
    }
}

/// How many `counted` a group reached: its events, or its distinct values.
pub fn count<'a>(threshold: &Threshold, counted: impl Iterator<Item = &'a [String]>) -> usize {
    if threshold.distinct.is_none() {
        return counted.count();
    }
    let mut seen = std::collections::HashSet::new();
    for values in counted {
        seen.extend(values.iter().map(String::as_str));
    }
    seen.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;

    #[test]
    fn a_distinct_path_names_a_root_and_a_path() {
        assert!(DistinctPath::parse("request.secretId").is_some());
        assert!(DistinctPath::parse("request.items[].name").is_some());
        for bad in [
            "secretId",
            "requests.secretId",
            "request.",
            "request.a..b",
            "request.a[0]",
        ] {
            assert!(DistinctPath::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn events_or_distinct_values_are_counted() {
        let plain = Threshold {
            count: 3,
            distinct: None,
            by: ThresholdBy::Principal,
        };
        let distinct = Threshold {
            distinct: Some("request.secretId".to_owned()),
            ..plain.clone()
        };
        let a = vec!["a".to_owned()];
        let ab = vec!["a".to_owned(), "b".to_owned()];
        let none: Vec<String> = Vec::new();
        let events = [a.as_slice(), ab.as_slice(), a.as_slice(), none.as_slice()];
        assert_eq!(count(&plain, events.iter().copied()), 4);
        assert_eq!(count(&distinct, events.iter().copied()), 2, "a and b");
    }
}
