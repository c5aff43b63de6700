//! What can be wrong with a rule pack.

use std::path::PathBuf;

/// A rule pack that cannot be read, parsed or trusted. Every message names the entry (its id, or
/// its position when it has none) and, where one is at fault, the key.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rule pack {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "rule pack is not valid TOML or has an unknown top-level key (expected [[rule]] and [[ignore]])"
    )]
    Syntax(#[source] Box<toml::de::Error>),

    #[error("[[{section}]] {id}: invalid entry (line numbers below count within the entry)")]
    Entry {
        section: &'static str,
        id: String,
        #[source]
        source: Box<toml::de::Error>,
    },

    #[error(
        "[[rule]] {id}: dedup_period: expected a duration from 1m to 30d, like \"30m\" or \"2h\", found {found:?}"
    )]
    DedupPeriod { id: String, found: String },

    #[error("[[{section}]] {id}: match key `{key}` must be {expected}, found {found}")]
    FieldType {
        section: &'static str,
        id: String,
        key: String,
        expected: &'static str,
        found: String,
    },

    #[error(
        "[[{section}]] {id}: unknown match key `{key}`, expected one of: {}",
        super::matcher::known_keys()
    )]
    UnknownKey {
        section: &'static str,
        id: String,
        key: String,
    },

    #[error("[[{section}]] {id}: match key `{key}` has glob {glob:?}: {reason}")]
    BadGlob {
        section: &'static str,
        id: String,
        key: String,
        glob: String,
        reason: String,
    },

    #[error("[[{section}]] {id}: match key `{key}` {reason}")]
    BadPath {
        section: &'static str,
        id: String,
        key: String,
        reason: String,
    },

    #[error(
        "[[{section}]] {id}: match key `detail_type` has unknown detail-type {value:?}, expected one of: AWS API Call via CloudTrail, AWS Console Sign In via CloudTrail, AWS Service Event via CloudTrail, EC2 Instance State-change Notification"
    )]
    UnknownDetailType {
        section: &'static str,
        id: String,
        value: String,
    },

    #[error(
        "[[{section}]] {id}: [{section}.match] is empty; a rule must constrain at least one key"
    )]
    EmptyMatch { section: &'static str, id: String },

    #[error("[[{section}]] {id}: can never match: {reason}")]
    NeverMatches {
        section: &'static str,
        id: String,
        reason: String,
    },

    #[error(
        "[[{section}]] {id}: `title_ko` is no longer read; give the titles by language: title = {{ en = \"…\", ko = \"…\" }}"
    )]
    TitleKo { section: &'static str, id: String },

    #[error("[[rule]] {id}: threshold {reason}")]
    Threshold { id: String, reason: String },

    #[error("[[{section}]] {id}: id is used more than once")]
    DuplicateId { section: &'static str, id: String },

    #[error("unknown rule pack {name:?}, expected one of: default, clickops, all-changes")]
    UnknownPack { name: String },

    #[error("rule pack has no [[rule]] entries")]
    NoRules,

    #[error("one branch of the event pattern is {len} characters, over the limit of {limit}")]
    PatternTooLarge { len: usize, limit: usize },
}
