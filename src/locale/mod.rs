//! Reader-facing words: one table per language.
//!
//! Code asks the table for a word (`words.severity`) or a phrase (`(words.events_in)(…)`) and
//! never branches on the language: grammar that differs (English plurals, Korean particles and
//! word order) lives in each language's functions. Adding a language is its table (a file
//! beside `en.rs`), a variant of [`Lang`] with its arm in [`Lang::words`], and its rule titles
//! in the pack (`title = { en = "…", xx = "…" }`).

mod en;
mod ko;

use std::str::FromStr;

use chrono_tz::Tz;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::{Deserialize, Serialize};

use crate::enrich::{Origin, Performer, Principal, PrincipalKind, Tool};
use crate::severity::Severity;
use crate::summary::outcome::Outcomes;

/// Language of the reader-facing text, named by its code (`en`, `ko`) in settings and packs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ko,
    /// A stub language with a few German words: the seam test's third language.
    #[cfg(test)]
    De,
}

impl Lang {
    /// What a setting naming a language may say.
    pub const EXPECTED: &'static str = "\"en\" or \"ko\"";

    /// The language's word table.
    pub fn words(self) -> &'static Words {
        match self {
            Self::En => &en::WORDS,
            Self::Ko => &ko::WORDS,
            #[cfg(test)]
            Self::De => &tests::DE,
        }
    }
}

impl FromStr for Lang {
    type Err = ValueError;

    /// A language code, any case: the codes are the variants' names, so a new variant parses
    /// without another list to keep in step.
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let code = code.trim().to_ascii_lowercase();
        let de: StrDeserializer<'_, ValueError> = code.as_str().into_deserializer();
        Self::deserialize(de)
    }
}

/// Reader settings: language and time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locale {
    pub lang: Lang,
    pub tz: Tz,
}

impl Default for Locale {
    fn default() -> Self {
        Self {
            lang: Lang::En,
            tz: Tz::UTC,
        }
    }
}

impl Locale {
    pub fn words(&self) -> &'static Words {
        self.lang.words()
    }
}

/// How each kind of principal is tagged.
#[derive(Debug, Clone, Copy)]
pub struct Kinds {
    pub person: &'static str,
    pub workload: &'static str,
    pub aws_service: &'static str,
    pub root: &'static str,
    pub unknown: &'static str,
}

impl Kinds {
    pub fn of(&self, kind: PrincipalKind) -> &'static str {
        match kind {
            PrincipalKind::Person => self.person,
            PrincipalKind::Workload => self.workload,
            PrincipalKind::AwsService => self.aws_service,
            PrincipalKind::Root => self.root,
            PrincipalKind::Unknown => self.unknown,
        }
    }
}

/// One performer's calls of one API (or console sign-ins), as a headline words them.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    /// The API name, without an API version suffix.
    pub name: &'a str,
    pub calls: usize,
    /// Resource names joined, with ` and N more`, or empty.
    pub targets: &'a str,
    pub outcomes: Outcomes,
    /// The failed calls' error codes, joined (empty when none).
    pub codes: &'a str,
    /// For console sign-ins: whether one was without MFA. `None`: API calls.
    pub sign_in_without_mfa: Option<bool>,
    /// The headline's prefix already says every call was denied (or failed): the action
    /// does not say it again.
    pub prefixed: bool,
}

/// Every reader-facing word and phrase of one language. Phrases that take numbers or names are
/// functions, so each language keeps its own plurals, particles and word order.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    // The message: field labels and marks.
    pub performers: &'static str,
    pub time: &'static str,
    pub regions: &'static str,
    pub account: &'static str,
    pub events: &'static str,
    pub late: &'static str,
    pub late_note: &'static str,
    pub immediate: &'static str,
    pub continued: &'static str,
    pub failed: &'static str,
    pub already_alerted: &'static str,
    pub severity: &'static str,
    pub summary_by: &'static str,
    pub by_offline: &'static str,
    pub by_fallback: &'static str,
    pub by_model: &'static str,
    pub other_regions: &'static str,
    pub no_events: &'static str,
    /// `+3 more` after a list cut to fit.
    pub more: fn(usize) -> String,
    /// A threshold rule's title with the count its group reached in one window.
    pub threshold_title: fn(&str, usize) -> String,

    // Severities.
    pub red: &'static str,
    pub yellow: &'static str,
    pub green: &'static str,

    // Performers.
    /// Kind tags in the message's fields and tree (`root`).
    pub kind: Kinds,
    /// Kind tags in summary prose (`root user`).
    pub kind_in_prose: Kinds,
    pub sso: &'static str,
    pub assume_root_session: &'static str,
    pub unknown_user: &'static str,
    pub name_hidden: &'static str,
    pub no_actor: &'static str,
    /// `instance i-0abc`: the instance an event with no actor names.
    pub instance: fn(&str) -> String,
    pub console: &'static str,
    /// The tool of an AWS service acting on its own.
    pub service: &'static str,
    /// `via Terraform`.
    pub via: fn(&str) -> String,

    // The offline summary.
    /// The language as a model is asked to write it.
    pub model_language: &'static str,
    /// Output tokens one batch's answer is expected to take in this language: a call holds
    /// as many batches as fit the call's output cap at this rate. The schema caps an answer
    /// at about 2,450 characters; answers run to a third of that, Korean near a token per
    /// character, English near four characters a token.
    pub answer_tokens: u32,
    /// The account in prose, from its id and name.
    pub account_in_prose: fn(&str, Option<&str>) -> String,
    pub no_rule_matched: &'static str,
    /// The severity reason: the worst rule's title and severity word.
    pub worst_rule: fn(&str, &str) -> String,
    pub no_events_in_batch: &'static str,
    /// ` and 2 more`, after a list of names.
    pub and_more: fn(usize) -> String,
    /// The performer in a headline, from its name, tags and tool as [`Words::via`] says it:
    /// `dae.kim (SSO) via Terraform`.
    pub who: fn(&str, &[&str], Option<&str>) -> String,
    /// One performer's calls of one API, and how they ended.
    pub action: fn(&Action<'_>) -> String,
    /// Changes, reads and attempts counted: `3 changes, 2 denied attempts`.
    pub outcome_counts: fn(&Outcomes) -> String,
    /// A headline's action made of counts: `made 3 changes, 2 reads`.
    pub made: fn(&str) -> String,
    /// `3 performers`.
    pub performers_n: fn(usize) -> String,
    /// `4 rules`.
    pub rules_n: fn(usize) -> String,
    /// The headline from its attempt prefix, performer, action and rule title.
    pub headline: fn(&str, &str, &str, &str) -> String,
    /// A headline's prefix when every call was denied.
    pub denied_attempt: &'static str,
    /// A headline's prefix when every call failed (some for another reason than a denial).
    pub failed_attempt: &'static str,
    /// The tree's mark of a denied call.
    pub denied: &'static str,
    /// The tree's mark of a read-only call.
    pub read: &'static str,
    /// A target that is the performer itself (`ran CreateAccessKey on itself`).
    pub itself: &'static str,

    // Incidents: thread replies, reminders, the digest's note on immediate alerts.
    /// A reply's count: `12 more events`.
    pub more_events: fn(usize) -> String,
    /// An incident's count so far: `40 events so far`.
    pub so_far: fn(u64) -> String,
    /// Before an incident's start time: `since 09:00`.
    pub since: &'static str,
    pub still_going: &'static str,
    /// Where a reminder's earlier events are.
    pub in_thread: &'static str,
    /// A digest's events left out because their immediate alert went out already.
    pub alerted_elsewhere: fn(usize) -> String,
    /// The first post past a channel's hourly ceiling: the next new incidents of the hour go
    /// in its thread.
    pub overflow: fn(usize) -> String,

    // Held continuations (destinations without threads).
    /// Where an incident's later events are when the channel has no threads.
    pub in_held: &'static str,
    /// The first post past a channel's hourly ceiling, for a channel without threads (the
    /// next new incidents are posted as they come).
    pub overflow_unthreaded: fn(usize) -> String,
    /// The heading of a top-level post's list of held events.
    pub continuing: &'static str,
    /// What that list is: `later events of incidents posted before, held because …`.
    pub continuing_note: &'static str,
    /// The headline of a post of held events only: events, incidents.
    pub continuing_headline: fn(u64, usize) -> String,
    /// A held entry's count: `12 events`.
    pub events_n: fn(u64) -> String,
    /// Headline of a notice that a source sends no heartbeat: region, since (a time).
    pub silent_headline: fn(&str, &str) -> String,
    /// What a silent source means and what to check.
    pub silent_body: &'static str,
    /// Headline of a notice that a silent source's heartbeats are back: region, since.
    pub resumed_headline: fn(&str, &str) -> String,
    /// Headline of a notice that a source forwarded no event for a while: region, since.
    pub quiet_headline: fn(&str, &str) -> String,
    /// What a quiet source means and what to check.
    pub quiet_body: &'static str,
    /// Headline of a notice that a quiet source forwards events again: region, since.
    pub unquiet_headline: fn(&str, &str) -> String,
}

impl Words {
    pub fn severity_name(&self, severity: Severity) -> &'static str {
        match severity {
            Severity::Red => self.red,
            Severity::Yellow => self.yellow,
            Severity::Green => self.green,
        }
    }

    /// The principal's name as readers see it: `unknown user`, `instance i-0abc`.
    pub fn principal_name(&self, principal: &Principal) -> String {
        match principal.origin {
            Origin::NameHidden => self.unknown_user.to_owned(),
            Origin::NoActor if principal.name.is_empty() => self.no_actor.to_owned(),
            Origin::NoActor => (self.instance)(&principal.name),
            _ => principal.name.clone(),
        }
    }

    /// What the name stands for, where it is not plain: `SSO`, `AssumeRoot session`.
    pub fn principal_qualifier(&self, principal: &Principal) -> Option<&'static str> {
        match principal.origin {
            Origin::Sso => Some(self.sso),
            Origin::AssumeRoot => Some(self.assume_root_session),
            Origin::NameHidden => Some(self.name_hidden),
            Origin::NoActor if !principal.name.is_empty() => Some(self.no_actor),
            _ => None,
        }
    }

    /// The tool's name; none for an unknown tool.
    pub fn tool(&self, tool: Tool) -> Option<&'static str> {
        Some(match tool {
            Tool::Console => self.console,
            Tool::Cli => "CLI",
            Tool::Sdk => "SDK",
            Tool::Terraform => "Terraform",
            Tool::CloudFormation => "CloudFormation",
            Tool::Cdk => "CDK",
            Tool::Pulumi => "Pulumi",
            Tool::Ci => "CI",
            Tool::Service => self.service,
            Tool::Unknown => return None,
        })
    }

    /// `Terraform`, `Terraform (CI: github-actions)`, `CI (github-actions)`; none for an
    /// unknown tool.
    pub fn tool_with_ci(&self, performer: &Performer) -> Option<String> {
        let tool = self.tool(performer.tool)?;
        let ci_name = performer.ci.as_ref().map(|ci| ci.name.as_deref());
        Some(match (ci_name, performer.tool) {
            (Some(Some(name)), Tool::Ci) => format!("CI ({name})"),
            (Some(Some(name)), _) => format!("{tool} (CI: {name})"),
            (Some(None), Tool::Ci) | (None, _) => tool.to_owned(),
            (Some(None), _) => format!("{tool} (CI)"),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "test fixtures")]
mod tests;
