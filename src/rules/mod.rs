//! Rule pack: which events matter, how bad they are, and the EventBridge pattern for them.
//!
//! A pack is a TOML file (the format is documented at the top of `default.toml`, which is compiled
//! in). Every rule's match is expressible as an EventBridge event pattern, so the member-account
//! rule that forwards events is generated from the same pack ([`event_pattern`]).

// Prose names AWS products (CloudTrail, EventBridge) that are not code; the crate-wide lint table
// on main allows this too.
#![allow(clippy::doc_markdown)]

mod error;
mod glob;
mod index;
mod matcher;
mod path;
pub mod pattern;
mod threshold;
mod title;
mod value;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::Facts;
use crate::locale::Lang;
use crate::severity::Severity;

pub use error::RulesError;
pub use pattern::{
    EVENT_PATTERN_DEFAULT_LIMIT, EVENT_PATTERN_MAX_LIMIT, event_pattern, event_patterns,
};
pub use threshold::{Threshold, ThresholdBy, count as threshold_count};
pub use title::Titles;
pub use value::{Organization, account_in};

use index::Index;
use matcher::Matcher;
use threshold::DistinctPath;

/// The pack compiled into the binary.
pub const DEFAULT_PACK: &str = include_str!("default.toml");

/// The packs a configuration can switch on by name (`[rules] packs`), compiled in: `default`,
/// `clickops` (every successful console change) and `all-changes` (every successful change).
pub const PACKS: [(&str, &str); 3] = [
    ("default", DEFAULT_PACK),
    ("clickops", include_str!("clickops.toml")),
    ("all-changes", include_str!("all-changes.toml")),
];

/// One detection rule. Stored inline with each event (DynamoDB items, replay's runs), so it
/// also reads rules stored before titles were by language (`title` and `title_ko`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredRule")]
pub struct Rule {
    pub id: String,
    #[serde(rename = "title")]
    pub titles: Titles,
    pub severity: Severity,
    /// Post at once, alone, as well as in the window digest.
    pub immediate: bool,
    pub tags: Vec<String>,
    /// This rule's dedup period in seconds (`dedup_period = "30m"` in the pack), instead of
    /// `[incidents] dedup_period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_period_secs: Option<u64>,
    /// What makes two of this rule's events in one account one incident (`dedup_by = ["name",
    /// "resource"]`); empty: the performer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedup_by: Vec<DedupField>,
    /// Fire only when a performer reaches a count within one window (see [`Threshold`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
}

/// An event field an incident can be keyed by (`dedup_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupField {
    /// The principal: the session for people, the role for workloads.
    Performer,
    /// `eventName`.
    Name,
    /// The first resource the event names.
    Resource,
    /// `awsRegion`.
    Region,
    /// `sourceIPAddress`.
    SourceIp,
    /// `errorCode` (empty for a success).
    ErrorCode,
}

impl Rule {
    /// This rule's dedup period, if the pack gives one.
    pub fn dedup_period(&self) -> Option<chrono::TimeDelta> {
        self.dedup_period_secs
            .and_then(|secs| chrono::TimeDelta::try_seconds(i64::try_from(secs).ok()?))
    }

    /// The title in `lang`, or in English when the pack gives none in `lang`.
    pub fn title(&self, lang: Lang) -> &str {
        self.titles.get(lang)
    }
}

/// A rule as stored, in either form.
#[derive(Deserialize)]
struct StoredRule {
    id: String,
    title: Titles,
    /// Written before titles were by language.
    #[serde(default)]
    title_ko: Option<String>,
    severity: Severity,
    immediate: bool,
    tags: Vec<String>,
    #[serde(default)]
    dedup_period_secs: Option<u64>,
    #[serde(default)]
    dedup_by: Vec<DedupField>,
    #[serde(default)]
    threshold: Option<Threshold>,
}

impl From<StoredRule> for Rule {
    fn from(stored: StoredRule) -> Self {
        let titles = match stored.title_ko {
            Some(ko) => stored.title.with(Lang::Ko, ko),
            None => stored.title,
        };
        Self {
            id: stored.id,
            titles,
            severity: stored.severity,
            immediate: stored.immediate,
            tags: stored.tags,
            dedup_period_secs: stored.dedup_period_secs,
            dedup_by: stored.dedup_by,
            threshold: stored.threshold,
        }
    }
}

/// What the pack says of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Matched(Arc<Rule>),
    Ignored(Arc<Rule>),
    Unmatched,
}

/// A rule with its compiled match.
#[derive(Debug, Clone)]
struct Entry {
    rule: Arc<Rule>,
    matcher: Matcher,
    /// The compiled `threshold.distinct`.
    distinct: Option<DistinctPath>,
}

/// A compiled rule pack.
#[derive(Debug, Clone, Default)]
pub struct RulePack {
    rules: Vec<Arc<Rule>>,
    entries: Vec<Entry>,
    ignores: Vec<Entry>,
    index: Index,
    /// Who is inside, for `{ not_org_account = true }`.
    organization: Organization,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    #[serde(default)]
    rule: Vec<toml::Table>,
    #[serde(default)]
    ignore: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    title: Titles,
    severity: Severity,
    #[serde(default)]
    immediate: bool,
    #[serde(default)]
    tags: Vec<String>,
    /// `"30m"`: how long the rule's incidents stay open without a new event.
    #[serde(default)]
    dedup_period: Option<String>,
    #[serde(default)]
    dedup_by: Vec<DedupField>,
    #[serde(default)]
    threshold: Option<Threshold>,
    #[serde(rename = "match")]
    matches: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreSpec {
    id: String,
    title: Titles,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(rename = "match")]
    matches: toml::Table,
}

impl RulePack {
    /// The pack compiled into the binary (`src/rules/default.toml`).
    ///
    /// # Panics
    /// Never in a tested build: the unit test `builtin_pack_parses` parses the same text.
    pub fn builtin() -> Self {
        match Self::try_builtin() {
            Ok(pack) => pack,
            Err(e) => panic!("the compiled-in rule pack is invalid: {e}"),
        }
    }

    /// The compiled-in pack, as a `Result`.
    pub fn try_builtin() -> Result<Self, RulesError> {
        Self::from_toml(DEFAULT_PACK)
    }

    /// The built-in packs `names` (see [`PACKS`]) as one pack, in the order given.
    ///
    /// # Errors
    /// A name that is no built-in pack, or packs whose entries share an id.
    pub fn named<S: AsRef<str>>(names: &[S]) -> Result<Self, RulesError> {
        let mut text = String::new();
        for name in names {
            let name = name.as_ref();
            let (_, pack) =
                PACKS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| RulesError::UnknownPack {
                        name: name.to_owned(),
                    })?;
            text.push_str(pack);
            text.push('\n');
        }
        Self::from_toml(&text)
    }

    /// A pack from a file, replacing the compiled-in one.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RulesError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parse and validate a pack: unique ids, known keys and detail-types, non-empty matches.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let file: PackFile = toml::from_str(text).map_err(|e| RulesError::Syntax(Box::new(e)))?;
        if file.rule.is_empty() {
            return Err(RulesError::NoRules);
        }
        let mut ids = HashSet::new();
        let mut entries = Vec::with_capacity(file.rule.len());
        for (n, table) in file.rule.into_iter().enumerate() {
            let id = entry_id(&table, n);
            reject_title_ko("rule", &id, &table)?;
            let spec: RuleSpec = entry(table).map_err(|source| RulesError::Entry {
                section: "rule",
                id,
                source: Box::new(source),
            })?;
            let matcher = Matcher::parse("rule", &spec.id, &spec.matches)?;
            if !ids.insert(spec.id.clone()) {
                return Err(RulesError::DuplicateId {
                    section: "rule",
                    id: spec.id,
                });
            }
            let dedup_period_secs = match &spec.dedup_period {
                None => None,
                // From a minute to 30 days, like `[incidents] dedup_period`.
                Some(text) => Some(
                    humantime::parse_duration(text)
                        .ok()
                        .map(|d| d.as_secs())
                        .filter(|secs| (60..=30 * 86_400).contains(secs))
                        .ok_or_else(|| RulesError::DedupPeriod {
                            id: spec.id.clone(),
                            found: text.clone(),
                        })?,
                ),
            };
            let distinct = check_threshold(&spec)?;
            let rule = Rule {
                id: spec.id,
                titles: spec.title,
                severity: spec.severity,
                immediate: spec.immediate,
                tags: spec.tags,
                dedup_period_secs,
                dedup_by: spec.dedup_by,
                threshold: spec.threshold,
            };
            entries.push(Entry {
                rule: Arc::new(rule),
                matcher,
                distinct,
            });
        }
        let mut ignores = Vec::with_capacity(file.ignore.len());
        for (n, table) in file.ignore.into_iter().enumerate() {
            let id = entry_id(&table, n);
            reject_title_ko("ignore", &id, &table)?;
            let spec: IgnoreSpec = entry(table).map_err(|source| RulesError::Entry {
                section: "ignore",
                id,
                source: Box::new(source),
            })?;
            let matcher = Matcher::parse("ignore", &spec.id, &spec.matches)?;
            if !ids.insert(spec.id.clone()) {
                return Err(RulesError::DuplicateId {
                    section: "ignore",
                    id: spec.id,
                });
            }
            let rule = Rule {
                id: spec.id,
                titles: spec.title,
                severity: Severity::Green,
                immediate: false,
                tags: spec.tags,
                dedup_period_secs: None,
                dedup_by: Vec::new(),
                threshold: None,
            };
            ignores.push(Entry {
                rule: Arc::new(rule),
                matcher,
                distinct: None,
            });
        }
        Ok(Self {
            rules: entries.iter().map(|e| Arc::clone(&e.rule)).collect(),
            index: Index::build(
                entries.iter().map(|e| &e.matcher),
                ignores.iter().map(|e| &e.matcher),
            ),
            entries,
            ignores,
            organization: Organization::default(),
        })
    }

    /// The pack with the organisation's accounts known, so that `{ not_org_account = true }`
    /// treats them as inside (without them only the event's own account is).
    #[must_use]
    pub fn with_organization(mut self, organization: Organization) -> Self {
        self.organization = organization;
        self
    }

    /// Replace the organisation the pack knows (a refresh from AWS Organizations).
    pub fn set_organization(&mut self, organization: Organization) {
        self.organization = organization;
    }

    /// The organisation the pack knows (empty when not given).
    pub fn organization(&self) -> &Organization {
        &self.organization
    }

    /// The detection rules, in pack order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The ignore entries (noise that is dropped before rules run), in pack order.
    pub fn ignore_rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.ignores.iter().map(|e| &e.rule)
    }

    /// Rules with their compiled matches, for the pattern generator.
    fn matchers(&self) -> impl Iterator<Item = (&Arc<Rule>, &Matcher)> {
        self.entries.iter().map(|e| (&e.rule, &e.matcher))
    }

    /// The values `rule`'s `threshold.distinct` counts in this event (empty for a rule without
    /// one): strings as they are, numbers and booleans as JSON text.
    pub fn counted_values(&self, rule: &Rule, facts: &Facts<'_>) -> Vec<String> {
        self.entries
            .iter()
            .find(|e| e.rule.id == rule.id)
            .and_then(|e| e.distinct.as_ref())
            .map(|path| path.values(facts))
            .unwrap_or_default()
    }

    /// The rule that wins among the matching rules without a threshold (what reports an event
    /// whose threshold rule's group stays below its count), if one matches.
    pub fn without_threshold(&self, facts: &Facts<'_>) -> Option<Arc<Rule>> {
        let candidates = self.index.candidates(facts);
        candidates
            .rules
            .iter()
            .copied()
            .filter(|&i| self.entries[i].rule.threshold.is_none())
            .filter(|&i| {
                self.entries[i]
                    .matcher
                    .matches_in(facts, &self.organization)
            })
            .max_by_key(|&i| {
                let rule = &self.entries[i].rule;
                (rule.severity, rule.immediate, std::cmp::Reverse(i))
            })
            .map(|i| Arc::clone(&self.entries[i].rule))
    }

    /// Ignore entries first (the first in pack order wins); then, of the matching rules, the worst
    /// severity wins, `immediate` breaks ties, then a rule without a threshold (an event it
    /// reports stays reported, not merely counted), then pack order.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        let candidates = self.index.candidates(facts);
        // In pack order: the first ignore entry that matches wins.
        if let Some(&i) = candidates.ignores.iter().find(|&&i| {
            self.ignores[i]
                .matcher
                .matches_in(facts, &self.organization)
        }) {
            return Verdict::Ignored(Arc::clone(&self.ignores[i].rule));
        }
        candidates
            .rules
            .iter()
            .copied()
            .filter(|&i| {
                self.entries[i]
                    .matcher
                    .matches_in(facts, &self.organization)
            })
            .max_by_key(|&i| {
                let rule = &self.entries[i].rule;
                (
                    rule.severity,
                    rule.immediate,
                    rule.threshold.is_none(),
                    std::cmp::Reverse(i),
                )
            })
            .map_or(Verdict::Unmatched, |i| {
                Verdict::Matched(Arc::clone(&self.entries[i].rule))
            })
    }
}

/// A threshold's limits: 2 to 100,000; `distinct` a path of a known root; not `immediate` (a
/// threshold is known only when the window is flushed).
fn check_threshold(spec: &RuleSpec) -> Result<Option<DistinctPath>, RulesError> {
    let Some(threshold) = &spec.threshold else {
        return Ok(None);
    };
    let fail = |reason: String| RulesError::Threshold {
        id: spec.id.clone(),
        reason,
    };
    if !(2..=100_000).contains(&threshold.count) {
        return Err(fail(format!(
            "count must be from 2 to 100000, found {} (a count of 1 is a plain rule)",
            threshold.count
        )));
    }
    if spec.immediate {
        return Err(fail(
            "cannot be immediate: a threshold is known only when the window is flushed".to_owned(),
        ));
    }
    match &threshold.distinct {
        None => Ok(None),
        Some(text) => DistinctPath::parse(text).map(Some).ok_or_else(|| {
            fail(format!(
                "distinct must be a path under request, response, additional or resources, like \"request.secretId\", found {text:?}"
            ))
        }),
    }
}

/// Deserialise one entry. Going through TOML text (rather than `Value::try_into`) makes the
/// error quote the offending `key = value` line, so a type error names its key.
fn entry<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, toml::de::Error> {
    match toml::to_string(&table) {
        Ok(text) => toml::from_str(&text),
        Err(_) => toml::Value::Table(table).try_into(),
    }
}

/// `title_ko` was the Korean title before titles were by language: say what replaced it,
/// rather than only that the key is unknown.
fn reject_title_ko(section: &'static str, id: &str, table: &toml::Table) -> Result<(), RulesError> {
    if table.contains_key("title_ko") {
        return Err(RulesError::TitleKo {
            section,
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// How to name an entry in an error before its `id` is known to be valid.
fn entry_id(table: &toml::Table, n: usize) -> String {
    match table.get("id").and_then(toml::Value::as_str) {
        Some(id) => id.to_owned(),
        None => format!("#{} (no id)", n + 1),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "test fixtures")]
mod tests;
