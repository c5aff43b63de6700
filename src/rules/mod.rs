//! Rule pack: which events matter, how bad they are, and the EventBridge pattern for them.

use std::sync::Arc;

use serde::Serialize;

use crate::event::Facts;
use crate::severity::Severity;

/// One detection rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// Korean title, when the pack gives one.
    pub title_ko: Option<String>,
    pub severity: Severity,
    /// Post at once, alone, as well as in the window digest.
    pub immediate: bool,
    pub tags: Vec<String>,
}

/// What the pack says of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Matched(Arc<Rule>),
    Ignored(Arc<Rule>),
    Unmatched,
}

/// A compiled rule pack.
#[derive(Debug, Clone, Default)]
pub struct RulePack {
    rules: Vec<Arc<Rule>>,
}

impl RulePack {
    /// The pack compiled into the binary (`src/rules/default.toml`).
    pub fn builtin() -> Self {
        Self::default()
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        let _ = facts;
        Verdict::Unmatched
    }
}
